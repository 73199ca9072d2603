"""Putting messages in the outbox: one row per channel the patient chose, written inside the
caller's transaction together with the task that will deliver it, so a change and the
messages it causes are committed together or not at all."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any

from django.utils import timezone

from microneedling.core.messaging import outside_quiet_hours
from microneedling.directory.models import ClinicPolicy, default_reminder_hours
from microneedling.directory.policy import BookingRules
from microneedling.notifications.kinds import KINDS, TIMED_KINDS
from microneedling.notifications.models import ContactPreference, Message
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment


@dataclass(frozen=True)
class MessageRules:
    """A clinic's reminder hours and quiet hours."""

    reminder_hours: tuple[int, ...]
    quiet_from: time
    quiet_until: time


def visit_version(appointment: Appointment) -> str:
    """The visit's time and place as message keys carry it: a visit moved to another
    location at the same hour is a new version."""
    return f"{int(appointment.starts_at.timestamp())}@{appointment.location_id}"


def message_rules_of(rules: BookingRules) -> MessageRules:
    """The message rules of a clinic policy already read for a booking."""
    return MessageRules(rules.reminder_hours, rules.quiet_from, rules.quiet_until)


def message_rules(organization_id: int) -> MessageRules:
    """The organisation's stored message rules, or the defaults."""
    row = (
        ClinicPolicy.objects.filter(organization_id=organization_id)
        .values("reminder_hours", "quiet_from", "quiet_until")
        .first()
    )
    if row is None:
        return MessageRules(tuple(default_reminder_hours()), time(21), time(8))
    return MessageRules(tuple(row["reminder_hours"]), row["quiet_from"], row["quiet_until"])


@dataclass(frozen=True)
class Audience:
    """Where one patient's messages go, read once for all the messages of one change.

    With ``pending`` (a list), ``message_queue`` collects the messages instead of writing
    each; ``outbox_flush`` then writes them all in a few queries (a course queues dozens)."""

    patient: Patient
    essential: tuple[tuple[str, str], ...]  # (channel, address) for what they must know
    optional: tuple[tuple[str, str], ...]  # the same for reminders and recalls (may be empty)
    rules: MessageRules
    pending: list[Message] | None = field(default=None, compare=False)

    def batched(self) -> Audience:
        """The same audience, collecting its messages for one ``outbox_flush``."""
        return replace(self, pending=[])

    def channels(self, *, essential: bool) -> tuple[tuple[str, str], ...]:
        """(channel, address) pairs for a message that is, or is not, essential."""
        return self.essential if essential else self.optional


Routes = tuple[tuple[str, str], ...]


def patient_routes(patient: Patient) -> tuple[Routes, Routes]:
    """(channel, address) pairs for essential and for optional messages, from the patient's
    contact details and choices as they stand now (one query)."""
    preference = ContactPreference.objects.filter(patient=patient).first()
    if preference is None:
        preference = ContactPreference(patient=patient)
    chosen = []
    if preference.email and patient.email:
        chosen.append((Message.Channel.EMAIL.value, patient.email))
    if preference.sms and patient.phone:
        chosen.append((Message.Channel.SMS.value, patient.phone))
    # Something the patient must know still reaches them by some route.
    essential = chosen or ([(Message.Channel.EMAIL.value, patient.email)] if patient.email else [])
    return tuple(essential), tuple(chosen) if preference.reminders else ()


def audience_of(patient: Patient, *, rules: MessageRules | None = None) -> Audience:
    """The patient's channels and the clinic's message rules (two queries; one if the
    caller read the ``rules`` in the same transaction)."""
    essential, optional = patient_routes(patient)
    return Audience(
        patient=patient,
        essential=essential,
        optional=optional,
        rules=rules or message_rules(patient.organization_id),
    )


