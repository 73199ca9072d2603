"""The patient's course pages: plan and book a whole course, move and cancel a session with a
preview first (Django's test client, both engines)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment, Course
from tests.web.conftest import NOW, TZ, Clinic, book_course, make_patient, make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


def signed_in(patient: Patient) -> Client:
    user = get_user_model().objects.create_user(
        username=patient.email, email=patient.email, password=None
    )
    patient.user = user
    patient.save(update_fields=["user"])
    client = Client()
    client.force_login(user)
    return client


def plan_data(clinic: Clinic, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "location": str(clinic.location.pk),
        "indications": ["acne_scars"],
        "areas": ["face"],
        "first_session": "2027-03-08",
        "time_of_day": "any",
    }
    return {**data, **changes}


def book(clinic: Clinic, client: Client) -> Course:
    response = client.post(reverse("portal:course_plan"), plan_data(clinic, action="book"))
    course = Course.objects.get()
    assert response["Location"] == reverse("portal:course", args=[course.pk])
    return course


def test_the_plan_previews_every_session_then_books_them_all(clinic: Clinic) -> None:
    client = signed_in(make_patient(clinic))
    preview = client.post(reverse("portal:course_plan"), plan_data(clinic, action="preview"))
    page = preview.content.decode()
    assert "Your course: 3 sessions" in page
    assert page.count("<strong>Session ") == 3
    assert not Course.objects.exists()  # a preview books nothing

    course = book(clinic, client)
    assert Appointment.objects.filter(course_session__course=course).count() == 3
    detail = client.get(reverse("portal:course", args=[course.pk])).content.decode()
    assert "Reschedule session 2" in detail and "Cancel session 3" in detail


def test_an_unscreened_patient_is_told_why_and_nothing_is_booked(clinic: Clinic) -> None:
    patient = Patient.objects.create(
        organization=clinic.org,
        first_name="Finn",
        last_name="Hale",
        email="finn@example.test",
        birth_date=date(1991, 1, 1),
    )
    client = signed_in(patient)
    response = client.post(reverse("portal:course_plan"), plan_data(clinic, action="book"))
    assert response.status_code == 200
    assert "has not been screened" in response.content.decode()
    assert not Course.objects.exists()


def test_a_course_before_the_day_the_answers_were_screened_for_is_refused(
    clinic: Clinic,
) -> None:
    # A peel on 27 February waits 30 days: eligible for the 5 April asked about, not for
    # 8 March, which the screening never looked at.
    patient = make_patient(
        clinic,
        screen_on=date(2027, 4, 5),
        procedures=[{"code": "chemical_peel", "date": "2027-02-27"}],
    )
    assert patient.screenings.get().verdict == "eligible"
    client = signed_in(patient)
    response = client.post(reverse("portal:course_plan"), plan_data(clinic, action="book"))
    assert response.status_code == 200
    assert "2027-04-05" in response.context["form"].errors["first_session"][0]
    assert not Course.objects.exists()
    # From the day asked about, the course is booked.
    book_from = plan_data(clinic, action="book", first_session="2027-04-05")
    assert client.post(reverse("portal:course_plan"), book_from).status_code == 302
    assert Course.objects.count() == 1


def test_bad_plan_input_is_named_beside_the_field(clinic: Clinic) -> None:
    client = signed_in(make_patient(clinic))
    response = client.post(
        reverse("portal:course_plan"), plan_data(clinic, first_session="2027-02-01", areas=[])
    )
    page = response.content.decode()
    assert 'id="id_first_session_error"' in page
    assert 'id="id_areas_error"' in page
    assert not Course.objects.exists()


@pytest.mark.parametrize("action", ["preview", "book"])
def test_an_area_the_concern_is_not_treated_on_is_named_beside_the_areas(
    clinic: Clinic, action: str
) -> None:
    client = signed_in(make_patient(clinic))
    response = client.post(
        reverse("portal:course_plan"),
        plan_data(clinic, indications=["stretch_marks"], areas=["face"], action=action),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "is not treated for Stretch marks" in errors["areas"][0]
    assert not Course.objects.exists()


def test_a_first_session_past_the_clinics_furthest_day_is_refused_beside_the_field(
    clinic: Clinic,
) -> None:
    client = signed_in(make_patient(clinic))
    for far in ("9999-12-20", "2300-01-01", "2029-03-08"):
        response = client.post(
            reverse("portal:course_plan"), plan_data(clinic, first_session=far, action="book")
        )
        assert response.status_code == 200
        assert "We book up to" in response.context["form"].errors["first_session"][0]
    assert not Course.objects.exists()


def test_pressing_book_twice_books_one_course(clinic: Clinic) -> None:
    client = signed_in(make_patient(clinic))
    page = client.get(reverse("portal:course_plan"))
    key = page.context["form"].initial["submission"]
    assert f'name="submission" value="{key}"' in page.content.decode()
    preview = client.post(
        reverse("portal:course_plan"), plan_data(clinic, action="preview", submission=key)
    )
    assert f'value="{key}"' in preview.content.decode()  # carried on to "Book all"
    booking = plan_data(clinic, action="book", submission=key)
    first = client.post(reverse("portal:course_plan"), booking)
    again = client.post(reverse("portal:course_plan"), booking)
    course = Course.objects.get()
    assert first["Location"] == again["Location"] == reverse("portal:course", args=[course.pk])
    assert Appointment.objects.filter(patient=course.patient).count() == course.sessions_total
    # The same form cannot book a different course.
    other = client.post(
        reverse("portal:course_plan"),
        plan_data(clinic, action="book", submission=key, first_session="2027-03-15"),
    )
    assert "This form already booked a course" in other.content.decode()
    assert Course.objects.count() == 1


def test_moving_a_session_shows_the_changes_before_saving_them(clinic: Clinic) -> None:
    client = signed_in(make_patient(clinic))
    course = book(clinic, client)
    second = Appointment.objects.get(course_session__course=course, course_session__number=2)
    url = reverse("portal:session_move", args=[second.pk])
    form = client.get(url)
    options = form.context["form"].fields["starts_at"].choices
    assert options, "the window has free times"
    new_start = options[-1][0]
    preview = client.post(url, {"starts_at": new_start, "action": "preview"})
    assert "Confirm the new times" in preview.content.decode()
    second.refresh_from_db()
    assert second.starts_at.isoformat() != new_start

    done = client.post(url, {"starts_at": new_start, "action": "apply"})
    assert done["Location"] == reverse("portal:course", args=[course.pk])
    second.refresh_from_db()
    assert second.starts_at.isoformat() == new_start
    window = second.course_session
    assert window.earliest <= second.starts_at.astimezone(TZ).date() <= window.latest


def test_the_times_to_move_to_read_in_the_patients_zone_like_the_rest_of_their_pages(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    patient.timezone = "America/New_York"  # an hour ahead of the clinic's Chicago
    patient.save(update_fields=["timezone"])
    client = signed_in(patient)
    course = book(clinic, client)
    second = Appointment.objects.get(course_session__course=course, course_session__number=2)
    home = ZoneInfo("America/New_York")
    shown = f"{second.starts_at.astimezone(home):%A %-d %B %Y, %H:%M}"
    assert shown in client.get(reverse("portal:course", args=[course.pk])).content.decode()
    url = reverse("portal:session_move", args=[second.pk])
    options = client.get(url).context["form"].fields["starts_at"].choices
    assert options
    for value, label in options:
        assert label == f"{datetime.fromisoformat(value).astimezone(home):%A %d %B, %H:%M}"
    preview = client.post(url, {"starts_at": options[0][0], "action": "preview"})
    new = f"{datetime.fromisoformat(options[0][0]).astimezone(home):%a %-d %b, %H:%M}"
    assert new in preview.content.decode()


def test_cancelling_a_session_previews_and_then_books_its_replacement(clinic: Clinic) -> None:
    client = signed_in(make_patient(clinic))
    course = book(clinic, client)
    second = Appointment.objects.get(course_session__course=course, course_session__number=2)
    url = reverse("portal:session_cancel", args=[second.pk])
    preview = client.post(url, {"action": "preview"})
    assert "Cancel and rebook" in preview.content.decode()
    second.refresh_from_db()
    assert second.status == "booked"

    client.post(url, {"action": "apply"})
    second.refresh_from_db()
    assert second.status == "cancelled"
    assert (
        Appointment.objects.filter(course_session=second.course_session, status="booked").count()
        == 1
    )


def test_another_patients_visit_cannot_be_moved(clinic: Clinic) -> None:
    owner = signed_in(make_patient(clinic))
    course = book(clinic, owner)
    visit = Appointment.objects.filter(course_session__course=course).first()
    assert visit is not None
    stranger = signed_in(make_patient(clinic, name="Gus Lund"))
    assert stranger.get(reverse("portal:session_move", args=[visit.pk])).status_code == 404
    assert (
        stranger.post(
            reverse("portal:session_cancel", args=[visit.pk]), {"action": "apply"}
        ).status_code
        == 404
    )


def test_the_course_page_query_count_does_not_grow_with_its_visits(
    clinic: Clinic, django_assert_max_num_queries
) -> None:
    client = signed_in(make_patient(clinic))
    course = book(clinic, client)
    url = reverse("portal:course", args=[course.pk])
    with django_assert_max_num_queries(20) as captured:
        client.get(url)
    baseline = len(captured.captured_queries)
    # Cancelling and rebooking two sessions adds visits to the page, not queries.
    for number in (2, 3):
        visit = Appointment.objects.get(
            course_session__course=course, course_session__number=number, status="booked"
        )
        client.post(reverse("portal:session_cancel", args=[visit.pk]), {"action": "apply"})
    assert Appointment.objects.filter(course_session__course=course).count() == 5
    with django_assert_max_num_queries(baseline):
        response = client.get(url)
    assert response.content.decode().count("Earlier: ") == 2


def test_the_course_page_charts_the_scores_over_the_sessions(clinic: Clinic) -> None:
    from microneedling.charting.services import score_record  # noqa: PLC0415

    client = signed_in(make_patient(clinic))
    course = book(clinic, client)
    provider = make_staff("ada.quill", "provider")
    for number, value in ((1, 3), (2, 2)):
        visit = Appointment.objects.get(
            course_session__course=course, course_session__number=number
        )
        score_record(
            appointment=visit, scale="goodman_baron_qualitative", value=value, actor=provider
        )
    response = client.get(reverse("portal:course", args=[course.pk]))
    scores = response.context["scores"]
    assert [(p["session"], p["value"]) for p in scores[0]["points"]] == [(1, 3), (2, 2)]
    assert "Your progress" in response.content.decode()


def test_a_patient_signs_only_the_consent_text_they_were_shown(clinic: Clinic) -> None:
    from microneedling.charting.models import Consent, ConsentText  # noqa: PLC0415
    from microneedling.charting.services import consent_current_text  # noqa: PLC0415

    patient = make_patient(clinic)
    client = signed_in(patient)
    url = reverse("portal:consent")
    before = consent_current_text()
    assert before is not None
    read = client.get(url).content.decode()
    assert "scarring is a new risk" not in read
    # While the patient reads, a new version comes into force.
    ConsentText.objects.create(
        version=f"{before.version}-new",
        title=before.title,
        body="Everything before, and scarring is a new risk to know about.",
        active_from=NOW.date(),
    )
    name = f"{patient.first_name} {patient.last_name}"
    shown = read.split('name="shown" value="')[1].split('"')[0]
    refused = client.post(url, {"agree": "on", "signature": name, "shown": shown}).content.decode()
    assert "changed while you read it" in refused and "scarring is a new risk" in refused
    assert not Consent.objects.filter(patient=patient).exists()
    # Having read the new one, they sign it.
    again = refused.split('name="shown" value="')[1].split('"')[0]
    client.post(url, {"agree": "on", "signature": name, "shown": again})
    assert Consent.objects.get(patient=patient).text.version == f"{before.version}-new"


def test_my_care_dates_the_medicine_pause_from_the_session_booked_not_the_day_asked_for(
    clinic: Clinic,
) -> None:
    # Asked for Monday 8 March; the course's first session is Wednesday 10 March. Ibuprofen
    # stops a week before and starts again three days after: 3 and 13 March, not 1 and 11.
    patient = make_patient(clinic, medications=[{"code": "ibuprofen"}])
    course = book_course(clinic, patient, first=date(2027, 3, 10))
    first = Appointment.objects.get(course_session__course=course, course_session__number=1)
    assert first.starts_at.astimezone(TZ).date() == date(2027, 3, 10)
    page = signed_in(patient).get(reverse("portal:home")).content.decode()
    assert "Pause these around your session on 10 March 2027" in page
    assert "<td>3 Mar 2027</td><td>13 Mar 2027</td>" in page
