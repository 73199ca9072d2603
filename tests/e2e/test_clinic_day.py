"""The whole journey in a real browser: a patient books a course and signs the consent; the
first session happens; their skin report escalates; a provider finds it in the queue, charts
and scores the session; the front desk moves a later session inside its window."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from microneedling.aftercare.models import SkinReport
from microneedling.charting.models import OutcomeScore, ProcedureChart
from microneedling.directory.models import CartridgeLot
from microneedling.scheduling.models import Appointment, Course
from tests.e2e.conftest import (
    PASSWORD,
    answer_intake,
    check_accessibility,
    confirm_sign_up,
    fill_sign_up,
    screenshot,
)
from tests.web.conftest import build_clinic, make_staff, totp_code

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/my/sign-in/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    user = get_user_model().objects.get(username=username)
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        # Staff: the second step asks for the authenticator's code.
        page.get_by_label("Code from your authenticator app").fill(totp_code(user))
        page.get_by_role("button", name="Continue").click()


def test_report_escalates_to_a_provider_who_charts_and_scores_and_the_desk_moves_a_session(
    phone, desk, settings
) -> None:  # type: ignore[no-untyped-def]
    # The journey jumps weeks ahead in seconds; sessions ending after 30 idle minutes has its
    # own test (tests/web/test_security.py), so here they last the whole journey.
    settings.SESSION_COOKIE_AGE = 365 * 24 * 3600
    clinic = build_clinic(name="Riverbend")
    zone = ZoneInfo(clinic.location.timezone)
    CartridgeLot.objects.create(
        location=clinic.location,
        device_model="SkinPen",
        lot_number="A1234",
        expires_on=timezone.localdate() + timedelta(days=365),
        quantity=50,
    )
    make_staff("ada.quill", "provider", provider=clinic.ada, password=PASSWORD, first_name="Ada")
    course = patient_books_and_signs_consent(phone, clinic)
    first = Appointment.objects.get(course_session__course=course, course_session__number=1)
    session_day = first.starts_at.astimezone(zone).date()
    with time_machine.travel(datetime.combine(session_day, time(18), tzinfo=zone), tick=True):
        provider_runs_and_charts_the_session(desk, clinic, session_day)
    later = datetime.combine(session_day + timedelta(days=2), time(9), tzinfo=zone)
    with time_machine.travel(later, tick=True):
        patient_reports_and_provider_handles_it(phone, desk, first)

    chart = ProcedureChart.objects.get(appointment=first)
    assert chart.locked and chart.areas == [{"area": "face", "depth_mm": 1.0, "passes": 3}]
    assert OutcomeScore.objects.get(appointment=first).value == 3
    front_desk_moves_session_two(desk, course, zone)


def patient_books_and_signs_consent(phone, clinic) -> Course:  # type: ignore[no-untyped-def]
    """Sign up, answer, book the course, sign the consent."""
    phone.goto("/my/sign-up/")
    fill_sign_up(
        phone,
        first="Hana",
        last="Ito",
        email="hana.ito@example.org",
        born="1992-07-30",
        clinic=str(clinic.location),
    )
    phone.get_by_role("button", name="Create account").click()
    confirm_sign_up(phone, "hana.ito@example.org")
    first_day = timezone.localdate() + timedelta(days=2)
    while first_day.weekday() > 3:  # a Monday to Thursday, so the day after is open too
        first_day += timedelta(days=1)
    answer_intake(
        phone, planned=first_day.isoformat(), skin="II: fair, usually burns, tans a little"
    )
    phone.get_by_role("button", name="See the result").click()
    phone.get_by_role("link", name="Plan and book your course").click()
    phone.get_by_role("heading", name="Plan your course").wait_for()
    phone.get_by_label("Acne scars").check()
    phone.get_by_label("First session on or after").fill(first_day.isoformat())
    phone.get_by_role("button", name="Show my course").click()
    phone.get_by_role("button", name="Book all 3 sessions").click()
    phone.get_by_role("heading", name="My course at Riverbend").wait_for()
    phone.get_by_role("link", name="My care").click()
    phone.get_by_role("heading", name="Hello, Hana").wait_for()
    phone.get_by_role("link", name="read and sign the consent").click()
    phone.get_by_role("heading", name="Consent to microneedling").wait_for()
    check_accessibility(phone)
    phone.get_by_label("I have read this and I agree").check()
    phone.get_by_label("Your full name, as your signature").fill("Hana Ito")
    phone.get_by_role("button", name="Sign", exact=True).click()
    phone.get_by_text("your consent is signed").wait_for()
    return Course.objects.get(patient__email="hana.ito@example.org")


def provider_runs_and_charts_the_session(desk, clinic, session_day) -> None:  # type: ignore[no-untyped-def]
    """Check in, start, complete; chart the session and sign the chart."""
    sign_in(desk, "ada.quill")
    desk.goto(f"/desk/locations/{clinic.location.slug}/day/?day={session_day.isoformat()}")
    desk.get_by_role("heading", name="Dr. Ada Quill").wait_for()
    check_accessibility(desk)
    screenshot(desk, "day-sheet-desk")
    desk.get_by_role("button", name="Check in: Hana Ito").click()
    desk.get_by_role("button", name="Start: Hana Ito").click()
    desk.get_by_role("button", name="Complete: Hana Ito").click()
    desk.get_by_role("link", name="Hana Ito").first.click()
    desk.get_by_label("Pen").select_option(index=1)
    desk.get_by_label("Cartridge lot").select_option(index=1)
    desk.get_by_label("Numbing product").fill("Lidocaine 4% cream")
    desk.get_by_label("Numbing minutes").fill("30")
    desk.get_by_label("Face: needle depth (mm)").fill("1.0")
    desk.get_by_label("Face: passes").fill("3")
    desk.get_by_label("Product applied 1").fill("Hyaluronic serum")
    desk.get_by_label("Sterile, made for use after needling").first.check()
    desk.get_by_role("button", name="Save the chart").click()
    desk.get_by_role("button", name="Sign and lock the chart").click()
    desk.get_by_text("Chart signed and locked.").wait_for()
    check_accessibility(desk)
    screenshot(desk, "visit-chart-desk")


def patient_reports_and_provider_handles_it(phone, desk, first) -> None:  # type: ignore[no-untyped-def]
    """Pus two days on: urgent, straight into the queue; the provider handles and scores."""
    phone.goto(f"/my/visits/{first.pk}/care/")
    check_accessibility(phone)
    phone.get_by_role("link", name="How is your skin? Tell us").click()
    phone.get_by_role("heading", name="How is your skin?").wait_for()
    phone.get_by_label("Pus, yellow crusts or oozing").select_option("moderate")
    phone.get_by_label("Redness", exact=True).select_option("mild")
    check_accessibility(phone)
    phone.get_by_role("button", name="Send and get advice").click()
    phone.get_by_role("heading", name="Contact your clinic now.").wait_for()
    check_accessibility(phone)
    screenshot(phone, "skin-advice-phone")
    assert SkinReport.objects.get().action == "urgent"

    desk.goto("/desk/skin-reports/")
    desk.get_by_role("link", name="Hana Ito").click()
    check_accessibility(desk)
    desk.get_by_label("What was done").fill("Called Hana; review booked tomorrow")
    desk.get_by_role("button", name="Mark handled").click()
    desk.get_by_text("Nothing waiting.").wait_for()

    desk.goto(f"/desk/visits/{first.pk}/")
    desk.get_by_label("Scale").select_option("gais")
    desk.get_by_label("Score").fill("3")
    desk.get_by_role("button", name="Record the score").click()
    desk.get_by_text("Score recorded.").wait_for()


def front_desk_moves_session_two(desk, course, zone) -> None:  # type: ignore[no-untyped-def]
    """Move session 2 after a preview; every session stays inside its window."""
    second = Appointment.objects.get(course_session__course=course, course_session__number=2)
    desk.goto(f"/desk/visits/{second.pk}/move/")
    options = desk.locator("#id_starts_at option")
    target = options.nth(options.count() - 1).get_attribute("value")
    desk.get_by_label("New time").select_option(target)
    desk.get_by_role("button", name="Show what changes").click()
    check_accessibility(desk)
    screenshot(desk, "move-preview-desk")
    desk.get_by_role("button", name="Confirm the move").click()
    desk.get_by_text("later sessions re-planned").wait_for()
    second.refresh_from_db()
    assert second.starts_at.isoformat() == target
    for visit in Appointment.objects.filter(course_session__course=course, status="booked"):
        window = visit.course_session
        assert window.earliest <= visit.starts_at.astimezone(zone).date() <= window.latest