def message_queue(
    *,
    patient: Patient,
    kind: str,
    key: str,
    due_at: datetime | None = None,
    appointment: Appointment | None = None,
    context: dict[str, Any] | None = None,
    zone: str | None = None,
    audience: Audience | None = None,
    now: datetime | None = None,
    staff_caused: bool = False,
) -> list[Message]:
    """Queue ``kind`` for ``patient`` on each chosen channel, once per ``key``.

    ``due_at`` (default now) is moved out of quiet hours in ``zone`` (default the patient's)
    unless the kind is urgent, or it is an email due now confirming what the patient just did
    (not ``staff_caused``: the clinic's change at night is news in the morning); a timed
    message already in the past is not queued at all. Call inside the
    transaction of the change that causes the message; pass ``audience`` when one change
    queues several messages for the same patient.
    """
    from microneedling.notifications.tasks import message_deliver  # noqa: PLC0415 (cycle)

    spec = KINDS[kind]
    now = now or timezone.now()
    due = due_at or now
    if kind in TIMED_KINDS and due < now:
        return []
    audience = audience or audience_of(patient)
    rules = audience.rules
    queued = []
    for channel, address in audience.channels(essential=spec.essential):
        send_at = due
        # Only a confirmation: a timed message due now (a medicine pause announced late)
        # waits out quiet hours like the rest of its kind.
        immediate_email = (
            channel == Message.Channel.EMAIL
            and due <= now
            and not staff_caused
            and kind not in TIMED_KINDS
        )
        if not spec.urgent and not immediate_email:
            send_at = outside_quiet_hours(
                due,
                zone=zone or patient.timezone,
                quiet_from=rules.quiet_from,
                quiet_until=rules.quiet_until,
            )
        fields = {
            "patient": patient,
            "appointment": appointment,
            "kind": kind,
            "channel": channel,
            "essential": spec.essential,
            "recipient": address,
            "context": context or {},
            "due_at": send_at,
            "available_at": send_at,
        }
        if audience.pending is not None:
            audience.pending.append(Message(key=f"{key}:{channel}", **fields))
            continue
        message, created = Message.objects.get_or_create(key=f"{key}:{channel}", defaults=fields)
        if created or _revive(message, fields):
            message_deliver.using(run_after=max(send_at, now)).enqueue(message.pk)
            queued.append(message)
    return queued


def _revive(message: Message, fields: dict[str, Any]) -> bool:
    """Queue a withdrawn message again as ``fields`` now give it; False if it was not
    withdrawn (then it stands: the same change queues one message).

    A key comes back when what it stands for does: a visit moved back to a time it had
    before wants that time's reminders again, though the first move withdrew them."""
    if message.status != Message.Status.CANCELLED:
        return False
    changes = {
        **{name: value for name, value in fields.items() if name != "patient"},
        "status": Message.Status.PENDING,
        "attempts": 0,
        "last_error": "",
        "lease_until": None,
        "worker": "",
    }
    # Only from withdrawn: two changes reviving it at once must not both queue it.
    if not Message.objects.filter(pk=message.pk, status=Message.Status.CANCELLED).update(**changes):
        return False
    for name, value in changes.items():
        setattr(message, name, value)
    return True


def outbox_flush(audience: Audience, *, now: datetime | None = None) -> list[Message]:
    """Write the messages a batched audience collected: one query for the keys already
    queued, one insert for the new messages, one for their delivery tasks (call in the same
    transaction as the change; a key already queued is skipped, as ``message_queue`` does)."""
    from microneedling.notifications.tasks import message_deliver  # noqa: PLC0415 (cycle)

    if not audience.pending:
        return []
    now = now or timezone.now()
    keys = [m.key for m in audience.pending]
    taken = dict(Message.objects.filter(key__in=keys).values_list("key", "status"))
    fresh: dict[str, Message] = {}
    withdrawn: dict[str, Message] = {}
    for message in audience.pending:
        if message.key not in taken:
            fresh.setdefault(message.key, message)
        elif taken[message.key] == Message.Status.CANCELLED:
            withdrawn.setdefault(message.key, message)
    audience.pending.clear()
    created = Message.objects.bulk_create(list(fresh.values()))
    # Few (a visit moved back to a time it had): one by one, as ``message_queue`` does.
    for stored in Message.objects.filter(key__in=list(withdrawn)):
        wanted = withdrawn[stored.key]
        fields = {name: getattr(wanted, name) for name in _REVIVED}
        if _revive(stored, fields):
            created.append(stored)
    tasks_enqueue(message_deliver, [((m.pk,), max(m.available_at, now)) for m in created])
    return created


