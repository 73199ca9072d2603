"""The audit trail is append-only: the application refuses to change or remove an event,
and on PostgreSQL the database refuses it too, whatever query the application sends."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from microneedling.audit.models import AuditEvent, AuditTrailIsAppendOnly
from microneedling.audit.services import audit_record


@pytest.fixture
def event(db: None) -> AuditEvent:
    return audit_record(actor=None, action="chart_view", object_type="patient", object_id=7)


def test_the_application_cannot_change_or_remove_an_audit_event(event: AuditEvent) -> None:
    event.reason = "rewritten"
    with pytest.raises(AuditTrailIsAppendOnly):
        event.save()
    with pytest.raises(AuditTrailIsAppendOnly):
        event.delete()
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditEvent.objects.all().delete()
    event.refresh_from_db()
    assert event.reason == ""
    assert AuditEvent.objects.count() == 1


def test_the_database_refuses_raw_updates_and_deletes_on_postgresql(event: AuditEvent) -> None:
    statements = [
        "UPDATE audit_auditevent SET reason = 'rewritten'",
        "DELETE FROM audit_auditevent",
    ]
    for sql in statements:
        if connection.vendor == "postgresql":
            with (
                pytest.raises(DatabaseError, match="append-only"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(sql)
        else:
            # SQLite (the embedded one-process setup) has no database guard: the application's
            # guard is what holds there. Pin that, so adding one later updates this test.
            assert connection.vendor == "sqlite"
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    assert cursor.rowcount == 1
                transaction.set_rollback(True)
    event.refresh_from_db()
    assert event.reason == "" and AuditEvent.objects.filter(pk=event.pk).exists()
