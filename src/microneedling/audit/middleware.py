"""Puts the client's address where the audit trail finds it, for the length of a request."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from microneedling.audit.services import request_address


def client_address(request: HttpRequest) -> str | None:
    """The client's IP: the socket's peer, or the proxy's ``X-Forwarded-For`` when the
    deployment says a proxy it trusts sits in front (``MICRONEEDLING["TRUSTED_PROXIES"]``)."""
    peer = request.META.get("REMOTE_ADDR") or None
    trusted = settings.MICRONEEDLING.get("TRUSTED_PROXIES", ())
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if peer in trusted and forwarded:
        # The last hop the trusted proxy added is the one it saw; earlier ones are the
        # client's own claims.
        return forwarded.split(",")[-1].strip() or peer
    return peer


class AuditContextMiddleware:
    """Sets ``request_address`` for the request and clears it afterwards."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = request_address.set(client_address(request))
        try:
            return self.get_response(request)
        finally:
            request_address.reset(token)