#: What a message queued again takes from its new queuing (the rest is its identity).
_REVIVED = (
    "appointment_id",
    "essential",
    "recipient",
    "context",
    "due_at",
    "available_at",
)


def tasks_enqueue(task: Any, calls: list[tuple[tuple[Any, ...], datetime]]) -> None:
    """Enqueue ``task`` once per ``(args, run_after)`` in one insert.

    django-tasks enqueues one row at a time; its database backend's rows are plain model
    rows, so many are written as the backend writes one (same id function, same fields)."""
    from django_tasks_db.compat import normalize_json  # noqa: PLC0415
    from django_tasks_db.models import DBTaskResult  # noqa: PLC0415

    backend = task.get_backend()
    DBTaskResult.objects.bulk_create(
        [
            DBTaskResult(
                id=backend._get_id(),
                args_kwargs=normalize_json({"args": list(args), "kwargs": {}}),
                priority=task.priority,
                task_path=task.module_path,
                queue_name=task.queue_name,
                run_after=run_after,
                backend_name=backend.alias,
            )
            for args, run_after in calls
        ]
    )


#: Not gone out yet: waiting, or in a worker's hands (whose outcome then neither queues it
#: again nor sends it a second time; see ``message_deliver_now``).
UNSENT = (Message.Status.PENDING, Message.Status.SENDING)


def messages_withdraw(*, appointment: Appointment, kinds: frozenset[str] = TIMED_KINDS) -> int:
    """Cancel the visit's messages of ``kinds`` that have not gone out yet."""
    return Message.objects.filter(
        appointment=appointment, kind__in=kinds, status__in=UNSENT
    ).update(status=Message.Status.CANCELLED)


def window_messages_withdraw(*, session_id: int) -> int:
    """A course session was booked again: its "your window opens" message is not needed."""
    return Message.objects.filter(
        kind="window_opens",
        appointment__course_session_id=session_id,
        status__in=UNSENT,
    ).update(status=Message.Status.CANCELLED)


def patient_messages_withdraw(*, patient: Patient) -> int:
    """Cancel every message to ``patient`` not sent yet, dead-lettered ones included (the
    account is closed: nothing more may reach it, and staff must not send it again)."""
    return Message.objects.filter(
        patient=patient, status__in=(*UNSENT, Message.Status.DEAD)
    ).update(status=Message.Status.CANCELLED)


def visit_messages_withdraw(*, appointment: Appointment) -> int:
    """Cancel every message about the visit not sent yet, of any kind (it never was)."""
    return Message.objects.filter(
        appointment=appointment, status__in=(*UNSENT, Message.Status.DEAD)
    ).update(status=Message.Status.CANCELLED)


def notices_supersede(*, appointment: Appointment, kind: str, key: str) -> int:
    """Withdraw the visit's ``kind`` notices not sent yet, but the one queued under ``key``.

    A notice of a change reads the visit as it stands when it is sent, so one still waiting
    when the visit changes again would tell the patient the same news twice (or of a move
    back to where it was as two moves to one time). A dead one goes too: staff sending it
    again would repeat the later notice."""
    return (
        Message.objects.filter(
            appointment=appointment, kind=kind, status__in=(*UNSENT, Message.Status.DEAD)
        )
        .exclude(key__startswith=f"{key}:")
        .update(status=Message.Status.CANCELLED, last_error="a later notice replaces it")
    )
