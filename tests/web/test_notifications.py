"""The outbox: what each change queues, in the change's own transaction, and how each
message is delivered to a real SMTP server or a real HTTP SMS provider, with retries and a
dead-letter list."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult
from icalendar import Calendar

from microneedling.audit.models import AuditEvent
from microneedling.core.errors import BookingConflict
from microneedling.directory.models import ClinicPolicy
from microneedling.notifications import channels
from microneedling.notifications.delivery import message_deliver_now, outbox_recover
from microneedling.notifications.models import ContactPreference, DeliveryAttempt, Message
from microneedling.notifications.outbox import message_queue
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, Course
from tests.web.conftest import (
    MONDAY,
    NOW,
    TZ,
    Clinic,
    book_course,
    build_clinic,
    local,
    make_patient,
    make_staff,
    screen_again,
)
from tests.web.sinks import MailSink, SmsSink, mail_sink, sms_sink

pytestmark = pytest.mark.usefixtures("frozen_now")
#: The key part of the reminder sent when a visit's earliest pre-care starts.
GETTING_READY = ":reminder:getting_ready:"


@pytest.fixture
def smtp(settings) -> Iterator[MailSink]:
    for sink in mail_sink():
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        channels._mail_reset()  # a connection from an earlier test points elsewhere
        yield sink
        channels._mail_reset()


@pytest.fixture
def sms(settings) -> Iterator[SmsSink]:
    for sink in sms_sink():
        settings.MICRONEEDLING = {
            **settings.MICRONEEDLING,
            "SMS_BACKEND": "webhook",
            "SMS_WEBHOOK_URL": sink.url,
            "SMS_WEBHOOK_TOKEN": "sms-test-token",
        }
        yield sink


def texting(patient, **choices: bool) -> None:  # type: ignore[no-untyped-def]
    """The patient gives a mobile number and chooses channels."""
    ContactPreference.objects.create(patient=patient, **choices)
    patient.phone = "+12105550123"
    patient.save()


def book_monday(clinic: Clinic, patient, hour: int = 10) -> Appointment:  # type: ignore[no-untyped-def]
    """One visit with Dr. Quill on the Monday of the tests."""
    return services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, hour),
    )


def kinds(**filters: object) -> Counter[str]:
    return Counter(Message.objects.filter(**filters).values_list("kind", flat=True))


def deliver_all() -> Counter[str]:
    """Deliver every message when its turn comes (one leading up to a visit, sent after the
    visit began, would be withdrawn)."""
    return Counter(
        message_deliver_now(pk, now=when)
        for pk, when in Message.objects.order_by("due_at").values_list("pk", "available_at")
    )


# --- What a change queues ------------------------------------------------------------------


def test_booking_a_course_queues_one_confirmation_and_each_visits_timed_messages(
    clinic: Clinic,
) -> None:
    course = book_course(clinic, make_patient(clinic))
    visits = Appointment.objects.filter(course_session__course=course).count()
    assert visits == 3
    counted = kinds()
    assert counted["course_booked"] == 1
    # 48 h and 24 h before each, and on the morning its earliest pre-care starts (two weeks
    # ahead) for each visit that is still that far off.
    far_off = Appointment.objects.filter(
        course_session__course=course, starts_at__gt=NOW + timedelta(days=15)
    ).count()
    assert far_off == 2
    assert counted["reminder"] == 2 * visits + far_off
    assert counted["pre_care"] == visits
    assert counted["aftercare_check"] == 2 * visits  # day 1 and day 3
    assert counted["maintenance_due"] == 1  # after the last session
    assert "visit_booked" not in counted  # the course confirmation covers every visit
    # Every message has its delivery task, written with it.
    assert DBTaskResult.objects.count() == Message.objects.count()


def test_a_refused_booking_leaves_no_message_and_no_task(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    book_monday(clinic, patient)
    before = (Message.objects.count(), DBTaskResult.objects.count())
    with pytest.raises(BookingConflict):
        services.appointment_book(
            patient=make_patient(clinic, name="Dev Patel"),
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=local(MONDAY, 10, 15),
        )
    assert (Message.objects.count(), DBTaskResult.objects.count()) == before


def test_timed_messages_never_fall_in_the_clinics_quiet_hours(clinic: Clinic) -> None:
    ClinicPolicy.objects.create(
        organization=clinic.org, reminder_hours=[13], quiet_from=time(20), quiet_until=time(7)
    )
    patient = make_patient(clinic)
    services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 9),  # 13 h before is 20:00 the evening before: quiet
    )
    reminder = Message.objects.get(kind="reminder")
    assert reminder.due_at.astimezone(TZ) == local(MONDAY, 7)
    for message in Message.objects.exclude(kind="visit_booked"):
        clock = message.due_at.astimezone(ZoneInfo(patient.timezone)).time()
        assert time(7) <= clock < time(20), message.kind


def confirmed(course: Course) -> Course:
    """The course's confirmation goes out, as a worker sends it: the patient has heard the
    times (a move is then news; see the test of a move before the confirmation went)."""
    for message in Message.objects.filter(
        kind="course_booked", key__startswith=f"course:{course.pk}:"
    ):
        assert message_deliver_now(message.pk, now=message.available_at) == "sent"
    return course


def test_moving_a_visit_withdraws_its_old_reminders_and_queues_new_ones(
    clinic: Clinic, smtp: MailSink
) -> None:
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = confirmed(book_course(clinic, make_patient(clinic)))
    second = course.sessions.get(number=2).appointments.get()
    old_keys = set(Message.objects.filter(appointment=second).values_list("key", flat=True))
    course_session_move(
        appointment=second,
        starts_at=local(course.sessions.get(number=2).latest, 14),
        actor=None,
        apply=True,
    )
    withdrawn = Message.objects.filter(key__in=old_keys, status="cancelled")
    assert set(withdrawn.values_list("kind", flat=True)) == {
        "reminder",
        "pre_care",
        "aftercare_check",
    }
    fresh = Message.objects.filter(appointment=second, status="pending")
    assert kinds(appointment=second, status="pending")["visit_moved"] == 1
    reminders = fresh.filter(kind="reminder").exclude(key__contains=GETTING_READY)
    assert reminders.count() == 2
    second.refresh_from_db()
    for reminder in reminders:
        assert reminder.due_at in {
            second.starts_at - timedelta(hours=48),
            second.starts_at - timedelta(hours=24),
        }


def test_cancelling_a_visit_withdraws_what_was_to_come_and_says_so(clinic: Clinic) -> None:
    course = book_course(clinic, make_patient(clinic))
    first = course.sessions.get(number=1).appointments.get()
    services.appointment_cancel(appointment=first, actor=None)
    assert not Message.objects.filter(appointment=first, kind="reminder", status="pending").exists()
    assert kinds(appointment=first)["visit_cancelled"] == 1


def test_a_missed_visit_is_told_as_missed_not_as_cancelled(clinic: Clinic, smtp: MailSink) -> None:
    import time_machine  # noqa: PLC0415

    visit = book_monday(clinic, make_patient(clinic))
    with time_machine.travel(local(MONDAY, 11), tick=False):
        services.appointment_set_status(appointment=visit, status="no_show", actor=None)
        assert kinds(appointment=visit)["visit_cancelled"] == 0
        notice = Message.objects.get(appointment=visit, kind="visit_missed")
        assert message_deliver_now(notice.pk) == "sent"
    [mail] = smtp.received
    subject = str(make_header(decode_header(mail["Subject"])))
    assert subject == "We missed you at your visit · Riverbend Group"
    parts = {part.get_content_type(): part for part in mail.walk()}
    body = parts["text/plain"].get_payload(decode=True).decode()
    assert "missed" in body and "cancelled" not in body
    assert f"{visit.starts_at.astimezone(TZ):%-d %B %Y at %H:%M}" in body
    # A past visit has no calendar entry to withdraw.
    assert "text/calendar" not in parts


def test_a_patient_who_opts_out_of_reminders_still_gets_what_they_must_know(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    texting(patient, reminders=False, sms=True)
    book_course(clinic, patient)
    counted = Counter(Message.objects.values_list("kind", "channel"))
    assert counted[("course_booked", "email")] == 1
    assert counted[("course_booked", "sms")] == 1
    assert not any(kind in {"reminder", "pre_care", "aftercare_check"} for kind, _ in counted)


def test_an_urgent_skin_report_message_goes_out_at_once_even_at_night(clinic: Clinic) -> None:
    import time_machine  # noqa: PLC0415

    from microneedling.aftercare.services import skin_report_file  # noqa: PLC0415
    from microneedling.core.triage import SymptomReport  # noqa: PLC0415

    patient = make_patient(clinic)
    texting(patient, email=True, sms=True)
    visit = book_monday(clinic, patient)
    night = local(MONDAY + timedelta(days=2), 23, 30)
    with time_machine.travel(night, tick=False):
        skin_report_file(
            appointment=visit, symptoms=[SymptomReport(code="pus", severity="moderate")]
        )
    for message in Message.objects.filter(kind="skin_report_escalated"):
        assert message.due_at == night


# --- Delivery ------------------------------------------------------------------------------


def test_a_confirmation_arrives_at_the_smtp_server_with_its_calendar_and_message_id(
    clinic: Clinic, smtp: MailSink
) -> None:
    book_course(clinic, make_patient(clinic))
    confirmation = Message.objects.get(kind="course_booked")
    assert message_deliver_now(confirmation.pk) == "sent"
    [mail] = smtp.received
    assert mail["Message-ID"] == confirmation.message_id
    assert mail["To"] == "cleo@example.test"
    parts = {part.get_content_type(): part for part in mail.walk()}
    body = parts["text/plain"].get_payload(decode=True).decode()
    assert "Riverbend" in body and "Hello Cleo" in body
    calendar = Calendar.from_ical(parts["text/calendar"].get_payload(decode=True))
    events = calendar.walk("VEVENT")
    assert len(events) == 3
    assert calendar.walk("VTIMEZONE")[0]["TZID"] == "America/Chicago"
    confirmation.refresh_from_db()
    assert confirmation.status == "sent"
    assert confirmation.deliveries.get().outcome == "sent"
    # Sending it again does nothing: it is no longer pending.
    assert message_deliver_now(confirmation.pk) == "skipped"
    assert len(smtp.received) == 1


def test_a_course_confirmation_sent_after_a_visit_was_called_off_lists_only_the_rest(
    clinic: Clinic, smtp: MailSink
) -> None:
    course = book_course(clinic, make_patient(clinic))
    confirmation = Message.objects.get(kind="course_booked")
    first, second, third = (course.sessions.get(number=n).appointments.get() for n in (1, 2, 3))
    # Before the confirmation goes out (the mail server was down, or it waits for the
    # morning), one visit is cancelled and another found to be entered in error.
    services.appointment_cancel(appointment=second, actor=None)
    services.appointment_set_status(appointment=third, status="entered_in_error", actor=None)
    assert message_deliver_now(confirmation.pk) == "sent"
    [mail] = smtp.received
    parts = {part.get_content_type(): part for part in mail.walk()}
    body = parts["text/plain"].get_payload(decode=True).decode()
    calendar = Calendar.from_ical(parts["text/calendar"].get_payload(decode=True))
    uids = [str(event["UID"]) for event in calendar.walk("VEVENT")]
    assert uids == [f"appointment-{first.pk}@microneedling.clinic"]
    for gone in (second, third):
        assert f"{gone.starts_at.astimezone(TZ):%-d %B %Y at %H:%M}" not in body
    assert f"{first.starts_at.astimezone(TZ):%-d %B %Y at %H:%M}" in body


def test_a_course_confirmation_is_withdrawn_when_every_visit_it_lists_was_cancelled(
    clinic: Clinic, smtp: MailSink
) -> None:
    course = book_course(clinic, make_patient(clinic))
    confirmation = Message.objects.get(kind="course_booked")
    for session in course.sessions.all():
        services.appointment_cancel(appointment=session.appointments.get(), actor=None)
    assert message_deliver_now(confirmation.pk) == "withdrawn"
    assert not any(m["Message-ID"] == confirmation.message_id for m in smtp.received)


def test_a_reminder_is_not_sent_before_it_is_due(clinic: Clinic, smtp: MailSink) -> None:
    book_course(clinic, make_patient(clinic))
    reminder = Message.objects.filter(kind="reminder").order_by("due_at").first()
    assert reminder is not None
    assert message_deliver_now(reminder.pk, now=reminder.due_at - timedelta(minutes=1)) == (
        "skipped"
    )
    assert message_deliver_now(reminder.pk, now=reminder.due_at) == "sent"
    assert len(smtp.received) == 1


def test_every_message_of_a_course_renders_and_arrives(clinic: Clinic, smtp: MailSink) -> None:
    book_course(clinic, make_patient(clinic))
    outcomes = deliver_all()
    assert outcomes == Counter({"sent": Message.objects.count()})
    assert sorted(smtp.message_ids()) == sorted(m.message_id for m in Message.objects.all())


def test_a_text_message_posts_to_the_provider_with_date_time_and_place_only(
    clinic: Clinic, sms: SmsSink
) -> None:
    patient = make_patient(clinic)
    texting(patient, email=False, sms=True)
    book_course(clinic, patient)
    outcomes = deliver_all()
    assert outcomes["sent"] == Message.objects.filter(channel="sms").count() > 0
    assert all(h["Authorization"] == "Bearer sms-test-token" for h in sms.headers)
    texts = [r["text"] for r in sms.received]
    assert {r["to"] for r in sms.received} == {"+12105550123"}
    for text in texts:
        lowered = text.lower()
        for private in ("microneedling", "acne", "scar", "skin", "cleo", "marsh", "medicine"):
            assert private not in lowered, text


def test_a_failing_channel_retries_with_backoff_then_lands_in_the_dead_letter_list(
    clinic: Clinic, sms: SmsSink, settings
) -> None:
    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "OUTBOX_MAX_ATTEMPTS": 3}
    patient = make_patient(clinic)
    texting(patient, email=False, sms=True)
    book_monday(clinic, patient)
    confirmation = Message.objects.get(kind="visit_booked")
    sms.answer = 503
    now = NOW
    assert message_deliver_now(confirmation.pk, now=now) == "retry"
    confirmation.refresh_from_db()
    first_wait = confirmation.available_at - now
    assert timedelta(seconds=50) < first_wait <= timedelta(minutes=1, seconds=10)
    assert message_deliver_now(confirmation.pk, now=now + timedelta(seconds=5)) == "skipped"
    now = confirmation.available_at
    assert message_deliver_now(confirmation.pk, now=now) == "retry"
    confirmation.refresh_from_db()
    assert confirmation.available_at - now > first_wait  # it backs off
    assert message_deliver_now(confirmation.pk, now=confirmation.available_at) == "dead"
    confirmation.refresh_from_db()
    assert confirmation.status == "dead"
    assert "503" in confirmation.last_error
    assert list(confirmation.deliveries.values_list("outcome", flat=True)) == ["failed"] * 3

    # Staff see it and send it again once the provider is back.
    staff = Client()
    staff.force_login(make_staff("ida.front"))
    page = staff.get(reverse("desk:dead_messages")).content.decode()
    assert "Your visit is booked" in page and "503" in page
    sms.answer = 200
    staff.post(reverse("desk:dead_message_retry", args=[confirmation.pk]))
    confirmation.refresh_from_db()
    assert confirmation.status == "pending" and confirmation.attempts == 0
    assert AuditEvent.objects.filter(action="message_retry").count() == 1
    assert message_deliver_now(confirmation.pk, now=confirmation.available_at) == "sent"
    assert len(sms.received) == 1


def test_a_message_whose_worker_died_mid_send_is_taken_up_after_its_lease(
    clinic: Clinic, smtp: MailSink
) -> None:
    from microneedling.notifications.delivery import message_claim  # noqa: PLC0415

    book_course(clinic, make_patient(clinic))
    confirmation = Message.objects.get(kind="course_booked")
    assert message_claim(confirmation.pk, worker="dead-worker", now=NOW) is not None
    # Another worker cannot take it while the lease runs...
    assert message_deliver_now(confirmation.pk, worker="w2", now=NOW) == "skipped"
    assert not smtp.received
    # ...and the sweep hands it a new task once the lease is over.
    after_lease = NOW + timedelta(minutes=10)
    tasks_before = DBTaskResult.objects.count()
    assert outbox_recover(now=after_lease) >= 1
    assert DBTaskResult.objects.count() > tasks_before
    assert message_deliver_now(confirmation.pk, worker="w2", now=after_lease) == "sent"
    confirmation.refresh_from_db()
    assert confirmation.attempts == 2
    assert DeliveryAttempt.objects.filter(message=confirmation).count() == 1


# --- Timed messages around a course --------------------------------------------------------


def test_a_medicine_pause_is_announced_on_the_morning_it_must_start(
    clinic: Clinic, smtp: MailSink
) -> None:
    patient = make_patient(clinic, medications=[{"code": "nsaid"}])
    visit = book_monday(clinic, patient)
    hold = Message.objects.get(kind="hold_start")
    assert hold.appointment == visit
    # The pack pauses NSAIDs a week before: 1 March, 08:00 local (NOW is 08:00 that day).
    assert hold.due_at == local(MONDAY - timedelta(days=7), 8)
    assert hold.context["medicine"] == "nsaid"
    assert message_deliver_now(hold.pk, now=hold.due_at) == "sent"
    body = smtp.received[0].get_payload(decode=True).decode()
    assert "ibuprofen" in body  # the pack's own advice on this medicine
    assert hold.context["resume_on"] in body


def test_a_medicine_pause_follows_an_intake_answered_again_after_booking(
    clinic: Clinic, smtp: MailSink
) -> None:
    patient = make_patient(clinic)
    visit = book_monday(clinic, patient)
    assert not Message.objects.filter(kind="hold_start").exists()
    # After booking, the patient answers the intake again: they take ibuprofen now.
    screen_again(patient, screen_on=MONDAY, medications=[{"code": "nsaid"}])
    hold = Message.objects.get(kind="hold_start", appointment=visit, status="pending")
    assert hold.due_at == local(MONDAY - timedelta(days=7), 8)
    # Answered once more without it: the pause is no longer announced.
    screen_again(patient, screen_on=MONDAY)
    hold.refresh_from_db()
    assert hold.status == "cancelled"
    assert not Message.objects.filter(kind="hold_start", status="pending").exists()


def test_a_medicine_pause_whose_day_has_passed_at_booking_is_announced_at_once(
    clinic: Clinic, smtp: MailSink
) -> None:
    thursday = MONDAY - timedelta(days=4)  # three days after NOW
    patient = make_patient(clinic, screen_on=thursday, medications=[{"code": "nsaid"}])
    visit = services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(thursday, 10),
    )
    # NSAIDs are paused a week before: that morning is past, but the patient must still be
    # told to stop now rather than not at all (the pause is something they must know).
    hold = Message.objects.get(kind="hold_start", appointment=visit)
    assert hold.due_at == NOW
    assert message_deliver_now(hold.pk, now=NOW) == "sent"
    body = smtp.received[0].get_payload(decode=True).decode()
    assert "ibuprofen" in body


def test_a_medicine_pause_announced_late_in_the_evening_waits_for_the_morning(
    clinic: Clinic,
) -> None:
    # Only a confirmation of what the patient just did is emailed at once whatever the hour.
    evening = local(NOW.date(), 23)
    [pause] = message_queue(
        patient=make_patient(clinic),
        kind="hold_start",
        key="late-pause",
        due_at=evening,
        now=evening,
    )
    assert pause.due_at == local(NOW.date() + timedelta(days=1), 8)


def test_a_visit_booked_after_the_morning_before_still_gets_its_pre_care_that_day(
    clinic: Clinic, smtp: MailSink
) -> None:
    import time_machine  # noqa: PLC0415

    tomorrow = NOW.date() + timedelta(days=1)
    afternoon = local(NOW.date(), 15)  # the morning before (10:00) has passed
    with time_machine.travel(afternoon, tick=False):
        visit = services.appointment_book(
            patient=make_patient(clinic, screen_on=tomorrow),
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=local(tomorrow, 14),
        )
    pre_care = Message.objects.get(appointment=visit, kind="pre_care")
    assert pre_care.due_at == afternoon
    assert message_deliver_now(pre_care.pk, now=afternoon) == "sent"
    body = smtp.received[-1].get_payload(decode=True).decode()
    assert "Your visit is tomorrow" in body and "On the day:" in body
    # Booked late in the evening, it would wait out quiet hours into the visit's own day,
    # where "tomorrow" is wrong: none is queued (the confirmation links the care page).
    late = local(NOW.date(), 22, 30)
    with time_machine.travel(late, tick=False):
        evening = services.appointment_book(
            patient=make_patient(clinic, name="Eve Ning", screen_on=tomorrow),
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=local(tomorrow, 11),
        )
    assert not Message.objects.filter(appointment=evening, kind="pre_care").exists()
    assert Message.objects.filter(appointment=evening, kind="visit_booked").exists()


def test_pre_care_that_starts_weeks_ahead_is_sent_when_it_starts(
    clinic: Clinic, smtp: MailSink
) -> None:
    # The pack asks for no sunburn in the two weeks before a session (care.before.sun): a
    # reminder two days out would come too late, so one goes out two weeks before.
    visit = services.appointment_book(
        patient=make_patient(clinic),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY + timedelta(days=14), 10),
    )
    early = Message.objects.get(appointment=visit, key__contains=GETTING_READY)
    assert early.due_at == local(MONDAY, 10)
    assert message_deliver_now(early.pk, now=early.due_at) == "sent"
    body = smtp.received[0].get_payload(decode=True).decode()
    assert "two weeks" in body and "Getting ready" in body
    # A visit a week away is past that point: no late copy of it is queued.
    near = book_monday(clinic, make_patient(clinic, name="Dora Finch"), hour=14)
    assert not Message.objects.filter(appointment=near, key__contains=GETTING_READY).exists()


def test_a_maintenance_recall_is_withdrawn_when_the_patient_booked_a_visit_before_it(
    clinic: Clinic, smtp: MailSink
) -> None:
    import time_machine  # noqa: PLC0415

    patient = make_patient(clinic)
    book_course(clinic, patient)
    recall = Message.objects.get(kind="maintenance_due")
    due_day = recall.due_at.astimezone(TZ).date()
    monday = due_day + timedelta(days=7 - due_day.weekday())
    # A week before the recall is due, the patient books their maintenance session.
    with time_machine.travel(recall.due_at - timedelta(days=7), tick=False):
        screen_again(patient, screen_on=monday)
        services.appointment_book(
            patient=patient,
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=local(monday, 10),
        )
    assert message_deliver_now(recall.pk, now=recall.due_at) == "withdrawn"
    recall.refresh_from_db()
    assert recall.status == "cancelled"
    assert not any(m["Message-ID"] == recall.message_id for m in smtp.received)


def test_a_cancelled_course_session_says_when_its_window_opens(clinic: Clinic) -> None:
    course = book_course(clinic, make_patient(clinic))
    session = course.sessions.get(number=2)
    second = session.appointments.get()
    services.appointment_cancel(appointment=second, actor=None)
    window = Message.objects.get(kind="window_opens", appointment=second)
    assert window.due_at == local(session.earliest, 10)
    assert window.status == "pending"


def test_a_session_rebooked_at_once_gets_no_window_opens_message(clinic: Clinic) -> None:
    from microneedling.scheduling.rebooking import course_session_replace  # noqa: PLC0415

    course = book_course(clinic, make_patient(clinic))
    second = course.sessions.get(number=2).appointments.get()
    course_session_replace(appointment=second, status="cancelled", actor=None, apply=True)
    assert kinds(appointment=second)["visit_cancelled"] == 1
    assert not Message.objects.filter(kind="window_opens", status="pending").exists()
    replacement = course.sessions.get(number=2).appointments.get(status="booked")
    reminders = Message.objects.filter(appointment=replacement, status="pending", kind="reminder")
    assert reminders.exclude(key__contains=GETTING_READY).count() == 2


def test_a_relocated_visit_names_its_new_place_and_reschedules_its_reminders(
    clinic: Clinic,
) -> None:
    from microneedling.notifications.events import visit_relocated  # noqa: PLC0415

    visit = services.appointment_book(
        patient=make_patient(clinic),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
    )
    old_reminders = set(
        Message.objects.filter(appointment=visit, kind="reminder").values_list("pk", flat=True)
    )
    other = build_clinic(name="Lakeside")
    Appointment.objects.filter(pk=visit.pk).update(
        location=other.location, starts_at=local(MONDAY, 11), ends_at=local(MONDAY, 12, 25)
    )
    visit.refresh_from_db()
    visit_relocated(visit, note="Riverbend is closing; Dr. Quill now sees patients here.")
    change = Message.objects.get(kind="location_change")
    assert change.context["note"].startswith("Riverbend is closing")
    assert Message.objects.filter(pk__in=old_reminders, status="cancelled").count() == 2
    fresh = Message.objects.filter(appointment=visit, kind="reminder", status="pending")
    assert {m.due_at for m in fresh} == {
        local(MONDAY, 11) - timedelta(hours=48),
        local(MONDAY, 11) - timedelta(hours=24),
    }


# --- Withdrawing what is no longer wanted --------------------------------------------------


def test_closing_an_account_withdraws_every_message_still_to_go_to_the_patient(
    clinic: Clinic,
) -> None:
    from microneedling.patients.closure import patient_account_close  # noqa: PLC0415

    patient = make_patient(clinic)
    book_course(clinic, patient)
    message_queue(patient=patient, kind="screening_result", key="closing:screening")
    Message.objects.filter(kind="course_booked").update(status="dead")
    patient_account_close(patient=patient, actor=None, now=NOW)
    # A message about no visit, the cancelled visits' notices, the dead-letter confirmation:
    # nothing is left to reach a closed account.
    assert not Message.objects.filter(patient=patient, status__in=["pending", "dead"]).exists()


def test_a_message_to_a_closed_account_is_withdrawn_when_its_turn_comes(
    clinic: Clinic, smtp: MailSink
) -> None:
    patient = make_patient(clinic)
    book_monday(clinic, patient)
    confirmation = Message.objects.get(kind="visit_booked")
    # Closed by some route that left the message waiting (an older release, a restore).
    patient.closed_at = NOW
    patient.save()
    assert message_deliver_now(confirmation.pk) == "withdrawn"
    confirmation.refresh_from_db()
    assert confirmation.status == "cancelled"
    assert not smtp.received


def test_a_visit_entered_in_error_withdraws_its_messages(clinic: Clinic) -> None:
    visit = book_monday(clinic, make_patient(clinic))
    assert Message.objects.filter(appointment=visit, status="pending").exists()
    services.appointment_set_status(appointment=visit, status="entered_in_error", actor=None)
    assert not Message.objects.filter(appointment=visit, status="pending").exists()


# --- What is checked at the moment of sending ----------------------------------------------


def _first_reminder(visit: Appointment, channel: str = "email") -> Message:
    reminder = (
        Message.objects.filter(appointment=visit, kind="reminder", channel=channel)
        .order_by("due_at")
        .first()
    )
    assert reminder is not None
    return reminder


def test_a_reminder_for_a_visit_no_longer_booked_is_withdrawn_when_its_turn_comes(
    clinic: Clinic, smtp: MailSink
) -> None:
    visit = book_monday(clinic, make_patient(clinic))
    reminder = _first_reminder(visit)
    # Cancelled by a path that did not withdraw it (a restore, a bulk fix by hand).
    Appointment.objects.filter(pk=visit.pk).update(status="cancelled")
    assert message_deliver_now(reminder.pk, now=reminder.due_at) == "withdrawn"
    reminder.refresh_from_db()
    assert reminder.status == "cancelled"
    assert not smtp.received


def test_a_reminder_for_a_visit_moved_since_is_withdrawn_when_its_turn_comes(
    clinic: Clinic, smtp: MailSink
) -> None:
    visit = book_monday(clinic, make_patient(clinic))
    reminder = _first_reminder(visit)
    Appointment.objects.filter(pk=visit.pk).update(
        starts_at=local(MONDAY, 15), ends_at=local(MONDAY, 16, 25)
    )
    assert message_deliver_now(reminder.pk, now=reminder.due_at) == "withdrawn"
    assert not smtp.received


def test_a_message_leading_up_to_a_visit_is_withdrawn_when_its_turn_comes_after_it_began(
    clinic: Clinic, smtp: MailSink
) -> None:
    visit = book_monday(clinic, make_patient(clinic))
    leading_up = Message.objects.filter(
        appointment=visit, kind__in=("visit_booked", "reminder", "pre_care")
    )
    assert leading_up.count() >= 4
    # The workers were down (or the mail server refused every try) from before these fell
    # due until the visit had begun: a reminder of it now would only confuse the patient.
    begun = local(MONDAY, 10, 30)
    for message in leading_up:
        assert message_deliver_now(message.pk, now=begun) == "withdrawn", message.kind
    assert not smtp.received
    assert set(leading_up.values_list("status", "last_error")) == {
        ("cancelled", "the visit has begun")
    }
    # What follows the visit still goes out when its turn comes.
    check = Message.objects.filter(appointment=visit, kind="aftercare_check").earliest("due_at")
    assert message_deliver_now(check.pk, now=check.due_at) == "sent"
    assert len(smtp.received) == 1


def test_a_reminder_that_kept_failing_until_its_visit_began_is_left_for_staff_to_see(
    clinic: Clinic, sms: SmsSink
) -> None:
    patient = make_patient(clinic)
    texting(patient, email=False, sms=True)
    visit = book_monday(clinic, patient)
    reminder = _first_reminder(visit, "sms")
    sms.answer = 503
    assert message_deliver_now(reminder.pk, now=reminder.due_at) == "retry"
    # The workers stop after that; when the next try comes the visit has begun. Too late to
    # send, but the patient was never reached: the desk's dead-letter list must show it.
    sms.answer = 200
    assert message_deliver_now(reminder.pk, now=local(MONDAY, 10, 30)) == "dead"
    reminder.refresh_from_db()
    assert reminder.status == "dead"
    assert reminder.last_error == "SMS provider answered 503"
    assert reminder.attempts == 1  # only the real try counts
    assert not sms.received


def test_a_text_is_withdrawn_when_the_patient_stopped_texts_after_it_was_queued(
    clinic: Clinic, sms: SmsSink, smtp: MailSink
) -> None:
    patient = make_patient(clinic)
    texting(patient, email=True, sms=True)
    visit = book_monday(clinic, patient)
    ContactPreference.objects.filter(patient=patient).update(sms=False)
    text = _first_reminder(visit, "sms")
    assert message_deliver_now(text.pk, now=text.due_at) == "withdrawn"
    assert message_deliver_now(_first_reminder(visit).pk, now=text.due_at) == "sent"
    assert not sms.received and len(smtp.received) == 1


def test_a_reminder_is_withdrawn_when_the_patient_stopped_reminders_after_it_was_queued(
    clinic: Clinic, smtp: MailSink
) -> None:
    patient = make_patient(clinic)
    visit = book_monday(clinic, patient)
    ContactPreference.objects.create(patient=patient, reminders=False)
    reminder = _first_reminder(visit)
    assert message_deliver_now(reminder.pk, now=reminder.due_at) == "withdrawn"
    assert not smtp.received


def test_a_text_goes_to_the_number_the_patient_gives_after_it_was_queued(
    clinic: Clinic, sms: SmsSink
) -> None:
    patient = make_patient(clinic)
    texting(patient, email=False, sms=True)
    visit = book_monday(clinic, patient)
    patient.phone = "+12105550199"
    patient.save()
    text = _first_reminder(visit, "sms")
    assert message_deliver_now(text.pk, now=text.due_at) == "sent"
    assert [r["to"] for r in sms.received] == ["+12105550199"]
    text.refresh_from_db()
    assert text.recipient == "+12105550199"


def test_a_reminder_whose_turn_comes_at_night_waits_for_the_morning(
    clinic: Clinic, smtp: MailSink
) -> None:
    visit = book_monday(clinic, make_patient(clinic))
    reminder = _first_reminder(visit)
    night = local(MONDAY - timedelta(days=2), 23, 30)  # a worker backlogged since the morning
    assert reminder.due_at < night
    assert message_deliver_now(reminder.pk, now=night) == "deferred"
    reminder.refresh_from_db()
    assert reminder.status == "pending" and reminder.attempts == 0
    assert reminder.available_at == local(MONDAY - timedelta(days=1), 8)
    assert not smtp.received
    assert message_deliver_now(reminder.pk, now=reminder.available_at) == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_text_withdrawn_while_in_flight_is_not_queued_again_when_it_fails(
    clinic: Clinic, sms: SmsSink
) -> None:
    from django.db import connection  # noqa: PLC0415

    patient = make_patient(clinic)
    texting(patient, email=False, sms=True)
    visit = book_monday(clinic, patient)
    text = _first_reminder(visit, "sms")

    def cancelled_meanwhile() -> None:
        try:
            services.appointment_cancel(appointment=visit, actor=None)
        finally:
            connection.close()  # the server thread's own connection

    sms.answer, sms.meanwhile = 503, cancelled_meanwhile
    tasks_before = DBTaskResult.objects.filter(args_kwargs__args=[text.pk]).count()
    assert message_deliver_now(text.pk, now=text.due_at) == "withdrawn"
    text.refresh_from_db()
    assert text.status == "cancelled"
    assert DBTaskResult.objects.filter(args_kwargs__args=[text.pk]).count() == tasks_before


# --- A visit moved more than once ----------------------------------------------------------


def test_a_visit_moved_and_moved_back_gets_its_reminders_again_and_each_move_is_told(
    clinic: Clinic, smtp: MailSink
) -> None:
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = confirmed(book_course(clinic, make_patient(clinic)))
    session = course.sessions.get(number=2)
    second = session.appointments.get()
    original, elsewhere = second.starts_at, local(session.latest, 14)

    def move(to: datetime) -> None:
        course_session_move(
            appointment=Appointment.objects.get(pk=second.pk), starts_at=to, actor=None, apply=True
        )

    for to in (elsewhere, original, elsewhere, original):
        move(to)
        reminders = Message.objects.filter(
            appointment=second, kind="reminder", status="pending"
        ).exclude(key__contains=GETTING_READY)
        assert {m.due_at for m in reminders} == {
            to - timedelta(hours=48),
            to - timedelta(hours=24),
        }
    # Four moves, four messages telling of them, the last two back to times told before.
    assert kinds(appointment=second)["visit_moved"] == 4


def test_a_session_moved_before_the_courses_confirmation_went_out_is_not_told_as_a_move(
    clinic: Clinic, smtp: MailSink
) -> None:
    import time_machine  # noqa: PLC0415

    from microneedling.notifications.rendering import message_render  # noqa: PLC0415
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    staff = make_staff("ida.front")
    patient = make_patient(clinic)
    # The desk books the course late in the evening: its confirmation waits for the morning.
    # Before then, the desk moves the second session.
    with time_machine.travel(local(NOW.date(), 22), tick=False):
        course = book_course(clinic, patient, actor=staff)
        session = course.sessions.get(number=2)
        course_session_move(
            appointment=session.appointments.get(),
            starts_at=local(session.latest, 14),
            actor=staff,
            apply=True,
        )
    second = session.appointments.get()
    # The patient never heard the first time: "your visit has moved" would only puzzle them.
    assert not Message.objects.filter(appointment=second, kind="visit_moved").exists()
    [confirmation] = Message.objects.filter(kind="course_booked")
    assert confirmation.status == "pending"
    when = second.starts_at.astimezone(TZ).strftime("%A %-d %B %Y at %H:%M")
    assert when in message_render(confirmation).body
    assert message_deliver_now(confirmation.pk, now=confirmation.available_at) == "sent"
    # Once it has gone out, a move is news (to another weekday of the window).
    day = next(
        d for d in (session.latest - timedelta(days=n) for n in range(1, 7)) if d.weekday() < 5
    )
    course_session_move(appointment=second, starts_at=local(day, 14), actor=staff, apply=True)
    assert Message.objects.filter(appointment=second, kind="visit_moved").count() == 1


def test_a_visit_moved_twice_before_the_first_notice_went_out_is_told_of_once(
    clinic: Clinic, smtp: MailSink
) -> None:
    import time_machine  # noqa: PLC0415

    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = confirmed(book_course(clinic, make_patient(clinic)))
    session = course.sessions.get(number=2)
    second = session.appointments.get()
    original, elsewhere = second.starts_at, local(session.latest, 14)
    staff = make_staff("ida.front")
    # The desk moves the visit late in the evening and then back: both notices wait for the
    # morning, and each would say the same thing (a notice reads the visit when it is sent).
    with time_machine.travel(local(NOW.date(), 22), tick=False):
        for to in (elsewhere, original):
            course_session_move(
                appointment=Appointment.objects.get(pk=second.pk),
                starts_at=to,
                actor=staff,
                apply=True,
            )
    notices = Message.objects.filter(appointment=second, kind="visit_moved").order_by("pk")
    assert notices.count() == 2
    morning = local(NOW.date() + timedelta(days=1), 8)
    told_before = len(smtp.received)  # the course's confirmation
    outcomes = [message_deliver_now(m.pk, now=morning) for m in notices]
    assert outcomes.count("sent") == 1
    assert len(smtp.received) == told_before + 1
    # The one that went out is the latest: the first was superseded before it was sent.
    assert notices.last().status == "sent"  # type: ignore[union-attr]
    assert notices.first().status == "cancelled"  # type: ignore[union-attr]


def test_a_dead_notice_of_a_move_leaves_the_dead_letter_list_when_a_later_move_is_told(
    clinic: Clinic, smtp: MailSink
) -> None:
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    course = confirmed(book_course(clinic, make_patient(clinic)))
    session = course.sessions.get(number=2)
    second = session.appointments.get()
    original, elsewhere = second.starts_at, local(session.latest, 14)
    for to in (elsewhere, original):
        course_session_move(
            appointment=Appointment.objects.get(pk=second.pk), starts_at=to, actor=None, apply=True
        )
        if to == elsewhere:
            # The first notice never got through; the desk would see it to send again.
            _dead(Message.objects.get(appointment=second, kind="visit_moved"))
    first, latest = Message.objects.filter(appointment=second, kind="visit_moved").order_by("pk")
    # Sent again, it would tell what the later notice tells: it is withdrawn instead.
    assert first.status == "cancelled"
    assert latest.status == "pending"


# --- The sweep -----------------------------------------------------------------------------


def test_the_sweep_survives_a_failing_pass_and_logs_it_without_personal_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import threading  # noqa: PLC0415

    from microneedling.notifications.worker import _sweep_forever  # noqa: PLC0415

    passes: list[int] = []
    again, stop = threading.Event(), threading.Event()

    def sweep() -> int:
        passes.append(1)
        if len(passes) == 1:
            raise ValueError("no such address cleo@example.test")
        again.set()
        return 0

    sweeper = threading.Thread(target=_sweep_forever, args=(0.01, stop, sweep), daemon=True)
    with caplog.at_level("ERROR"):
        sweeper.start()
        try:
            assert again.wait(5), "the sweep died with its first failure"
        finally:
            stop.set()
            sweeper.join(5)
    [record] = [r for r in caplog.records if r.name.startswith("microneedling")]
    assert "ValueError" in record.getMessage()
    assert "cleo" not in record.getMessage() and record.exc_info is None


def test_one_sweep_pass_hands_out_a_bounded_batch_oldest_first(clinic: Clinic, settings) -> None:
    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "OUTBOX_SWEEP_BATCH": 2}
    patient = make_patient(clinic)
    for number in range(5):
        message_queue(patient=patient, kind="screening_result", key=f"sweep:{number}")
    tasks_before = DBTaskResult.objects.count()
    much_later = NOW + timedelta(hours=1)  # every task's worker long gone
    assert outbox_recover(now=much_later) == 2
    assert DBTaskResult.objects.count() == tasks_before + 2
    # The next pass takes the next ones, not the same again.
    assert outbox_recover(now=much_later) == 2
    assert outbox_recover(now=much_later) == 1
    assert outbox_recover(now=much_later) == 0


# --- Retries -------------------------------------------------------------------------------


def test_a_failing_message_is_retried_for_a_day_backing_off_at_most_an_hour_then_dead(
    clinic: Clinic, sms: SmsSink
) -> None:
    patient = make_patient(clinic)
    texting(patient, email=False, sms=True)
    book_monday(clinic, patient)
    confirmation = Message.objects.get(kind="visit_booked")
    sms.answer = 503  # the provider is down for more than a day
    now, outcomes, waits = NOW, Counter[str](), []
    while outcomes["dead"] == 0 and sum(outcomes.values()) < 200:
        outcome = message_deliver_now(confirmation.pk, now=now)
        outcomes[outcome] += 1
        confirmation.refresh_from_db()
        if outcome == "retry":
            waits.append(confirmation.available_at - now)
        now = confirmation.available_at
    assert outcomes["dead"] == 1
    # An outage of an hour or two does not send it to the dead-letter list...
    assert confirmation.deliveries.filter(started_at__gte=NOW + timedelta(hours=2)).exists()
    # ...a whole day does, and the waits grow to an hour and no further.
    [last] = confirmation.deliveries.order_by("-started_at")[:1]
    assert NOW + timedelta(hours=24) <= last.started_at < NOW + timedelta(hours=26)
    assert waits[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert max(waits) == timedelta(minutes=60)


# --- Staff sending a dead message again ----------------------------------------------------


def _dead(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(status="dead", attempts=6, last_error="503")


def _send_again(message: Message) -> str:
    staff = Client()
    staff.force_login(make_staff("ida.front"))
    page = staff.post(reverse("desk:dead_message_retry", args=[message.pk]), follow=True)
    assert page.status_code == 200
    return page.content.decode()


def test_sending_again_a_dead_message_about_a_cancelled_visit_withdraws_it(
    clinic: Clinic,
) -> None:
    visit = book_monday(clinic, make_patient(clinic))
    confirmation = Message.objects.get(kind="visit_booked")
    _dead(confirmation)
    services.appointment_cancel(appointment=visit, actor=None)
    page = _send_again(confirmation)
    confirmation.refresh_from_db()
    assert confirmation.status == "cancelled"
    assert "will be sent again" not in page
    assert "withdrawn" in page
    assert AuditEvent.objects.filter(action="message_retry").count() == 1


def test_sending_again_a_dead_reminder_of_a_visit_now_past_withdraws_it(clinic: Clinic) -> None:
    import time_machine  # noqa: PLC0415

    visit = book_monday(clinic, make_patient(clinic))
    reminder = _first_reminder(visit)
    _dead(reminder)
    with time_machine.travel(local(MONDAY, 15), tick=False):
        page = _send_again(reminder)
    reminder.refresh_from_db()
    assert reminder.status == "cancelled"
    assert "will be sent again" not in page


# --- Quiet hours for what staff do ---------------------------------------------------------


def test_an_email_caused_by_staff_at_night_waits_for_the_morning(clinic: Clinic) -> None:
    import time_machine  # noqa: PLC0415

    visit = book_monday(clinic, make_patient(clinic))
    night = local(MONDAY - timedelta(days=3), 23, 30)
    with time_machine.travel(night, tick=False):
        services.appointment_cancel(appointment=visit, actor=make_staff("ida.front"))
    notice = Message.objects.get(kind="visit_cancelled")
    assert notice.due_at == local(MONDAY - timedelta(days=2), 8)
    assert notice.available_at == notice.due_at


def test_a_visit_relocated_back_and_forth_tells_the_patient_each_time(clinic: Clinic) -> None:
    from microneedling.notifications.events import visit_relocated  # noqa: PLC0415

    visit = book_monday(clinic, make_patient(clinic))
    home, other = clinic.location, build_clinic(name="Lakeside").location
    for place in (other, home, other):
        Appointment.objects.filter(pk=visit.pk).update(location=place)
        visit.refresh_from_db()
        visit_relocated(visit, reschedule=False)
    assert kinds(appointment=visit)["location_change"] == 3


def test_a_mail_connection_the_server_dropped_while_idle_is_opened_again_at_once(
    settings,
) -> None:  # type: ignore[no-untyped-def]
    import socket  # noqa: PLC0415
    import time  # noqa: PLC0415

    from aiosmtpd.controller import Controller  # noqa: PLC0415

    sink = MailSink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        sink.port = probe.getsockname()[1]
    # A server that drops a connection idle for half a second, as real ones do after minutes.
    server = Controller(sink, hostname="127.0.0.1", port=sink.port, ready_timeout=10, timeout=0.5)
    server.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        channels._mail_reset()
        note = channels.Rendered(subject="Your visit", body="See you on Monday.")
        channels.email_send(to="cleo@example.test", rendered=note, message_id="<one@test>")
        time.sleep(1.5)  # the kept connection is closed by the server meanwhile
        channels.email_send(to="cleo@example.test", rendered=note, message_id="<two@test>")
        assert sink.message_ids() == ["<one@test>", "<two@test>"]
    finally:
        channels._mail_reset()
        server.stop()


def test_a_message_follows_the_patient_to_texts_and_a_reminder_stops_with_reminders_off(
    clinic: Clinic, sms: SmsSink
) -> None:
    patient = make_patient(clinic)
    visit = book_monday(clinic, patient)
    booked = Message.objects.get(kind="visit_booked", channel="email")
    reminders = list(Message.objects.filter(appointment=visit, kind="reminder"))
    assert reminders and all(r.channel == "email" for r in reminders)
    # Before it goes out, the patient turns e-mail off and takes texts instead.
    texting(patient, email=False, sms=True)
    assert message_deliver_now(booked.pk, now=booked.available_at + timedelta(minutes=1)) == "sent"
    booked.refresh_from_db()
    assert (booked.channel, booked.recipient, booked.status) == ("sms", "+12105550123", "sent")
    assert [r["to"] for r in sms.received] == ["+12105550123"]
    # A reminder follows them too, while they take reminders at all.
    first = reminders[0]
    assert message_deliver_now(first.pk, now=first.available_at + timedelta(minutes=1)) == "sent"
    ContactPreference.objects.filter(patient=patient).update(reminders=False)
    second = reminders[1]
    assert message_deliver_now(second.pk, now=second.available_at + timedelta(minutes=1)) == (
        "withdrawn"
    )
