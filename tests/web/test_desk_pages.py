"""The staff's desk: day sheet, visit actions, consent gate, procedure chart and scores
(Django's test client, both engines)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from microneedling.audit.models import AuditEvent
from microneedling.charting.models import ProcedureChart
from microneedling.charting.services import consent_sign
from microneedling.core.errors import BookingRefused
from microneedling.directory.models import CartridgeLot
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, Course
from tests.web.access_world import PNG
from tests.web.conftest import (
    NOW,
    Clinic,
    build_clinic,
    local,
    make_patient,
    make_staff,
    make_superuser,
    procedure_start,
    screen_again,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]
MONDAY = date(2027, 3, 8)


@pytest.fixture
def desk() -> Client:
    user = make_staff("ada.quill", "provider")
    client = Client()
    client.force_login(user)
    return client


def visit(clinic: Clinic, hour: int = 10, name: str = "Cleo Marsh") -> Appointment:
    return services.appointment_book(
        patient=make_patient(clinic, name=name),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, hour),
    )


@contextmanager
def on_the_day(appointment: Appointment, client: Client) -> Iterator[None]:
    """The clock an hour before ``appointment`` (a visit is checked in on its day), with
    ``client`` signed in again then (a week on, its session has long been idle)."""
    import time_machine  # noqa: PLC0415

    user = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    with time_machine.travel(appointment.starts_at - timedelta(hours=1), tick=False):
        client.force_login(user)
        yield


def lot(clinic: Clinic, *, expires: date = date(2028, 1, 1)) -> CartridgeLot:
    return CartridgeLot.objects.create(
        location=clinic.location,
        device_model="SkinPen",
        lot_number=f"L{expires.year}",
        expires_on=expires,
        quantity=20,
    )


def chart_data(clinic: Clinic, cartridge: CartridgeLot, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "action": "chart",
        "device": clinic.devices[0].pk,
        "cartridge_lot": cartridge.pk,
        "numbing_product": "Lidocaine 4% cream",
        "numbing_minutes": 30,
        "endpoint": "pinpoint_bleeding",
        "depth_face": "1.0",
        "passes_face": 3,
        "product_0": "Hyaluronic serum",
        "product_0_sterile": "on",
        "product_1": "Vitamin C serum",
    }
    return {**data, **changes}


def chart_fields(clinic: Clinic, cartridge: CartridgeLot, depth: float = 1.0) -> dict[str, object]:
    """A chart as the charting service takes it (no form in between)."""
    return {
        "device": clinic.devices[0],
        "cartridge_lot": cartridge,
        "numbing_product": "Lidocaine 4% cream",
        "numbing_minutes": 30,
        "endpoint": "pinpoint_bleeding",
        "areas": [{"area": "face", "depth_mm": depth, "passes": 3}],
    }


def sign_as_shown(client: Client, url: str) -> str:
    """Open the visit page and press "Sign" on the draft it shows; the page after."""
    page = client.get(url).content.decode()
    found = re.search(r'name="version" value="([0-9a-f]+)"', page)
    assert found is not None, "the page offers no draft to sign"
    return client.post(url, {"action": "sign", "version": found[1]}, follow=True).content.decode()


def sign_regardless(client: Client, url: str, chart: ProcedureChart) -> str:
    """Send "Sign" for the draft as it stands, whether the page offers it or not (an old
    page left open, a script); the page after."""
    from microneedling.charting.selectors import chart_version  # noqa: PLC0415

    sent = {"action": "sign", "version": chart_version(chart)}
    return client.post(url, sent, follow=True).content.decode()


def test_the_day_sheet_shows_phases_and_its_queries_do_not_grow(
    clinic: Clinic, desk: Client, django_assert_max_num_queries
) -> None:
    visit(clinic, 9)
    url = reverse("desk:day_sheet", args=[clinic.location.slug]) + f"?day={MONDAY}"
    with django_assert_max_num_queries(30) as captured:
        first = desk.get(url)
    baseline = len(captured.captured_queries)
    text = first.content.decode()
    assert "Cleo Marsh" in text and "phase with-provider" in text
    for hour, name in ((11, "Dora Lane"), (13, "Eli Park"), (14, "Finn Hale")):
        visit(clinic, hour, name)
    with django_assert_max_num_queries(baseline):
        again = desk.get(url)
    assert again.content.decode().count('class="sheet-visit') == 4


def test_a_procedure_cannot_start_without_the_current_consent(clinic: Clinic, desk: Client) -> None:
    appointment = visit(clinic)
    status = reverse("desk:visit_status", args=[appointment.pk])
    with on_the_day(appointment, desk):
        desk.post(status, {"status": "checked_in"})
        desk.post(status, {"status": "in_progress"})
        appointment.refresh_from_db()
        assert appointment.status == "checked_in"
        patient = appointment.patient
        consent_sign(
            patient=patient, signature=f"{patient.first_name} {patient.last_name}", actor=None
        )
        desk.post(status, {"status": "in_progress"})
    appointment.refresh_from_db()
    assert appointment.status == "in_progress"


def test_a_treatment_cannot_start_once_newer_answers_rule_it_out(
    clinic: Clinic, desk: Client
) -> None:
    appointment = visit(clinic)
    patient = appointment.patient
    consent_sign(patient=patient, signature=f"{patient.first_name} {patient.last_name}", actor=None)
    # Booked while cleared; she answers the intake again before the visit: now pregnant.
    screen_again(patient, pregnant=True)
    status = reverse("desk:visit_status", args=[appointment.pk])
    with on_the_day(appointment, desk):
        desk.post(status, {"status": "checked_in"})  # she may still arrive and be seen
        page = desk.get(reverse("desk:visit", args=[appointment.pk])).content.decode()
        assert "The treatment cannot start: screening found the treatment unsuitable." in page
        refused = desk.post(status, {"status": "in_progress"}, HTTP_HX_REQUEST="true")
        assert "the treatment cannot start" in refused.content.decode()
        appointment.refresh_from_db()
        assert appointment.status == "checked_in"
        with pytest.raises(BookingRefused) as raised:
            services.appointment_set_status(
                appointment=appointment, status="in_progress", actor=None
            )
        assert (raised.value.code, raised.value.field) == ("not_eligible", "status")
        # The front desk is refused too, told only that a provider can see why.
        front = Client()
        front.force_login(make_staff("front.desk", "front_desk"))
        told = front.post(status, {"status": "in_progress"}, HTTP_HX_REQUEST="true")
        assert "a provider can see why" in told.content.decode()
        assert "unsuitable" not in told.content.decode()
        page = front.get(reverse("desk:visit", args=[appointment.pk])).content.decode()
        assert "a provider can see why" in page and "unsuitable" not in page
        appointment.refresh_from_db()
        assert appointment.status == "checked_in"
        # No longer pregnant when asked again: the treatment goes ahead.
        screen_again(patient)
        page = desk.get(reverse("desk:visit", args=[appointment.pk])).content.decode()
        assert "cannot start" not in page
        desk.post(status, {"status": "in_progress"})
    appointment.refresh_from_db()
    assert appointment.status == "in_progress"


def test_a_treatment_cannot_start_before_the_day_a_new_intake_defers_it_to(
    clinic: Clinic,
) -> None:
    appointment = visit(clinic)
    patient = appointment.patient
    consent_sign(patient=patient, signature=f"{patient.first_name} {patient.last_name}", actor=None)
    # A chemical peel four days before the visit: the wait after it runs past the visit.
    screen_again(
        patient,
        procedures=[
            {"code": "chemical_peel", "area": "face", "date": f"{MONDAY - timedelta(days=4)}"}
        ],
    )
    services.appointment_set_status(
        appointment=appointment, status="checked_in", actor=None, now=appointment.starts_at
    )
    with (
        time_machine.travel(appointment.starts_at, tick=False),
        pytest.raises(BookingRefused) as raised,
    ):
        services.appointment_set_status(appointment=appointment, status="in_progress", actor=None)
    assert (raised.value.code, raised.value.field) == ("deferred", "status")
    assert "treatment may start from" in raised.value.message


def test_a_visit_imported_for_a_patient_never_screened_here_starts_as_agreed(
    clinic: Clinic,
) -> None:
    from microneedling.patients.models import Patient  # noqa: PLC0415

    patient = Patient.objects.create(
        organization=clinic.org,
        first_name="Ivy",
        last_name="Moss",
        email="ivy@example.test",
        birth_date=date(1985, 6, 1),
    )
    # As the importer books it: agreed in the clinic's old system, screened there.
    imported = services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
        confirm=False,
    )
    assert procedure_start(imported).status == "in_progress"
    # Once the patient answers here, those answers count like anyone's.
    screen_again(patient, pregnant=True)
    later = services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY + timedelta(days=42), 10),
        confirm=False,
        check_spacing=False,
    )
    with pytest.raises(BookingRefused) as refused:
        procedure_start(later)
    assert refused.value.code == "not_eligible"


def test_a_consultation_starts_whatever_the_newest_answers_say(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    consultation = services.appointment_book(
        patient=patient,
        service=clinic.consultation,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
    )
    consent_sign(patient=patient, signature=f"{patient.first_name} {patient.last_name}", actor=None)
    screen_again(patient, pregnant=True)
    with time_machine.travel(consultation.starts_at, tick=False):
        services.appointment_set_status(appointment=consultation, status="checked_in", actor=None)
        services.appointment_set_status(appointment=consultation, status="in_progress", actor=None)
    consultation.refresh_from_db()
    assert consultation.status == "in_progress"


def test_a_chart_is_signed_then_locked_and_an_amendment_keeps_the_original(
    clinic: Clinic, desk: Client
) -> None:
    appointment = procedure_start(visit(clinic))
    url = reverse("desk:visit", args=[appointment.pk])
    desk.post(url, chart_data(clinic, lot(clinic)))
    chart = ProcedureChart.objects.get()
    assert chart.non_sterile_products == ["Vitamin C serum"]
    assert "not sterile" in desk.get(url).content.decode()
    sign_as_shown(desk, url)
    chart.refresh_from_db()
    assert chart.locked

    desk.post(url, chart_data(clinic, chart.cartridge_lot, action="amend", depth_face="0.8"))
    amendment = ProcedureChart.objects.get(amends=chart)
    chart.refresh_from_db()
    assert chart.areas[0]["depth_mm"] == 1.0  # the signed original is untouched
    assert amendment.areas[0]["depth_mm"] == 0.8 and not amendment.locked
    assert (
        AuditEvent.objects.filter(action__in=["chart_write", "chart_sign", "chart_amend"]).count()
        == 3
    )


def test_a_chart_is_signed_only_once_the_procedure_has_started(
    clinic: Clinic, desk: Client
) -> None:
    appointment = visit(clinic)
    url = reverse("desk:visit", args=[appointment.pk])
    desk.post(url, chart_data(clinic, lot(clinic)))  # a draft may be prepared ahead
    chart = ProcedureChart.objects.get()
    page = desk.get(url).content.decode()
    assert "signed once the procedure has started" in page and 'value="sign"' not in page
    # Sent all the same (an old page, a script): nothing is signed, and the page says why.
    after = sign_regardless(desk, url, chart)
    assert "start the procedure before signing its chart" in after
    chart.refresh_from_db()
    assert not chart.locked
    procedure_start(appointment)
    sign_as_shown(desk, url)
    chart.refresh_from_db()
    assert chart.locked


def test_an_amendment_keeps_the_pen_of_the_signed_chart_after_the_pen_is_retired(
    clinic: Clinic, desk: Client
) -> None:
    appointment = procedure_start(visit(clinic))
    url = reverse("desk:visit", args=[appointment.pk])
    cartridge = lot(clinic)
    desk.post(url, chart_data(clinic, cartridge))
    sign_as_shown(desk, url)
    pen = clinic.devices[0]
    pen.active = False  # retired after the session, as a pen that charts name is
    pen.save(update_fields=["active"])
    form = desk.get(url + "?amend=1").content.decode()
    assert f'<option value="{pen.pk}" selected>{pen}</option>' in form
    desk.post(url, chart_data(clinic, cartridge, action="amend", notes="Depth confirmed"))
    original = ProcedureChart.objects.get(amends__isnull=True)
    amendment = ProcedureChart.objects.get(amends=original)
    assert amendment.device == original.device == pen
    assert amendment.notes == "Depth confirmed"


def test_a_visit_not_checked_in_is_marked_a_no_show_only_from_its_start(
    clinic: Clinic, desk: Client
) -> None:
    appointment = visit(clinic)  # 10:00 in Chicago
    status = reverse("desk:visit_status", args=[appointment.pk])
    with on_the_day(appointment, desk):  # 09:00: the patient may still come
        refused = desk.post(status, {"status": "no_show"}, HTTP_HX_REQUEST="true")
        assert "can be marked a no-show from its start (10:00), not before" in (
            refused.content.decode()
        )
        appointment.refresh_from_db()
        assert appointment.status == "booked"
        assert appointment.reservations.filter(active=True).exists()  # the room is still held
    user = get_user_model().objects.get(pk=desk.session["_auth_user_id"])
    with time_machine.travel(appointment.starts_at + timedelta(minutes=20), tick=False):
        desk.force_login(user)
        desk.post(status, {"status": "no_show"})
    appointment.refresh_from_db()
    assert appointment.status == "no_show"


def test_a_draft_chart_cannot_be_signed_once_its_visit_is_marked_a_no_show(
    clinic: Clinic, desk: Client
) -> None:
    appointment = visit(clinic)
    url = reverse("desk:visit", args=[appointment.pk])
    status = reverse("desk:visit_status", args=[appointment.pk])
    with on_the_day(appointment, desk):
        desk.post(status, {"status": "checked_in"})
        desk.post(url, chart_data(clinic, lot(clinic)))  # the pen and lot, while numbing
        desk.post(status, {"status": "no_show"})  # the patient left before the procedure
        appointment.refresh_from_db()
        assert appointment.status == "no_show"
        shown = desk.get(url).content.decode()
        assert "did not take place" in shown and 'value="sign"' not in shown
        page = sign_regardless(desk, url, ProcedureChart.objects.get())
    assert not ProcedureChart.objects.get().locked
    assert "there is no chart to record for it" in page
    assert not AuditEvent.objects.filter(action="chart_sign").exists()


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"depth_face": "2.9"}, "depth_face", "less than or equal to 1.5"),
        ({"numbing_minutes": 200}, "numbing_minutes", "less than or equal to 90"),
        ({"expired": True}, "cartridge_lot", "expired on"),
    ],
)
def test_a_bad_chart_names_the_field_and_saves_nothing(
    clinic: Clinic, desk: Client, changes: dict[str, object], field: str, problem: str
) -> None:
    appointment = visit(clinic)
    expired = changes.pop("expired", False)
    cartridge = lot(clinic, expires=date(2027, 1, 1) if expired else date(2028, 1, 1))
    response = desk.post(
        reverse("desk:visit", args=[appointment.pk]), chart_data(clinic, cartridge, **changes)
    )
    text = response.content.decode()
    assert f'id="id_{field}_error"' in text
    assert problem in text
    assert not ProcedureChart.objects.exists()


def test_scores_use_the_pack_scales_and_refuse_values_off_the_scale(
    clinic: Clinic, desk: Client
) -> None:
    appointment = visit(clinic)
    url = reverse("desk:visit", args=[appointment.pk])
    bad = desk.post(url, {"action": "score", "scale": "gais", "value": 9})
    assert 'id="id_value_error"' in bad.content.decode()
    assert not appointment.scores.exists()
    desk.post(url, {"action": "score", "scale": "gais", "value": 2})
    assert appointment.scores.get().value == 2


def test_viewing_a_visit_is_audited(clinic: Clinic, desk: Client) -> None:
    appointment = visit(clinic)
    desk.get(reverse("desk:visit", args=[appointment.pk]))
    event = AuditEvent.objects.get(action="visit_view")
    assert event.object_id == str(appointment.patient_id)


def test_the_front_desk_moves_a_course_session_after_a_preview(
    clinic: Clinic, desk: Client
) -> None:
    course = services.course_book(
        patient=make_patient(clinic),
        location=clinic.location,
        service=clinic.treatment,
        indications=["acne_scars"],
        first_session=MONDAY,
        areas=["face"],
    )
    second = Appointment.objects.get(course_session__course=course, course_session__number=2)
    url = reverse("desk:visit_move", args=[second.pk])
    choices = desk.get(url).context["form"].fields["starts_at"].choices
    target = choices[0][0]
    preview = desk.post(url, {"starts_at": target, "action": "preview"})
    assert "Confirm the move" in preview.content.decode()
    desk.post(url, {"starts_at": target, "action": "apply"})
    second.refresh_from_db()
    assert second.starts_at.isoformat() == target


def test_a_provider_approves_a_screening_with_a_reason_and_the_patient_can_book(
    clinic: Clinic, desk: Client
) -> None:
    patient = make_patient(clinic, conditions=[{"code": "rosacea", "status": "active"}])
    screening = patient.screenings.get()
    assert screening.verdict == "clinician_review"
    assert patient.last_name in desk.get(reverse("desk:screenings")).content.decode()
    url = reverse("desk:screening", args=[screening.pk])
    missing = desk.post(url, {"decision": "approve", "reason": " "})
    assert 'id="id_reason_error"' in missing.content.decode()
    undecided = desk.post(url, {"reason": "Calm today"}).content.decode()
    assert 'id="id_decision_error"' in undecided and 'id="id_reason_error"' not in undecided
    screening.refresh_from_db()
    assert screening.review == "pending"
    desk.post(url, {"decision": "approve", "reason": "Calm today; treat outside the flare"})
    screening.refresh_from_db()
    assert screening.review == "approved"
    assert services.booking_gate(patient, MONDAY) == screening
    assert AuditEvent.objects.filter(action="screening_review").count() == 1


def test_open_appointment_requests_are_listed_for_the_desk(clinic: Clinic, desk: Client) -> None:
    patient = make_patient(clinic)
    services.appointment_request_create(
        patient=patient,
        location=clinic.location,
        service=clinic.treatment,
        reason="patient_request",
        payload={"note": "Mornings only"},
    )
    page = desk.get(reverse("desk:requests")).content.decode()
    assert f"{patient.first_name} {patient.last_name}" in page
    assert "patient_request" in page


def test_a_request_is_dated_by_its_locations_own_day(clinic: Clinic, desk: Client) -> None:
    import time_machine  # noqa: PLC0415

    # 20:00 in Chicago on 1 March is already 2 March in UTC.
    with time_machine.travel(local(NOW.date(), 20), tick=False):
        services.appointment_request_create(
            patient=make_patient(clinic),
            location=clinic.location,
            service=clinic.treatment,
            reason="patient_request",
            payload={},
        )
    row = desk.get(reverse("desk:requests")).content.decode().split("<tbody>")[1]
    assert f"<td>{NOW:%-d %b}</td>" in row and "2 Mar" not in row


def test_the_desk_closes_a_request_it_dealt_with_otherwise_saying_why(
    clinic: Clinic, desk: Client
) -> None:
    waiting = services.appointment_request_create(
        patient=make_patient(clinic),
        location=clinic.location,
        service=clinic.treatment,
        reason="patient_request",
        payload={},
    )
    url = reverse("desk:request_close", args=[waiting.pk])
    refused = desk.post(url, {"reason": "  "}, follow=True).content.decode()
    assert "Not closed: say why the request is closed." in refused
    waiting.refresh_from_db()
    assert waiting.status == "open"
    page = desk.post(url, {"reason": "Booked by phone"}, follow=True).content.decode()
    assert "Request closed." in page and "No requests to act on." in page
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decision_reason) == ("declined", "Booked by phone")
    assert waiting.decided_by_id == int(desk.session["_auth_user_id"])
    event = AuditEvent.objects.get(action="appointment_request_close")
    assert (event.reason, event.object_id) == ("Booked by phone", str(waiting.patient_id))
    again = desk.post(url, {"reason": "Twice"}, follow=True).content.decode()
    assert "this request was closed a moment ago" in again
    # Another organisation's desk gets no answer about it at all.
    other = build_clinic(name="Lakeside", group="Lakeside Group")
    elsewhere = Client()
    elsewhere.force_login(
        make_staff("other.desk", "front_desk", locations=[other.location], organization=other.org)
    )
    assert elsewhere.post(url, {"reason": "Not mine"}).status_code == 404


def test_a_signed_consent_version_cannot_be_edited_in_the_admin(clinic: Clinic) -> None:
    from microneedling.charting.models import ConsentText  # noqa: PLC0415

    admin = make_superuser("root.admin")
    client = Client()
    client.force_login(admin)
    text = ConsentText.objects.get(version="1")
    url = reverse("admin:charting_consenttext_change", args=[text.pk])
    assert (
        client.post(
            url, {"version": "1", "title": "Changed", "body": "x", "active_from": "2026-01-01"}
        ).status_code
        == 302
    )
    text.refresh_from_db()
    assert text.title == "Changed"  # nobody signed it yet
    patient = make_patient(clinic)
    consent_sign(patient=patient, signature=f"{patient.first_name} {patient.last_name}", actor=None)
    client.post(url, {"version": "1", "title": "Again", "body": "y", "active_from": "2026-01-01"})
    text.refresh_from_db()
    assert text.title == "Changed"


@pytest.fixture
def photo_course(clinic: Clinic, settings, tmp_path) -> Course:  # type: ignore[no-untyped-def]
    """A course of acne-scar sessions starting on MONDAY, its photos kept under tmp_path."""
    settings.MEDIA_ROOT = tmp_path
    return services.course_book(
        patient=make_patient(clinic),
        location=clinic.location,
        service=clinic.treatment,
        indications=["acne_scars"],
        first_session=MONDAY,
        areas=["face"],
    )


def session_visit(course: Course, number: int = 1) -> Appointment:
    """The visit of the course's session ``number``."""
    return Appointment.objects.get(course_session__course=course, course_session__number=number)


