"""Moving in from another system: CSV import of patients, providers and future visits, with a
dry run that names every bad cell, all-or-nothing apply, and a round trip through a FHIR
export of the demo clinic."""

from __future__ import annotations

import importlib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from microneedling.cli import main
from microneedling.demo_clinic import load_demo
from microneedling.directory.models import Location, Organization, Provider, ProviderSchedule
from microneedling.interop.export import EXPORTED, export_folder, export_run
from microneedling.interop.from_export import csv_from_export
from microneedling.interop.importer import ImportReport, clinic_import
from microneedling.interop.models import ExportJob
from microneedling.notifications.models import Message
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment, Course
from tests.web.conftest import next_weekday

EXAMPLES = Path(__file__).parents[2] / "docs" / "import-example"


@pytest.fixture
def mesquite(db: None) -> Organization:
    migration = importlib.import_module("microneedling.charting.migrations.0002_consent_text_v1")
    migration.add(django_apps, None)
    load_demo(today=timezone.localdate())
    return Organization.objects.get(slug="mesquite")


def _example(name: str) -> str:
    return (EXAMPLES / f"{name}.csv").read_text(encoding="utf-8")


MAPPING = "MN FACE=microneedling-face"


def _counts() -> tuple[int, int, int]:
    return Patient.objects.count(), Provider.objects.count(), Appointment.objects.count()


def test_the_documented_example_files_import(mesquite: Organization) -> None:
    before = _counts()
    files = {f"{n}_csv": _example(n) for n in ("patients", "providers", "appointments")}
    dry = clinic_import(
        organization=mesquite, service_map={"MN FACE": "microneedling-face"}, apply=False, **files
    )
    assert dry.problems == [] and not dry.applied
    assert (dry.patients, dry.providers, dry.appointments) == (2, 1, 2)
    assert _counts() == before  # a dry run writes nothing
    done = clinic_import(
        organization=mesquite, service_map={"MN FACE": "microneedling-face"}, apply=True, **files
    )
    assert done.applied
    assert _counts() == (before[0] + 2, before[1] + 1, before[2] + 2)
    ito = Provider.objects.get(display_name="Dr. Hana Ito")
    assert ProviderSchedule.objects.filter(provider=ito).count() == 5  # mon-wed + thu-fri
    visit = Appointment.objects.get(patient__email="rosa.delgado@example.org")
    assert visit.location.slug == "alamo-heights" and visit.provider == ito
    # Reminders follow; no "your visit is booked" for a visit the patient already had.
    assert Message.objects.filter(appointment=visit, kind="reminder").exists()
    assert not Message.objects.filter(appointment=visit, kind="visit_booked").exists()


def test_importing_the_same_files_again_adds_nothing_and_says_what_was_there(
    mesquite: Organization,
) -> None:
    files = {f"{n}_csv": _example(n) for n in ("patients", "providers", "appointments")}
    mapped = {"MN FACE": "microneedling-face"}
    assert clinic_import(organization=mesquite, service_map=mapped, apply=True, **files).applied
    after_first = _counts()
    hours = ProviderSchedule.objects.count()
    again = clinic_import(organization=mesquite, service_map=mapped, apply=True, **files)
    assert again.applied and again.problems == []
    assert (again.patients, again.providers, again.appointments) == (0, 0, 0)
    assert (again.matched, again.already_booked) == (3, 2)  # two patients, one provider
    assert _counts() == after_first and ProviderSchedule.objects.count() == hours
    assert Patient.objects.filter(email="rosa.delgado@example.org").count() == 1


def test_a_patient_already_here_is_matched_and_not_booked_twice_at_once(
    mesquite: Organization,
) -> None:
    visit = (
        Appointment.objects.filter(
            status="booked", starts_at__gt=timezone.now(), location__organization=mesquite
        )
        .exclude(location__slug="alamo-heights")
        .select_related("patient", "location")
        .order_by("starts_at")
        .first()
    )
    assert visit is not None
    person = visit.patient
    ito_hours = "mon-sun,06:00,22:00"
    local = visit.starts_at.astimezone(ZoneInfo("America/Chicago")).strftime("%Y-%m-%d %H:%M")
    before = _counts()
    report = clinic_import(
        organization=mesquite,
        patients_csv=(
            "external_id,first_name,last_name,email,birth_date\n"
            f"P-9,{person.first_name},{person.last_name},{person.email},{person.birth_date}\n"
        ),
        providers_csv=(
            "external_id,display_name,role,location,weekdays,starts,ends\n"
            f"DR-7,Dr. Hana Ito,physician,alamo-heights,{ito_hours}\n"
        ),
        appointments_csv=(
            "external_id,patient,provider,location,service,starts_at\n"
            f"A-1,P-9,DR-7,alamo-heights,microneedling-face,{local}\n"
        ),
        apply=True,
    )
    [problem] = report.problems
    assert (problem.file, problem.column) == ("appointments", "starts_at")
    assert "patient" in problem.problem
    assert _counts() == before


