"""Writing audit events."""

from __future__ import annotations

from typing import Any

from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.models import AuditEvent


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
    return AuditEvent.objects.create(
        actor=acting_user(actor),
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
