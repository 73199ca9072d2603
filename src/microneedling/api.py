"""The JSON API root (django-ninja) and its error format.

Every error answers ``application/problem+json`` (RFC 9457) with a title, the HTTP status, a
detail, and where it helps the fields at fault (``errors``) or the session and resource that
conflicted, so clients can show the problem next to what caused it.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from microneedling.accounts.services import api_token_user
from microneedling.core.errors import BookingConflict, BookingRefused, InputError
from microneedling.web.security import RateLimited, too_many_response


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` issued by ``microneedling token``."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = api_token_user(token)
        if user is not None:
            request.user = user
        return user


#: The error answers every operation may give, each as problem+json.
ERRORS = {
    "400": "The request is malformed",
    "401": "No valid bearer token",
    "403": "The token's role may not do this",
    "404": "No such record (or not one this token may see)",
    "409": "A booking conflict: the session and resource are named",
    "422": "A field is invalid: each is named in errors",
    "429": "Too many requests from this address; see Retry-After",
    "503": "The database could not take the request (nothing was saved); retry",
}

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


class ClinicAPI(NinjaAPI):
    """The API, whose OpenAPI document also says how every operation answers errors."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        """Ninja's document, with the problem+json error answers added to each operation."""
        schema = super().get_openapi_schema(**kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem_ref = {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
        for methods in schema.get("paths", {}).values():
            for operation in methods.values():
                responses = operation.setdefault("responses", {})
                for code, description in ERRORS.items():
                    responses.setdefault(code, {"description": description, "content": problem_ref})
        return schema


api = ClinicAPI(title="Microneedling Clinic API", version="1", urls_namespace="api-v1")


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


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return problem(413, "Payload too large", f"body: is larger than the {limit}-byte limit")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem(401, "Not signed in", "send Authorization: Bearer <token>")


@api.exception_handler(DatabaseError)
def _database_down(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    # The database refused the write or went away (full disk, a restart): the transaction
    # rolled back, so nothing was saved; the client may retry, with the same Idempotency-Key.
    response = problem(
        503,
        "Service unavailable",
        "the database could not complete the request; nothing was saved; try again shortly",
    )
    response["Retry-After"] = "5"
    return response


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem(404, "Not found", "no such record, or not one you may see")


@api.exception_handler(RateLimited)
def _rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    return too_many_response(exc.scope)


@api.exception_handler(HttpError)
def _http(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(exc.status_code, "Request refused", str(exc))


@api.get("/health", tags=["service"])
def health(request: HttpRequest) -> dict[str, str]:
    """For load balancers: the app answers and reaches its database (one trivial query)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok"}


def _register_routers() -> None:
    from microneedling.directory.api import router as directory  # noqa: PLC0415
    from microneedling.scheduling.api import router as scheduling  # noqa: PLC0415

    api.add_router("/", directory)
    api.add_router("/", scheduling)


_register_routers()