def test_a_visit_naming_a_provider_two_share_the_name_of_is_refused(
    mesquite: Organization,
) -> None:
    twin = Provider.objects.filter(organization=mesquite).first()
    assert twin is not None
    Provider.objects.create(organization=mesquite, display_name=twin.display_name, role=twin.role)
    before = _counts()
    day = next_weekday(timezone.localdate() + timedelta(days=60), 1).isoformat()
    report = clinic_import(
        organization=mesquite,
        patients_csv=_example("patients"),
        providers_csv=None,
        appointments_csv=(
            "external_id,patient,provider,location,service,starts_at\n"
            f"A-1,P-1001,{twin.display_name},alamo-heights,microneedling-face,{day} 10:00\n"
        ),
        apply=True,
    )
    [problem] = report.problems
    assert problem.column == "provider" and "matches 2 providers" in problem.problem
    assert _counts() == before


BAD_PATIENTS = """external_id,first_name,last_name,email,birth_date
P-1,Ana,Ruiz,not-an-email,1990-01-01
P-2,,Lopez,b@example.org,1990-01-01
P-3,Cy,Tan,c@example.org,2090-01-01
P-4,Di,Oh,d@example.org,01/02/1990
"""


def test_a_dry_run_names_every_bad_cell_and_nothing_is_written(mesquite: Organization) -> None:
    before = _counts()
    appointments = (
        "external_id,patient,provider,location,service,starts_at\n"
        "A-1,P-9,Nobody,nowhere,Laser,yesterday\n"
    )
    report = clinic_import(
        organization=mesquite,
        patients_csv=BAD_PATIENTS,
        providers_csv="external_id,display_name,role,location,weekdays,starts,ends\n"
        "D-1,Dr. X,wizard,alamo-heights,someday,9am,17:00\n",
        appointments_csv=appointments,
        apply=True,
    )
    assert not report.applied
    found = {(p.file, p.line, p.column) for p in report.problems}
    assert {
        ("patients", 2, "email"),
        ("patients", 3, "first_name"),
        ("patients", 4, "birth_date"),
        ("patients", 5, "birth_date"),
        ("providers", 2, "role"),
        ("providers", 2, "weekdays"),
        ("providers", 2, "starts"),
        ("appointments", 2, "patient"),
        ("appointments", 2, "provider"),
        ("appointments", 2, "location"),
        ("appointments", 2, "service"),
        ("appointments", 2, "starts_at"),
    } <= found
    assert _counts() == before


def _import_two_visits(
    mesquite: Organization, first: str, second: str, *, hours: tuple[str, str]
) -> ImportReport:
    """Import the example patients, Dr. Ito working ``hours`` every day at alamo-heights,
    and one visit with her for each of the first two patients, at ``first`` and ``second``."""
    appointments = (
        "external_id,patient,provider,location,service,starts_at\n"
        f"A-1,P-1001,DR-7,alamo-heights,microneedling-face,{first}\n"
        f"A-2,P-1002,DR-7,alamo-heights,microneedling-face,{second}\n"
    )
    providers = (
        "external_id,display_name,role,location,weekdays,starts,ends\n"
        f"DR-7,Dr. Hana Ito,physician,alamo-heights,mon-sun,{hours[0]},{hours[1]}\n"
    )
    return clinic_import(
        organization=mesquite,
        patients_csv=_example("patients"),
        providers_csv=providers,
        appointments_csv=appointments,
        apply=True,
    )


