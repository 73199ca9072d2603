"""The re-homing commands as a person runs them, in a real process against the test
database: bad input exits 2, and a process killed while applying leaves the old schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from microneedling.directory.models import Location
from microneedling.notifications.models import Message
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment
from tests.web.conftest import Clinic, build_clinic, local, make_patient, next_weekday
from tests.web.rehoming_checks import overlapping_reservations, sessions_outside_windows

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env["MICRONEEDLING_SQLITE_PATH"] = str(db["NAME"])
        env.pop("DATABASE_URL", None)
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "microneedling.cli", *args]


@pytest.fixture
def busy_riverbend() -> tuple[Clinic, list[int]]:
    """Riverbend with 120 visits over the coming weeks, and two receivers nearby."""
    riverbend = build_clinic()
    for name, latitude in (("Lakeside", 41.913), ("Northgate", 42.11)):
        other = build_clinic(name=name)
        Location.objects.filter(pk=other.location.pk).update(latitude=latitude)
    first = next_weekday(timezone.localdate() + timedelta(days=7), 0)
    starts = [(9, 0), (10, 30), (12, 0), (13, 30), (15, 0)]
    booked = []
    for n in range(120):
        index = n // 10  # ten visits a weekday
        day = first + timedelta(days=(index // 5) * 7 + index % 5)
        hour, minute = starts[n % 5]
        visit = services.appointment_book(
            patient=make_patient(riverbend, name=f"Pat Number{n}"),
            service=riverbend.treatment,
            location=riverbend.location,
            provider=riverbend.ada if n % 10 < 5 else riverbend.ben,
            starts_at=local(day, hour, minute),
        )
        booked.append(visit.pk)
    return riverbend, booked


def test_a_process_killed_while_applying_leaves_the_old_schedule(busy_riverbend) -> None:
    riverbend, booked = busy_riverbend
    before = dict(Appointment.objects.filter(pk__in=booked).values_list("pk", "starts_at"))
    from_date = (min(before.values()) - timedelta(days=1)).date().isoformat()
    process = subprocess.Popen(
        _command("close-location", riverbend.location.slug, "--from", from_date),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 180
    for line in process.stderr:
        if line.startswith("applying"):
            break  # it is writing the new schedule now, inside its transaction
        assert time.monotonic() < deadline, "never reached the apply step"
    else:
        pytest.fail(f"the command ended before applying (exit {process.wait()})")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    after = dict(Appointment.objects.filter(pk__in=booked).values_list("pk", "starts_at"))
    assert after == before
    assert set(Appointment.objects.filter(pk__in=booked).values_list("location_id", flat=True)) == {
        riverbend.location.pk
    }
    assert Location.objects.get(pk=riverbend.location.pk).status == "open"
    assert not Message.objects.filter(kind="location_change").exists()
    assert overlapping_reservations() == []

    # Run again to the end: everything moves, nothing breaks, every visit is counted.
    done = subprocess.run(
        _command("close-location", riverbend.location.slug, "--from", from_date, "--json"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json  # noqa: PLC0415

    report = json.loads(done.stdout)
    assert report["affected"] == len(booked) == report["rehomed"] + report["stuck"]
    assert report["reconciles"] and report["violations"] == []
    assert overlapping_reservations() == []
    assert sessions_outside_windows() == []


def test_the_commands_refuse_bad_input_with_exit_status_2(busy_riverbend) -> None:
    riverbend, _ = busy_riverbend
    slug, ada = riverbend.location.slug, riverbend.ada.pk
    cases = [
        (("close-location", "nowhere", "--from", "2027-03-08"), "LOCATION"),
        (("close-location", slug, "--from", "2027-02-30"), "--from"),
        (
            ("close-location", slug, "--from", "2027-03-08", "--until", "2027-03-01"),
            "until",
        ),
        (("move-provider", "Nobody Here", "--to", "lakeside", "--from", "2027-03-08"), "PROVIDER"),
        (("move-provider", str(ada), "--to", "nowhere", "--from", "2027-03-08"), "--to"),
    ]
    for args, field in cases:
        result = subprocess.run(
            _command(*args), env=_env(), capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2, (args, result.stderr)
        assert field in result.stderr and "Traceback" not in result.stderr