def post_photo(
    client: Client, appointment: Appointment, kind: str, name: str = "a.png", data: bytes = PNG
) -> HttpResponse:
    """Upload a photo of ``kind`` to the visit from its desk page, as staff do."""
    from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: PLC0415

    return client.post(
        reverse("desk:visit", args=[appointment.pk]),
        {"action": "photo", "kind": kind, "file": SimpleUploadedFile(name, data)},
    )


def test_before_and_after_photos_are_kept_privately_and_compared(
    photo_course: Course, desk: Client
) -> None:
    first = session_visit(photo_course)
    refused = post_photo(desk, first, "before", name="a.gif", data=b"GIF89a")
    assert 'id="id_file_error"' in refused.content.decode()
    assert not first.photos.exists()
    for kind in ("before", "after"):
        post_photo(desk, first, kind)
    assert first.photos.count() == 2
    page = desk.get(reverse("desk:course_compare", args=[photo_course.pk]))
    assert page.context["before"].kind == "before" and page.context["after"].kind == "after"
    photo = desk.get(reverse("desk:session_photo", args=[page.context["before"].pk]))
    assert b"".join(photo.streaming_content) == PNG
    assert AuditEvent.objects.filter(action="session_photo_view").count() == 1
    patient_client = Client()
    patient_client.force_login(get_user_model().objects.create_user(username="cleo.m"))
    compare = reverse("desk:course_compare", args=[photo_course.pk])
    assert patient_client.get(compare).status_code == 403


