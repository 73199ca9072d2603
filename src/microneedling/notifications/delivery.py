"""Delivering outbox messages: claim one with a lease, send it, record the outcome.

A message is claimed by a conditional UPDATE (pending and due, or sending with its lease run
out), so two workers never hold the same message at once on either engine. The send happens
outside any transaction; the outcome is written afterwards. A worker killed between the send
and the write leaves the message "sending" until its lease ends; it is then sent again, with
the same Message-ID, so the receiving side can recognise the repeat. Those in flight at the
moment of a crash are the only ones that can repeat.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from microneedling.core.messaging import outside_quiet_hours
from microneedling.notifications.channels import DeliveryError, email_send, sms_send
from microneedling.notifications.kinds import KINDS, TIMED_KINDS
from microneedling.notifications.models import DeliveryAttempt, Message
from microneedling.notifications.outbox import (
    message_rules,
    patient_routes,
    tasks_enqueue,
    visit_version,
)
from microneedling.notifications.rendering import message_render
from microneedling.scheduling.models import Appointment

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"[:64]


def _backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes between tries, at most an hour."""
    return timedelta(minutes=min(2 ** (attempts - 1), 60))


def _given_up(message: Message, *, now: datetime) -> bool:
    """Whether the failed attempt at ``now`` is the last: the message has been tried for
    ``OUTBOX_RETRY_HOURS`` since its first attempt (a staff retry starts the count again), or
    ``OUTBOX_MAX_ATTEMPTS`` times when that is set (0: no limit but the time)."""
    config = settings.MICRONEEDLING
    cap = config["OUTBOX_MAX_ATTEMPTS"]
    if cap and message.attempts >= cap:
        return True
    # Counted in time, not tries: an outage of the mail server or the SMS provider for an
    # hour must not send a day's messages to the dead-letter list.
    first = DeliveryAttempt.objects.filter(message=message, number=1).aggregate(
        first=Max("started_at")
    )["first"]
    return now - (first or now) >= timedelta(hours=config["OUTBOX_RETRY_HOURS"])


def _lease() -> timedelta:
    return timedelta(seconds=settings.MICRONEEDLING["OUTBOX_LEASE_SECONDS"])


def message_claim(message_id: int, *, worker: str, now: datetime) -> Message | None:
    """Take ``message_id`` for ``worker`` if it is due and nobody holds it."""
    claimable = Q(status=Message.Status.PENDING) | Q(
        status=Message.Status.SENDING, lease_until__lt=now
    )
    taken = Message.objects.filter(claimable, pk=message_id, available_at__lte=now).update(
        status=Message.Status.SENDING,
        lease_until=now + _lease(),
        worker=worker,
        attempts=F("attempts") + 1,
    )
    if not taken:
        return None
    return Message.objects.select_related("patient__organization", "appointment__location").get(
        pk=message_id
    )


#: Visit statuses after which nothing more is said about the visit, but what each kind is
#: for: a cancellation notice is sent for a cancelled visit, a "we missed you" for a missed
#: one, and a "your window opens" message hangs on the visit whose session it invites to
#: book again.
_OVER: dict[str, frozenset[str]] = {
    Appointment.Status.CANCELLED: frozenset({"visit_cancelled", "window_opens"}),
    Appointment.Status.NO_SHOW: frozenset({"visit_missed", "window_opens"}),
    Appointment.Status.ENTERED_IN_ERROR: frozenset(),
}


#: Kinds about a visit still to come: once it has begun, sending one is only confusing.
BEFORE_VISIT = frozenset(
    {
        "visit_booked",
        "visit_moved",
        "location_change",
        "visit_unsettled",
        "reminder",
        "pre_care",
        "hold_start",
    }
)

#: Kinds about the visit's time and place as they were when queued (keyed by
#: :func:`visit_version`): once the visit has moved, the patient has been told of the move.
ABOUT_THIS_VERSION = frozenset({"visit_unsettled"})


#: Kinds that ask the patient to book their next visit.
RECALLS = frozenset({"maintenance_due"})

#: Why a message leading up to a visit is no longer sent.
BEGUN = "the visit has begun"


