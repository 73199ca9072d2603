"""Faults under load, with real app servers (`microneedling serve --workers 2`) and clients
booking courses over HTTP: the server killed with SIGKILL, the database restarted, SQLite
out of space. Afterwards every booking a client was told about exists whole, no course is
half-booked, no two reservations of a resource overlap, the file is not corrupt, and clients
were told of errors, never given a wrong answer."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from django.db import connection

from microneedling.accounts.services import api_token_issue
from microneedling.scheduling.models import Appointment, Course, Reservation
from tests.web.conftest import Clinic, build_clinic, make_patient, make_staff
from tests.web.processes import answers, database_env, free_port, wait_for
from tests.web.rehoming_checks import overlapping_reservations

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def _first_monday() -> date:
    # The servers run on the real clock: book from two weeks ahead.
    day = date.today() + timedelta(days=14)  # noqa: DTZ011 (the servers' own clock)
    return day + timedelta(days=(7 - day.weekday()) % 7)


class Server:
    """`microneedling serve --workers 2` in its own process group."""

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "microneedling.cli", "serve", "--port", str(self.port)),
                *("--workers", "2", "--task-workers", "0"),
            ],
            env=database_env(MICRONEEDLING_RATE_BOOKING="100000", **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: answers(f"{self.base}/api/v1/locations"), 60, "the server to answer")

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once: no goodbye, no cleanup."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, as an operator would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


def _patients(clinic: Clinic, count: int) -> list[int]:
    return [
        make_patient(clinic, name=f"Pat Number{n}", screen_on=_first_monday()).pk
        for n in range(count)
    ]


def _booker(base: str, token: str, clinic: Clinic, outcomes: list[tuple[str, Any]]):  # type: ignore[no-untyped-def]
    def book(index_and_patient: tuple[int, int]) -> None:
        index, patient_id = index_and_patient
        body = {
            "patient_id": patient_id,
            "location_id": clinic.location.pk,
            "service_id": clinic.treatment.pk,
            "indications": ["acne_scars"],
            "first_session": (_first_monday() + timedelta(days=index % 5)).isoformat(),
            "areas": ["face"],
        }
        try:
            answer = requests.post(
                f"{base}/api/v1/courses",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        except requests.RequestException:
            outcomes.append(("connection error", None))
            return
        if answer.status_code == 201:
            outcomes.append(("booked", answer.json()))
        else:
            kind = answer.headers.get("Content-Type", "")
            assert kind.startswith("application/problem+json"), (answer.status_code, kind)
            outcomes.append((f"http {answer.status_code}", answer.json()))

    return book


def _check_the_books(outcomes: list[tuple[str, Any]]) -> Counter[str]:
    connection.close()  # the server may have restarted under this connection
    for kind, body in outcomes:
        assert kind in {"booked", "connection error", "http 409", "http 503", "http 502"}, kind
        if kind == "booked":
            # What the client was told is exactly what is stored.
            course = Course.objects.get(pk=body["id"])
            stored = {
                a.pk: a.starts_at.isoformat()
                for a in Appointment.objects.filter(course_session__course=course)
            }
            told = {s["appointment"]["id"]: s["appointment"]["starts_at"] for s in body["sessions"]}
            assert {k: v[:19] for k, v in stored.items()} == {k: v[:19] for k, v in told.items()}
    for course in Course.objects.all():
        visits = Appointment.objects.filter(course_session__course=course).count()
        assert visits == course.sessions_total, f"course {course.pk} is half-booked"
        assert not Appointment.objects.filter(
            course_session__course=course, reservations__isnull=True
        ).exists()
    assert Reservation.objects.filter(active=True).exists()
    assert overlapping_reservations() == []
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")
            assert cursor.fetchone()[0] == "ok"
    return Counter(kind for kind, _ in outcomes)


def _clinic_and_token() -> tuple[Clinic, str]:
    clinic = build_clinic(rooms=3, devices=3)
    return clinic, api_token_issue(user=make_staff("otto.ops", "chain_operator"))


def test_killing_the_app_server_mid_booking_loses_no_confirmed_course() -> None:
    clinic, token = _clinic_and_token()
    patients = _patients(clinic, 40)
    server = Server()
    outcomes: list[tuple[str, Any]] = []
    book = _booker(server.base, token, clinic, outcomes)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(book, item) for item in enumerate(patients)]
        wait_for(lambda: sum(k == "booked" for k, _ in outcomes) >= 8, 120, "some bookings first")
        server.kill()
        for future in futures:
            future.result()
    counts = _check_the_books(outcomes)
    assert counts["booked"] >= 8 and counts["connection error"] >= 1, counts
    # It starts again on the same data and serves.
    again = Server()
    try:
        assert requests.get(f"{again.base}/api/v1/locations", timeout=10).status_code == 200
    finally:
        again.stop()


def test_the_database_failing_mid_booking_gives_errors_never_wrong_answers() -> None:
    """PostgreSQL: the server restarts under load. SQLite (no server to restart): the file
    reaches its size limit, as on a full disk."""
    if connection.vendor == "sqlite":
        _sqlite_runs_out_of_space()
    else:
        _postgresql_restarts()


def _postgresql_restarts() -> None:
    cluster = shutil.which("pg_ctlcluster")
    assert cluster is not None, "pg_ctlcluster is needed to restart the database"
    clinic, token = _clinic_and_token()
    patients = _patients(clinic, 60)
    server = Server()
    outcomes: list[tuple[str, Any]] = []
    book = _booker(server.base, token, clinic, outcomes)
    version = os.listdir("/etc/postgresql")[0]
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [pool.submit(book, item) for item in enumerate(patients)]
            wait_for(lambda: len(outcomes) >= 10, 120, "bookings before the restart")
            restarted = subprocess.run(
                [cluster, "--skip-systemctl-redirect", version, "main", "restart"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert restarted.returncode == 0, restarted.stderr
            for future in futures:
                future.result()
        connection.close()  # this process's own connection died with the restart too
        wait_for(lambda: answers(f"{server.base}/api/v1/locations"), 60, "service again")
        after: list[tuple[str, Any]] = []
        late = make_patient(clinic, name="Late Comer", screen_on=_first_monday())
        _booker(server.base, token, clinic, after)((99, late.pk))
        assert after[0][0] in {"booked", "http 409"}, after
    finally:
        server.stop()
    counts = _check_the_books(outcomes + after)
    assert counts["booked"] >= 1, counts


def _sqlite_runs_out_of_space() -> None:
    clinic, token = _clinic_and_token()
    patients = _patients(clinic, 60)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
    connection.close()
    # Room for a handful of courses, then the "disk" is full.
    server = Server(MICRONEEDLING_SQLITE_MAX_PAGES=str(pages + 12))
    outcomes: list[tuple[str, Any]] = []
    book = _booker(server.base, token, clinic, outcomes)
    try:
        for item in enumerate(patients):
            book(item)
            if sum(k == "http 503" for k, _ in outcomes) >= 3:
                break
    finally:
        server.stop()
    counts = _check_the_books(outcomes)
    assert counts["http 503"] >= 3 and counts["booked"] >= 1, counts
    for kind, body in outcomes:
        if kind == "http 503":
            assert "nothing was saved" in body["detail"]