def test_the_before_and_after_page_dates_each_photo_by_the_location_s_own_day(
    photo_course: Course, desk: Client
) -> None:
    first = session_visit(photo_course)
    # 20:00 in Chicago is already the next day in UTC.
    with time_machine.travel(local(MONDAY, 20), tick=False):
        desk.force_login(get_user_model().objects.get(username="ada.quill"))
        post_photo(desk, first, "before")
        page = desk.get(reverse("desk:course_compare", args=[photo_course.pk])).content.decode()
    assert "Before, 8 Mar 2027" in page


def test_a_visit_entered_in_error_leaves_the_courses_photos_and_scores(
    photo_course: Course, desk: Client
) -> None:
    from microneedling.charting.services import score_record  # noqa: PLC0415

    first, second = session_visit(photo_course, 1), session_visit(photo_course, 2)
    ada = get_user_model().objects.get(username="ada.quill")
    post_photo(desk, first, "before")
    for visit_, value in ((first, 3), (second, 2)):
        score_record(appointment=visit_, scale="goodman_baron_qualitative", value=value, actor=ada)
    compare = reverse("desk:course_compare", args=[photo_course.pk])
    assert "No before photo yet." not in desk.get(compare).content.decode()
    # The first visit was the wrong patient's, say: it never was, and nor were its records.
    services.appointment_set_status(
        appointment=first, status="entered_in_error", actor=ada, reason="wrong patient"
    )
    page = desk.get(compare)
    assert "No before photo yet." in page.content.decode()
    [scale] = page.context["scores"]
    assert [(p["session"], p["value"]) for p in scale["points"]] == [(2, 2)]


