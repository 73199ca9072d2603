"""Security headers the framework does not set, and rate limits on the public endpoints."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from microneedling.audit.middleware import client_address

ResponseT = TypeVar("ResponseT", bound=HttpResponseBase)

#: No inline script or style anywhere: every script and stylesheet is a file of ours.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and a strict Permissions-Policy to every page, and
    keeps pages with personal data out of shared caches."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        if request.user.is_authenticated:
            # A signed-in page may hold health data: never kept by a proxy or the back button.
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class RateLimited(Exception):
    """Too many requests from one address for one endpoint (``scope``); the API answers it
    with the same 429 as the pages (``too_many_response``)."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"too many {scope} requests")
        self.scope = scope


def rate_limit(
    scope: str, *, per_minute: int | None = None, methods: tuple[str, ...] = ("POST",)
) -> Callable[[Callable[..., ResponseT]], Callable[..., ResponseT | HttpResponse]]:
    """Answer 429 once one client address has made more than ``per_minute`` ``methods``
    requests to this view in the last minute (``MICRONEEDLING["RATE_LIMITS"][scope]``
    when not given). Counts live in the shared cache, so every app server sees them."""

    def decorate(view: Callable[..., ResponseT]) -> Callable[..., ResponseT | HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> ResponseT | HttpResponse:
            if request.method in methods:
                limit = per_minute or settings.MICRONEEDLING["RATE_LIMITS"][scope]
                if too_many(scope, client_address(request) or "unknown", limit):
                    return too_many_response(scope)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


#: The rate-limit minute is counted in buckets of this many seconds (see ``too_many``).
RATE_BUCKET_SECONDS = 10
_RATE_BUCKETS = 60 // RATE_BUCKET_SECONDS


def too_many(scope: str, address: str, limit: int, *, now: float | None = None) -> bool:
    """Count one request of ``address`` to ``scope``; whether it is over ``limit`` a minute.

    Requests are counted in 10-second buckets of the clock (``now``, seconds since the
    epoch; the system clock by default), so that every app server sharing the cache counts
    alike. A request is accepted only if the accepted ones in the current bucket and the six
    before it, which together cover every moment of the last minute, stay within ``limit``:
    no 60 seconds ever hold more than ``limit`` accepted requests. (One fixed minute would
    let ``limit`` through at the end of a minute and ``limit`` more at the start of the
    next.) A refused request is taken off the count, so retrying does not prolong a refusal.
    """
    moment = time.time() if now is None else now
    bucket = int(moment // RATE_BUCKET_SECONDS)
    prefix = f"rate:{scope}:{address}:"
    key = f"{prefix}{bucket}"
    # Kept just past the minute the bucket still counts for.
    lifetime = RATE_BUCKET_SECONDS * (_RATE_BUCKETS + 2)
    earlier = cache.get_many([f"{prefix}{b}" for b in range(bucket - _RATE_BUCKETS, bucket)])
    before = sum(int(count) for count in earlier.values())
    if cache.add(key, 1, timeout=lifetime):
        current = 1
    else:
        try:
            current = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=lifetime)
            current = 1
    if before + current <= limit:
        return False
    with contextlib.suppress(ValueError):  # expired meanwhile: nothing left to take off
        cache.decr(key)
    return True


def too_many_response(scope: str) -> HttpResponse:
    """429 with Retry-After, as problem+json (API clients) and readable by people."""
    body = {
        "type": "about:blank",
        "title": "Too many requests",
        "status": 429,
        "detail": f"too many {scope} requests from this address; try again in a minute",
    }
    response = HttpResponse(json.dumps(body), status=429, content_type="application/problem+json")
    # The oldest bucket still counted has left the minute by then (see ``too_many``).
    response["Retry-After"] = str(60 + RATE_BUCKET_SECONDS)
    return response


class RefuseNulMiddleware:
    """Refuses (400) a NUL character in the query or a text body before any view reads it:
    PostgreSQL cannot store one in text, and no honest client sends one. A body over the
    upload limit is left to the view, which refuses it."""

    TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded", "application/fhir+json")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = unquote_to_bytes(request.META.get("QUERY_STRING", ""))
        try:
            body = request.body if request.content_type in self.TEXT_BODIES else b""
        except RequestDataTooBig:
            # Too big to hold, so it cannot be searched: whoever reads it refuses it in its
            # own format (an OperationOutcome from FHIR, problem+json from the API, 400 page).
            body = b""
        if request.content_type == "application/x-www-form-urlencoded":
            body = unquote_to_bytes(body.replace(b"+", b" "))
        if b"\x00" in query or b"\x00" in body or b"\\u0000" in body:
            return nul_refused(request)
        return self.get_response(request)


def nul_refused(request: HttpRequest) -> HttpResponse:
    """The refusal, in the format of the API that was asked."""
    if request.path.startswith("/fhir/"):
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "invalid", "diagnostics": "NUL is not allowed"}
            ],
        }
        return HttpResponse(json.dumps(outcome), status=400, content_type="application/fhir+json")
    body = {
        "type": "about:blank",
        "title": "Invalid request",
        "status": 400,
        "detail": "the request holds a NUL character, which no field accepts",
    }
    return HttpResponse(json.dumps(body), status=400, content_type="application/problem+json")
