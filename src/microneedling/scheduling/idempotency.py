"""``Idempotency-Key`` support: a retried POST returns the first answer and never books twice.

The key's record is inserted *before* the work, in the same transaction: a concurrent retry
with the same key then waits on the unique index until the first request commits, and reads
its stored answer instead of booking again. If the first request fails, its transaction (and
the key) roll back, and a retry runs afresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from microneedling.scheduling.models import IdempotencyRecord

MAX_KEY_LENGTH = 200


class KeyReused(Exception):
    """The same key came with a different request body."""


def run_once(
    request: HttpRequest,
    *,
    scope: str,
    payload: Any,
    work: Callable[[], tuple[int, Any]],
    key: str | None = None,
) -> tuple[int, Any]:
    """Run ``work`` (returning status and JSON body) at most once per Idempotency-Key (or
    per ``key``: a page's form carries its own, so a second click cannot book twice)."""
    key = (request.headers.get("Idempotency-Key", "") if key is None else key).strip()
    if not key:
        return work()
    if len(key) > MAX_KEY_LENGTH:
        raise KeyReused(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters")
    user_scope = f"{scope}:{getattr(request.user, 'pk', None)}"
    fingerprint = hashlib.sha256(
        json.dumps(payload, sort_keys=True, default=str).encode()
    ).hexdigest()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                scope=user_scope, key=key, fingerprint=fingerprint, status_code=0, body={}
            )
            status, body = work()
            record.status_code, record.body = status, body
            record.save(update_fields=["status_code", "body"])
            return status, body
    except IntegrityError:
        stored = IdempotencyRecord.objects.filter(scope=user_scope, key=key).first()
        if stored is None:
            raise
        if stored.fingerprint != fingerprint:
            raise KeyReused("this Idempotency-Key was used with a different request") from None
        return stored.status_code, stored.body
