"""Writing audit events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from microneedling.accounts.access import Role, role_of
from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.models import AuditEvent

#: The client address of the request being served (set by ``AuditContextMiddleware``), so
#: that services deep below a view record it without every caller passing it down.
request_address: ContextVar[str | None] = ContextVar("request_address", default=None)


def audit_record(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event (call inside the transaction of the change it describes)."""
    user = acting_user(actor)
    return AuditEvent.objects.create(
        actor=user,
        role=role_of(user).value if user is not None else Role.ANONYMOUS.value,
        ip=request_address.get(),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        reason=reason,
        details=details or {},
    )


def audit_patient_view(
    *, actor: Actor, patient_id: object, action: str, details: dict[str, Any]
) -> AuditEvent:
    """Record that a member of staff looked at part of a patient's record."""
    return audit_record(
        actor=actor, action=action, object_type="patient", object_id=patient_id, details=details
    )


def audit_patients_listed(
    *,
    actor: Actor,
    action: str,
    rows: Iterable[Any],
    what: str,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Record that a member of staff saw a list or sheet naming several patients: one event
    per patient, as if each had been opened, naming (under ``what``) the ``rows`` of theirs
    shown (objects with ``pk`` and ``patient_id``), all in one statement."""
    shown: dict[object, dict[str, Any]] = {}
    for row in rows:
        entry = shown.setdefault(row.patient_id, {**(details or {}), what: []})
        entry[what].append(row.pk)
    return audit_patients_seen(actor=actor, action=action, details_by_patient=shown)


def audit_patients_seen(
    *,
    actor: Actor,
    action: str,
    details_by_patient: Mapping[object, dict[str, Any]],
    batch_size: int = 1000,
) -> int:
    """Record that a member of staff saw each of these patients' records at once: one event
    per patient, written in as few statements as the database allows (at most
    ``batch_size`` events in one)."""
    user = acting_user(actor)
    role = role_of(user).value if user is not None else Role.ANONYMOUS.value
    address = request_address.get()
    events = [
        AuditEvent(
            actor=user,
            role=role,
            ip=address,
            action=action,
            object_type="patient",
            object_id=str(patient_id),
            details=entry,
        )
        for patient_id, entry in details_by_patient.items()
    ]
    return len(AuditEvent.objects.bulk_create(events, batch_size=batch_size))