def test_a_day_sheet_action_swaps_in_the_changed_row_in_local_time(
    clinic: Clinic, desk: Client
) -> None:
    appointment = visit(clinic, 10)
    url = reverse("desk:visit_status", args=[appointment.pk])
    with on_the_day(appointment, desk):
        row = desk.post(url, {"status": "checked_in"}, HTTP_HX_REQUEST="true")
    text = row.content.decode()
    assert text.lstrip().startswith(
        f'<li class="sheet-visit status-checked_in" id="visit-{appointment.pk}"'
    )
    assert "<strong>10:00–11:25</strong>" in text  # Chicago time, not UTC
    refused = desk.post(url, {"status": "in_progress"}, HTTP_HX_REQUEST="true")
    assert "consent" in refused.content.decode()  # the refusal shows in the row
    sheet = desk.get(reverse("desk:day_sheet", args=[clinic.location.slug]) + f"?day={MONDAY}")
    assert "<strong>10:00–11:25</strong>" in sheet.content.decode()


def test_a_lot_or_pen_that_charts_name_keeps_what_identifies_it(clinic: Clinic) -> None:
    from microneedling.charting.services import chart_sign, chart_write  # noqa: PLC0415

    appointment = procedure_start(visit(clinic))
    cartridge = lot(clinic)
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    data = chart_fields(clinic, cartridge)
    chart_sign(chart=chart_write(appointment=appointment, actor=ada, data=data), actor=ada)
    admin = Client()
    admin.force_login(make_staff("cleo.admin", "clinic_admin"))
    change = reverse("admin:directory_cartridgelot_change", args=[cartridge.pk])
    row = {
        "location": clinic.location.pk,
        "device_model": "SkinPen",
        "lot_number": cartridge.lot_number,
        "expires_on": cartridge.expires_on.isoformat(),
        "quantity": 5,
    }
    refused = admin.post(change, {**row, "lot_number": "L-REUSED", "expires_on": "2029-01-01"})
    assert refused.status_code == 200
    assert "add a new one instead" in refused.content.decode()
    cartridge.refresh_from_db()
    assert cartridge.lot_number != "L-REUSED" and cartridge.quantity == 20
    # The count in stock is not what a chart records: it still changes.
    assert admin.post(change, row).status_code == 302
    cartridge.refresh_from_db()
    assert cartridge.quantity == 5
    pen = clinic.devices[0]
    pen.serial_number = "SN-OTHER"
    with pytest.raises(ValidationError) as stopped:
        pen.full_clean()
    assert "serial_number" in stopped.value.message_dict
    unused = lot(clinic, expires=date(2029, 6, 1))
    unused.lot_number = "L-RENAMED"
    unused.full_clean()  # a lot no chart names may still be corrected
