"""Security headers the framework does not set, and rate limits on the public endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.cache import cache
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
    """Too many requests from one address for one endpoint."""


def rate_limit(
    scope: str, *, per_minute: int | None = None, methods: tuple[str, ...] = ("POST",)
) -> Callable[[Callable[..., ResponseT]], Callable[..., ResponseT | HttpResponse]]:
    """Answer 429 once one client address has made more than ``per_minute`` ``methods``
    requests to this view in the current minute (``MICRONEEDLING["RATE_LIMITS"][scope]``
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


def too_many(scope: str, address: str, limit: int, *, now: float | None = None) -> bool:
    """Count one request of ``address`` to ``scope``; whether it is over ``limit`` a minute.

    The minute is a window of the clock (``now``, seconds since the epoch; the system clock
    by default), so that every app server sharing the cache counts in the same window.
    """
    moment = time.time() if now is None else now
    key = f"rate:{scope}:{address}:{int(moment // 60)}"
    if cache.add(key, 1, timeout=70):
        return limit < 1
    try:
        return cache.incr(key) > limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=70)
        return False


def too_many_response(scope: str) -> HttpResponse:
    """429 with Retry-After, as problem+json (API clients) and readable by people."""
    body = {
        "type": "about:blank",
        "title": "Too many requests",
        "status": 429,
        "detail": f"too many {scope} requests from this address; try again in a minute",
    }
    response = HttpResponse(json.dumps(body), status=429, content_type="application/problem+json")
    response["Retry-After"] = "60"
    return response


class RefuseNulMiddleware:
    """Refuses (400) a NUL character in the query or a text body before any view reads it:
    PostgreSQL cannot store one in text, and no honest client sends one."""

    TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded", "application/fhir+json")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = unquote_to_bytes(request.META.get("QUERY_STRING", ""))
        body = request.body if request.content_type in self.TEXT_BODIES else b""
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
