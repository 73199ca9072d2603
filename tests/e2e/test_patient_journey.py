"""A new patient in a real browser on a phone-sized screen: reads about the treatment, finds
a location, signs up, answers the questions and reads the verdict; every page passes axe."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from microneedling.notifications.models import ContactPreference
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling.models import Appointment, Course
from tests.e2e.conftest import (
    PASSWORD,
    answer_intake,
    check_accessibility,
    confirm_sign_up,
    fill_sign_up,
    screenshot,
)
from tests.web.conftest import build_clinic

pytestmark = pytest.mark.django_db(transaction=True)


def test_public_pages_work_on_a_phone_and_pass_axe(phone) -> None:  # type: ignore[no-untyped-def]
    clinic = build_clinic(name="Riverbend")
    phone.goto("/")
    assert phone.get_by_role("heading", level=1).inner_text().startswith("Microneedling")
    check_accessibility(phone)
    screenshot(phone, "home-phone")

    phone.get_by_role("link", name="The treatment", exact=True).click()
    phone.get_by_role("heading", name="Side effects").wait_for()
    check_accessibility(phone)
    screenshot(phone, "treatment-phone")
    # Nothing is wider than the phone: no sideways scrolling of the page itself.
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375

    phone.get_by_role("link", name="Find a location", exact=True).click()
    phone.get_by_label("ZIP code or city").fill("60601")
    phone.get_by_role("button", name="Search").click()
    phone.get_by_role("link", name="Riverbend").click()
    phone.get_by_role("heading", name="Opening hours").wait_for()
    assert "Dr. Ada Quill" in phone.content()
    check_accessibility(phone)
    screenshot(phone, "location-phone")
    assert clinic.location.slug in phone.url


def test_a_bad_search_is_explained_beside_the_field(phone) -> None:  # type: ignore[no-untyped-def]
    phone.goto("/locations/")
    phone.get_by_label("ZIP code or city").fill("00000")
    phone.get_by_role("button", name="Search").click()
    error = phone.locator("#id_q_error")
    assert "unknown ZIP code" in error.inner_text()
    check_accessibility(phone)


def test_a_new_patient_signs_up_answers_the_questions_and_can_book(phone) -> None:  # type: ignore[no-untyped-def]
    clinic = build_clinic(name="Riverbend")
    phone.goto("/my/sign-up/")
    check_accessibility(phone)
    fill_sign_up(
        phone,
        first="Dana",
        last="Reyes",
        email="not-an-address",
        born="1990-05-17",
        clinic=str(clinic.location),
    )
    phone.get_by_role("button", name="Create account").click()
    assert "valid email" in phone.locator("#id_email_error").inner_text()
    assert not Patient.objects.exists()  # nothing saved from the bad form

    phone.get_by_label("E-mail address").fill("dana.reyes@example.org")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Create account").click()
    check_accessibility(phone)
    confirm_sign_up(phone, "dana.reyes@example.org")
    phone.get_by_role("heading", name="About your skin and health").wait_for()
    check_accessibility(phone)

    planned = timezone.localdate() + timedelta(days=21)
    answer_intake(phone, planned=planned.isoformat(), skin="II: fair, usually burns, tans a little")
    screenshot(phone, "intake-phone")
    phone.get_by_role("button", name="See the result").click()
    phone.get_by_role("heading", name="Good news: you can book your course.").wait_for()
    check_accessibility(phone)
    screenshot(phone, "verdict-phone")
    patient = Patient.objects.get(email="dana.reyes@example.org")
    assert Screening.objects.get(patient=patient).verdict == "eligible"


def test_a_patient_books_a_whole_course_and_reschedules_a_session(phone) -> None:  # type: ignore[no-untyped-def]
    clinic = build_clinic(name="Riverbend")
    phone.goto("/my/sign-up/")
    fill_sign_up(
        phone,
        first="Cleo",
        last="Marsh",
        email="cleo.marsh@example.org",
        born="1988-02-11",
        clinic=str(clinic.location),
    )
    phone.get_by_role("button", name="Create account").click()
    confirm_sign_up(phone, "cleo.marsh@example.org")
    planned = timezone.localdate() + timedelta(days=14)
    answer_intake(
        phone, planned=planned.isoformat(), skin="III: medium, sometimes burns, tans evenly"
    )
    phone.get_by_role("button", name="See the result").click()

    phone.get_by_role("link", name="Plan and book your course").click()
    phone.get_by_role("heading", name="Plan your course").wait_for()
    phone.get_by_label("Acne scars").check()
    phone.get_by_role("button", name="Show my course").click()
    phone.get_by_role("heading", name="Your course: 3 sessions").wait_for()
    check_accessibility(phone)
    screenshot(phone, "course-proposal-phone")
    phone.get_by_role("button", name="Book all 3 sessions").click()
    phone.get_by_role("heading", name="My course at Riverbend").wait_for()
    check_accessibility(phone)
    screenshot(phone, "course-phone")
    course = Course.objects.get(patient__email="cleo.marsh@example.org")
    assert Appointment.objects.filter(course_session__course=course, status="booked").count() == 3

    phone.get_by_role("link", name="Reschedule session 2").click()
    phone.get_by_role("heading", name="Reschedule session 2").wait_for()
    choices = phone.locator("#id_starts_at option")
    last = choices.nth(choices.count() - 1).get_attribute("value")
    phone.get_by_label("New time").select_option(last)
    phone.get_by_role("button", name="Show what changes").click()
    phone.get_by_role("button", name="Confirm the new times").wait_for()
    check_accessibility(phone)
    screenshot(phone, "reschedule-preview-phone")
    phone.get_by_role("button", name="Confirm the new times").click()
    phone.get_by_role("heading", name="My course at Riverbend").wait_for()
    second = Appointment.objects.get(
        course_session__course=course, course_session__number=2, status="booked"
    )
    assert second.starts_at.isoformat() == last
    for visit in Appointment.objects.filter(course_session__course=course, status="booked"):
        session = visit.course_session
        day = visit.starts_at.astimezone(ZoneInfo(clinic.location.timezone)).date()
        assert session.earliest <= day <= session.latest


def test_a_patient_chooses_text_messages_and_subscribes_to_a_calendar(phone) -> None:  # type: ignore[no-untyped-def]
    clinic = build_clinic(name="Riverbend")
    phone.goto("/my/sign-up/")
    fill_sign_up(
        phone,
        first="Ines",
        last="Olsen",
        email="ines.olsen@example.org",
        born="1992-07-01",
        clinic=str(clinic.location),
    )
    phone.get_by_role("button", name="Create account").click()
    confirm_sign_up(phone, "ines.olsen@example.org")
    phone.get_by_role("heading", name="About your skin and health").wait_for()
    phone.goto("/my/messages/")
    phone.get_by_role("heading", name="Messages and calendar").wait_for()
    check_accessibility(phone)
    phone.get_by_label("By text message").check()
    phone.get_by_role("button", name="Save").click()
    assert "mobile number" in phone.locator("#id_phone_error").inner_text()
    check_accessibility(phone)
    phone.get_by_label("Mobile number").fill("+1 210 555 0199")
    phone.get_by_role("button", name="Save").click()
    phone.get_by_text("Saved: we will reach you the way you chose.").wait_for()
    phone.get_by_role("button", name="Make my calendar address").click()
    address = phone.locator("#feed-url").inner_text()
    assert "/calendar/" in address and address.endswith(".ics")
    check_accessibility(phone)
    screenshot(phone, "messages-and-calendar-phone")
    preference = ContactPreference.objects.get(patient__email="ines.olsen@example.org")
    assert preference.sms and preference.patient.phone == "+1 210 555 0199"