def _withdrawal_reason(message: Message, *, now: datetime) -> str:
    """Why ``message`` must not go out at ``now`` after all, as things stand then (empty
    when it may): what was true when it was queued may have changed since, and a message
    leading up to a visit is stale once the visit has begun (its turn came late: the workers
    or the channel were down, or quiet hours pushed it past the start). A new
    address on a channel the patient still uses, or for a message they must get, the route
    they use now, is taken up instead (``message.channel`` and ``message.recipient``
    are updated in memory; the caller stores them)."""
    patient = message.patient
    if patient.closed_at is not None:
        return "the patient closed their account"
    listed = message.context.get("appointments")
    if (
        listed
        and not Appointment.objects.filter(pk__in=listed, status__in=Appointment.HOLDING).exists()
    ):
        return "none of the visits it lists still stands"
    if message.kind in RECALLS and (
        Appointment.objects.filter(
            patient=patient, status__in=Appointment.TO_COME, starts_at__gt=now
        ).exists()
    ):
        # A recall asks the patient to book: one who already has a visit to come has.
        return "the patient has a visit booked"
    visit = message.appointment
    if visit is not None:
        still = _OVER.get(visit.status)
        if still is not None and message.kind not in still:
            return f"the visit is {visit.status}"
        # Timed messages, and those about one version of the visit, are keyed
        # ``visit:<pk>:<version>:...`` (outbox.visit_version): timed ones need only the same
        # start (they read the place when sent), the others the same start and place.
        prefix = f"visit:{visit.pk}:"
        if message.key.startswith(prefix):
            keyed = message.key[len(prefix) :].split(":", 1)[0]
            version = visit_version(visit)
            if message.kind in TIMED_KINDS and keyed.split("@", 1)[0] != version.split("@", 1)[0]:
                return "the visit has moved"
            if message.kind in ABOUT_THIS_VERSION and keyed != version:
                return "the visit has moved"
        if message.kind in BEFORE_VISIT and visit.starts_at <= now:
            return BEGUN
    essential, optional = patient_routes(patient)
    chosen = essential if message.essential else optional
    routes = dict(chosen)
    if message.channel in routes:
        message.recipient = routes[message.channel]
        return ""
    if not chosen:  # reminders turned off (what they must know always has a route)
        return "the patient no longer takes these messages"
    # The patient moved to another channel: the message follows them there, unless the same
    # message is already on its way by that channel.
    channel, address = chosen[0]
    base = message.key.rsplit(":", 1)[0]
    twin = Message.objects.filter(key=f"{base}:{channel}").exclude(pk=message.pk)
    if twin.exclude(status=Message.Status.CANCELLED).exists():
        return "the same message goes to the patient by their other channel"
    message.channel, message.recipient = channel, address
    return ""


def _quiet_until(message: Message, now: datetime) -> datetime | None:
    """When a message whose turn came in quiet hours may go out instead (None: now). Urgent
    kinds, and those meant to go out at once whatever the hour (a confirmation of what the
    patient just did), are not held back."""
    if KINDS[message.kind].urgent:
        return None
    rules = message_rules(message.patient.organization_id)
    visit = message.appointment
    zone = visit.location.timezone if visit is not None else message.patient.timezone

    def waking(moment: datetime) -> datetime:
        return outside_quiet_hours(
            moment, zone=zone, quiet_from=rules.quiet_from, quiet_until=rules.quiet_until
        )

    if waking(message.due_at) != message.due_at:
        return None  # queued for the quiet hours on purpose
    morning = waking(now)
    return morning if morning != now else None


def _send(message: Message) -> None:
    rendered = message_render(message)
    if message.channel == Message.Channel.EMAIL:
        email_send(to=message.recipient, rendered=rendered, message_id=message.message_id)
    else:
        sms_send(to=message.recipient, text=rendered.body.strip(), message_id=message.message_id)


