"""Writing audit events."""

from __future__ import annotations

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