def test_a_double_booking_in_the_file_is_reported_and_nothing_is_written(
    mesquite: Organization,
) -> None:
    before = _counts()
    # A Tuesday about two months ahead: the clinic is shut on Sundays, and a visit on one
    # would be refused for its hours before the double booking was found.
    same_time = next_weekday(timezone.localdate() + timedelta(days=60), 1).isoformat()
    report = _import_two_visits(
        mesquite, f"{same_time} 10:00", f"{same_time} 10:00", hours=("08:00", "18:00")
    )
    [problem] = report.problems
    assert (problem.file, problem.line, problem.column) == ("appointments", 3, "starts_at")
    assert "provider" in problem.problem
    assert _counts() == before


def _next_clock_changes(zone: str) -> tuple[date, date]:
    """The next local days (after today) on which the zone's clocks go forward and back."""
    tz = ZoneInfo(zone)
    day = timezone.localdate()
    forward = back = None
    while forward is None or back is None:
        day += timedelta(days=1)
        noon = datetime.combine(day, time(12), tzinfo=tz).utcoffset()
        eve = datetime.combine(day - timedelta(days=1), time(12), tzinfo=tz).utcoffset()
        if noon is not None and eve is not None and noon > eve and forward is None:
            forward = day
        if noon is not None and eve is not None and noon < eve and back is None:
            back = day
    return forward, back


def test_a_visit_at_a_time_the_clocks_skip_or_repeat_is_refused_not_moved(
    mesquite: Organization,
) -> None:
    """Without an offset, 02:30 on the night the clocks go forward names no instant and
    01:30 on the night they go back names two: each is refused, naming the cell. They used
    to be read with the offset from before the change (02:30 as 03:30), and were refused,
    if at all, only for the location's hours, in words that gave no clue why."""
    before = _counts()
    forward, back = _next_clock_changes("America/Chicago")  # alamo-heights' zone
    report = _import_two_visits(
        mesquite, f"{forward} 02:30", f"{back} 01:30", hours=("00:00", "23:59")
    )
    found = {(p.line, p.column): p.problem for p in report.problems if p.file == "appointments"}
    assert set(found) == {(2, "starts_at"), (3, "starts_at")}
    assert "does not exist" in found[(2, "starts_at")]
    assert "happens twice" in found[(3, "starts_at")]
    assert not report.applied and _counts() == before