def message_deliver_now(
    message_id: int, *, worker: str = WORKER_ID, now: datetime | None = None
) -> str:
    """Claim, send and record one message; returns what happened (``sent``, ``retry``,
    ``dead``, ``withdrawn`` when it is no longer wanted, ``deferred`` when its turn came in
    quiet hours, or ``skipped`` when it was not due, not pending or held by another worker).
    """
    from microneedling.notifications.tasks import message_deliver  # noqa: PLC0415 (cycle)

    started = now or timezone.now()
    message = message_claim(message_id, worker=worker, now=started)
    if message is None:
        later = Message.objects.filter(
            pk=message_id, status=Message.Status.PENDING, available_at__gt=started
        ).values_list("available_at", flat=True)
        for when in later:  # run early (a stale task): come back when it is due
            message_deliver.using(run_after=when).enqueue(message_id)
        return "skipped"
    mine = Message.objects.filter(pk=message.pk, worker=worker, status=Message.Status.SENDING)
    queued_to = (message.channel, message.recipient)
    reason = _withdrawal_reason(message, now=started)
    if reason == BEGUN and message.last_error:
        # Wanted, but every try failed until it was too late: the patient was never reached,
        # which staff must see (withdrawn, it would vanish from the dead-letter list). Not an
        # attempt, so the claim's count is given back; its last delivery error stays.
        mine.update(status=Message.Status.DEAD, attempts=F("attempts") - 1, lease_until=None)
        return "dead"
    if reason:
        mine.update(status=Message.Status.CANCELLED, last_error=reason, lease_until=None)
        return "withdrawn"
    morning = _quiet_until(message, started)
    if morning is not None:
        # Not an attempt: the claim's count is given back, so waiting costs no retry.
        with transaction.atomic():
            if mine.update(
                status=Message.Status.PENDING,
                available_at=morning,
                attempts=F("attempts") - 1,
                lease_until=None,
            ):
                message_deliver.using(run_after=morning).enqueue(message.pk)
        return "deferred"
    if (message.channel, message.recipient) != queued_to:  # the patient's route as it is now
        mine.update(channel=message.channel, recipient=message.recipient)
    error = ""
    try:
        _send(message)
    except DeliveryError as problem:
        error = str(problem)[:300]
    except Exception as problem:
        error = f"{type(problem).__name__} while preparing the message"
    finished = max(timezone.now(), started)
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            message=message,
            number=message.attempts,
            worker=worker,
            outcome=DeliveryAttempt.Outcome.FAILED if error else DeliveryAttempt.Outcome.SENT,
            error=error,
            started_at=started,
            finished_at=finished,
        )
        if not error:
            # Withdrawn while in flight but gone out all the same: the record says so.
            Message.objects.filter(
                pk=message.pk,
                worker=worker,
                status__in=(Message.Status.SENDING, Message.Status.CANCELLED),
            ).update(status=Message.Status.SENT, sent_at=finished, lease_until=None)
            return "sent"
        if _given_up(message, now=started):
            changed = mine.update(status=Message.Status.DEAD, last_error=error, lease_until=None)
            return "dead" if changed else "withdrawn"
        retry_at = started + _backoff(message.attempts)
        changed = mine.update(
            status=Message.Status.PENDING,
            available_at=retry_at,
            last_error=error,
            lease_until=None,
        )
        if not changed:  # withdrawn while in flight: it stays withdrawn
            return "withdrawn"
        message_deliver.using(run_after=retry_at).enqueue(message.pk)
    return "retry"


def outbox_recover(*, now: datetime | None = None) -> int:
    """Give lost messages a new delivery task: those whose worker died while sending (lease
    run out), and pending ones long past due whose task never ran to the end (its worker was
    killed holding it). A duplicate task is harmless: the claim lets only one through."""
    from microneedling.notifications.tasks import message_deliver  # noqa: PLC0415 (cycle)

    now = now or timezone.now()
    stale = Q(status=Message.Status.SENDING, lease_until__lt=now) | Q(
        status=Message.Status.PENDING, available_at__lt=now - 2 * _lease()
    )
    # A bounded batch, oldest first: a pass after a long outage must not hold the database
    # for minutes; the next pass takes the next batch.
    batch = settings.MICRONEEDLING["OUTBOX_SWEEP_BATCH"]
    ids = list(
        Message.objects.filter(stale)
        .order_by("available_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    if not ids:
        return 0
    with transaction.atomic():
        # Due from now on: the next pass leaves these to the tasks given here, rather than
        # queuing another task for each while the workers work through a backlog.
        Message.objects.filter(pk__in=ids, status=Message.Status.PENDING).update(available_at=now)
        tasks_enqueue(message_deliver, [((message_id,), now) for message_id in ids])
    return len(ids)


def message_retry(*, message: Message, actor: object, now: datetime | None = None) -> Message:
    """Staff send a dead message again from the start (audited), or withdraw it instead when
    it is stale: what it says no longer holds (the visit cancelled or moved, the patient's
    choices changed, see ``_withdrawal_reason``) or its visit has begun. The message comes
    back ``pending`` or ``cancelled`` accordingly."""
    from microneedling.audit.services import audit_record  # noqa: PLC0415
    from microneedling.notifications.tasks import message_deliver  # noqa: PLC0415

    now = now or timezone.now()
    with transaction.atomic():
        current = (
            Message.objects.select_related("patient", "appointment__location")
            .filter(pk=message.pk, status=Message.Status.DEAD)
            .first()
        )
        reason = ""
        if current is not None:
            reason = _withdrawal_reason(current, now=now)
        dead = Message.objects.filter(pk=message.pk, status=Message.Status.DEAD)
        if current is None:
            pass  # sent again or withdrawn by someone else a moment ago: nothing to do
        elif reason:
            dead.update(status=Message.Status.CANCELLED, last_error=reason)
        elif dead.update(
            status=Message.Status.PENDING,
            attempts=0,
            available_at=now,
            last_error="",
            recipient=current.recipient,  # the patient's address as it is now
        ):
            message_deliver.enqueue(message.pk)
        details: dict[str, object] = {"kind": message.kind, "patient": message.patient_id}
        if reason:
            details["withdrawn"] = reason
        audit_record(
            actor=actor,  # type: ignore[arg-type]
            action="message_retry",
            object_type="message",
            object_id=message.pk,
            # Named, so that the resend shows in the patient's access log and audit search.
            details=details,
        )
    message.refresh_from_db()
    return message
