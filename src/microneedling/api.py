"""The JSON API root (django-ninja) and its error format.

Every error answers ``application/problem+json`` (RFC 9457) with a title, the HTTP status, a
detail, and where it helps the fields at fault (``errors``) or the session and resource that
conflicted, so clients can show the problem next to what caused it.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from microneedling.accounts.services import api_token_user
from microneedling.core.errors import BookingConflict, BookingRefused, InputError


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` issued by ``microneedling token``."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = api_token_user(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(title="Microneedling Clinic API", version="1", urls_namespace="api-v1")


def problem(status: int, title: str, detail: str, **extra: Any) -> HttpResponse:
    """An RFC 9457 problem response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return HttpResponse(json.dumps(body), status=status, content_type="application/problem+json")


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        location = [
            str(p)
            for p in error.get("loc", ())
            if p not in ("body", "query", "path", "payload", "header")
        ]
        errors.append({"field": ".".join(location) or "body", "message": error.get("msg", "")})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid request", detail, errors=errors)


@api.exception_handler(InputError)
def _input(request: HttpRequest, exc: InputError) -> HttpResponse:
    return problem(
        422, "Invalid request", str(exc), errors=[{"field": exc.field, "message": exc.problem}]
    )


@api.exception_handler(BookingConflict)
def _conflict(request: HttpRequest, exc: BookingConflict) -> HttpResponse:
    return problem(
        409,
        "Booking conflict",
        exc.message,
        session=exc.session,
        resource=exc.resource,
        starts_at=exc.starts_at,
    )


@api.exception_handler(BookingRefused)
def _refused(request: HttpRequest, exc: BookingRefused) -> HttpResponse:
    errors = [{"field": exc.field, "message": exc.message}] if exc.field else []
    return problem(422, "Booking not allowed", exc.message, code=exc.code, errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem(401, "Not signed in", "send Authorization: Bearer <token>")


@api.exception_handler(HttpError)
def _http(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(exc.status_code, "Request refused", str(exc))


def _register_routers() -> None:
    from microneedling.directory.api import router as directory  # noqa: PLC0415
    from microneedling.scheduling.api import router as scheduling  # noqa: PLC0415

    api.add_router("/", directory)
    api.add_router("/", scheduling)


_register_routers()