def test_the_command_exits_2_with_each_problem_on_stderr(
    mesquite: Organization, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "patients.csv"
    bad.write_text(BAD_PATIENTS, encoding="utf-8")
    code = main(["import", "--organization", "mesquite", "--patients", str(bad), "--dry-run"])
    assert code == 2
    err = capsys.readouterr().err
    assert "patients.csv line 2, email: is not an email address" in err
    assert "nothing was written" in err
    assert main(["import", "--patients", str(tmp_path / "missing.csv")]) == 2


def _schedule() -> set[tuple[str, str, str, str]]:
    now = timezone.now()
    return {
        (v.patient.email, v.provider.display_name, v.location.slug, v.starts_at.isoformat())
        for v in Appointment.objects.filter(status="booked", starts_at__gt=now).select_related(
            "patient", "provider", "location"
        )
    }


def test_a_fhir_export_of_the_demo_imports_back_with_the_same_schedule(
    mesquite: Organization,
) -> None:
    before = _schedule()
    assert len(before) > 50
    job = ExportJob.objects.create(types=list(EXPORTED), request_url="test")
    assert export_run(job.pk) == "done"
    slugs = {str(loc.pk): loc.slug for loc in Location.objects.all()}
    files = csv_from_export(export_folder(job), location_slugs=slugs, after=timezone.now())

    # An empty clinic: the directory stays (locations, rooms, pens, services); the people
    # and the diary go.
    Message.objects.all().delete()
    Appointment.objects.all().delete()
    Course.objects.all().delete()
    Patient.objects.all().delete()
    ProviderSchedule.objects.all().delete()
    Provider.objects.all().delete()
    assert _schedule() == set()

    report = clinic_import(
        organization=mesquite,
        patients_csv=files["patients"],
        providers_csv=files["providers"],
        appointments_csv=files["appointments"],
        apply=True,
    )
    assert report.problems == [], report.problems[:5]
    assert report.applied
    assert _schedule() == before


def test_a_patient_here_under_another_name_is_not_merged_with_the_row(
    mesquite: Organization,
) -> None:
    person = Patient.objects.filter(organization=mesquite).order_by("pk").first()
    assert person is not None
    before = _counts()
    report = clinic_import(
        organization=mesquite,
        patients_csv=(
            "external_id,first_name,last_name,email,birth_date\n"
            f"P-1,{person.first_name.upper()},{person.last_name},{person.email},"
            f"{person.birth_date}\n"
            f"P-2,Twin{person.first_name},{person.last_name},{person.email},{person.birth_date}\n"
        ),
        providers_csv=None,
        appointments_csv=None,
        apply=True,
    )
    # The first row only writes the name in capitals: the same person. The second is someone
    # else with the same email and birthday, and is named, not booked on the first's record.
    [problem] = report.problems
    assert (problem.file, problem.line, problem.column) == ("patients", 3, "first_name")
    assert "differs" in problem.problem
    assert not report.applied and _counts() == before


def test_one_provider_id_with_two_names_and_a_malformed_zip_code_are_refused(
    mesquite: Organization,
) -> None:
    before = _counts()
    report = clinic_import(
        organization=mesquite,
        patients_csv=(
            "external_id,first_name,last_name,email,birth_date,zip_code\n"
            "P-1,Ana,Ruiz,ana.ruiz@example.org,1990-04-02,78209-1234\n"
            "P-2,Ben,Ode,ben.ode@example.org,1988-01-12,7820\n"
        ),
        providers_csv=(
            "external_id,display_name,role,location,weekdays,starts,ends\n"
            "DR-1,Dr. Kim Lee,physician,alamo-heights,mon-wed,09:00,17:00\n"
            "DR-1,Dr. Kim Lee,physician,alamo-heights,thu-fri,10:00,16:00\n"
            "DR-1,Dr. Sam Park,physician,alamo-heights,sat,09:00,12:00\n"
        ),
        appointments_csv=None,
        apply=True,
    )
    # A ZIP+4 is a ZIP code, and a provider's second row of hours is that provider's; a
    # four-digit ZIP and a third row naming someone else under DR-1 are the file's mistakes.
    assert {(p.file, p.line, p.column) for p in report.problems} == {
        ("patients", 3, "zip_code"),
        ("providers", 4, "external_id"),
    }
    assert not report.applied and _counts() == before


def test_a_visit_at_a_location_closing_by_then_is_refused_under_the_location_column(
    mesquite: Organization,
) -> None:
    place = Location.objects.get(slug="alamo-heights")
    day = next_weekday(timezone.localdate() + timedelta(days=60), 1)
    Location.objects.filter(pk=place.pk).update(
        status=Location.Status.CLOSING, closes_on=day - timedelta(days=7)
    )
    report = clinic_import(
        organization=mesquite,
        patients_csv=_example("patients"),
        providers_csv=(
            "external_id,display_name,role,location,weekdays,starts,ends\n"
            "DR-7,Dr. Hana Ito,physician,alamo-heights,mon-sun,09:00,17:00\n"
        ),
        appointments_csv=(
            "external_id,patient,provider,location,service,starts_at\n"
            f"A-1,P-1001,DR-7,alamo-heights,microneedling-face,{day} 10:00\n"
        ),
        service_map={"MN FACE": "microneedling-face"},
        apply=True,
    )
    [problem] = report.problems
    assert (problem.file, problem.column) == ("appointments", "location")
    assert "closes on" in problem.problem


def test_a_problem_names_the_line_of_the_file_after_blank_lines_and_multi_line_cells(
    mesquite: Organization,
) -> None:
    # Spreadsheets leave blank lines, and quoted cells may run over several lines: the line
    # a problem names is still the one a person finds the row on in an editor.
    text = (
        "external_id,first_name,last_name,email,birth_date\n"  # line 1
        "P-1,Rosa,Delgado,rosa@example.org,1986-04-12\n"  # line 2
        "\n"  # line 3, blank
        'P-2,"Ana\nMaria",Lopez,ana@example.org,1990-01-01\n'  # lines 4 and 5
        "P-3,Marcus,Lee,not-an-email,1991-11-03\n"  # line 6
    )
    report = clinic_import(
        organization=mesquite,
        patients_csv=text,
        providers_csv=None,
        appointments_csv=None,
        apply=False,
    )
    assert [(p.line, p.column) for p in report.problems] == [(6, "email")]


def test_an_import_from_the_command_line_is_audited_with_who_ran_it(
    mesquite: Organization, tmp_path: Path
) -> None:
    import getpass  # noqa: PLC0415

    from microneedling.audit.models import AuditEvent  # noqa: PLC0415

    files = []
    for name in ("patients", "providers", "appointments"):
        (tmp_path / f"{name}.csv").write_text(_example(name), encoding="utf-8")
        files += [f"--{name}", str(tmp_path / f"{name}.csv")]
    code = main(["import", "--organization", "mesquite", *files, "--map-service", MAPPING])
    assert code == 0
    event = AuditEvent.objects.get(action="clinic_import")
    assert event.actor is None and event.object_id == str(mesquite.pk)
    assert event.details["patients"] == 2
    assert event.details["via"] == "command line"
    assert event.details["os_user"] == getpass.getuser()


def test_imported_hours_start_on_the_locations_own_day_not_the_servers(
    mesquite: Organization,
) -> None:
    import time_machine  # noqa: PLC0415

    # 21:00 on Sunday 7 March in San Antonio is already Monday 8 March in UTC.
    evening = datetime(2027, 3, 7, 21, tzinfo=ZoneInfo("America/Chicago"))
    assert evening.astimezone(ZoneInfo("UTC")).date() == date(2027, 3, 8)
    with time_machine.travel(evening, tick=False):
        done = clinic_import(
            organization=mesquite,
            patients_csv=None,
            providers_csv=_example("providers"),
            appointments_csv=None,
            apply=True,
        )
    assert done.applied, done.problems
    ito = Provider.objects.get(display_name="Dr. Hana Ito")
    starts = set(ProviderSchedule.objects.filter(provider=ito).values_list("valid_from", flat=True))
    assert starts == {date(2027, 3, 7)}


def test_treatments_agreed_in_the_old_system_keep_their_times_and_are_counted_for_review(
    mesquite: Organization,
) -> None:
    """Two face treatments a fortnight apart, agreed before the clinic moved in: the booking
    rules would refuse the second today, but the import keeps both (one refused row would
    stop the whole import) and counts them for a clinician to look at."""
    day = next_weekday(timezone.localdate() + timedelta(days=60), 1)
    report = clinic_import(
        organization=mesquite,
        patients_csv=_example("patients"),
        providers_csv=(
            "external_id,display_name,role,location,weekdays,starts,ends\n"
            "DR-7,Dr. Hana Ito,physician,alamo-heights,mon-sun,08:00,18:00\n"
        ),
        appointments_csv=(
            "external_id,patient,provider,location,service,starts_at\n"
            f"A-1,P-1001,DR-7,alamo-heights,microneedling-face,{day} 10:00\n"
            f"A-2,P-1001,DR-7,alamo-heights,microneedling-face,{day + timedelta(days=14)} 10:00\n"
        ),
        apply=True,
    )
    assert report.problems == []
    assert report.appointments == 2
    # The first was booked alone; the second comes 14 days after it.
    assert report.too_soon == 1
    assert report.as_dict()["too_soon"] == 1


def test_a_row_with_more_cells_than_the_header_is_refused_not_cut_short(
    mesquite: Organization,
) -> None:
    # An unquoted comma, or a column the header lacks: the cells past the header's last
    # column would be dropped without a word (here a visit the old system had cancelled).
    before = _counts()
    report = clinic_import(
        organization=mesquite,
        patients_csv=_example("patients"),
        providers_csv=_example("providers"),
        appointments_csv=(
            "external_id,patient,provider,location,service,starts_at\n"
            "A-55,P-1001,DR-7,alamo-heights,microneedling-face,2027-03-08T10:00:00-06:00\n"
            "A-56,P-1002,DR-7,medical-center,Microneedling: face,2027-03-11 14:30,cancelled\n"
            # A trailing comma (an empty cell past the end) is how spreadsheets save rows.
            "A-57,P-1001,DR-7,alamo-heights,microneedling-face,2027-03-09T10:00:00-06:00,\n"
        ),
        apply=True,
    )
    assert not report.applied
    assert [(p.file, p.line, p.column) for p in report.problems] == [("appointments", 3, "row")]
    assert "7 cells" in report.problems[0].problem
    assert _counts() == before
