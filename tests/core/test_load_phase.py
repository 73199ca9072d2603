"""A load phase's answers: each counts against its own endpoint, failures included."""

from __future__ import annotations

import multiprocessing
import os
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from microneedling.bench.cpu import CpuMeter
from microneedling.bench.load import (
    Measurement,
    Tally,
    World,
    _book,
    _browse,
    _connection,
    _health,
    _mixed,
    _override,
    _phase,
    _runs_note,
    _summaries,
)


def _world(patients: int = 8) -> World:
    return World(
        location_ids=[1],
        location_slugs=["one"],
        service_id=1,
        patient_ids=list(range(1, patients + 1)),
        token="t",  # noqa: S106 (no server checks it)
        desk_cookie="sessionid=x",
        first_day=date(2027, 3, 8),
        occupied=[{"location_id": 1, "provider_id": 1, "starts_at": "2027-03-08T10:00:00+00:00"}],
    )


def _closed_base() -> str:
    """A loopback address nothing listens on: every request is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_failed_booking_counts_against_the_booking_endpoint() -> None:
    tallies: dict[str, Tally] = defaultdict(Tally)
    _phase(_book, [_closed_base()], _world(), 0.3, tallies)
    assert set(tallies) == {"book_course"}
    assert set(tallies["book_course"].statuses) == {"error"}
    assert len(tallies["book_course"].latencies) == tallies["book_course"].statuses["error"]


def test_failures_of_the_mixed_hour_count_against_their_endpoints() -> None:
    tallies: dict[str, Tally] = defaultdict(Tally)
    _phase(_mixed, [_closed_base()], _world(), 0.5, tallies)
    assert set(tallies) <= {"availability_week", "book_course", "day_sheet", "health", "override"}
    assert "mixed" not in tallies


def test_a_failed_browse_is_not_filed_under_another_name() -> None:
    tallies: dict[str, Tally] = defaultdict(Tally)
    _phase(_browse, [_closed_base()], _world(), 0.3, tallies)
    assert set(tallies) == {"availability_week"}


class _Refusing(BaseHTTPRequestHandler):
    """Answers the trivial endpoint, refuses every booking (as a full diary would)."""

    booking_status = 409

    def do_GET(self) -> None:
        self._send(200, b'{"status": "ok"}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(self.booking_status, b'{"detail": "not booked"}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Deferring(_Refusing):
    """Leaves every booking for a clinician's review (202): nothing is booked."""

    booking_status = 202


class _Booking(_Refusing):
    """Books whatever is asked (201), an override as a course."""

    booking_status = 201


@pytest.fixture
def booking_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Booking)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_overrides_are_their_own_endpoint_and_their_201_is_done(booking_server: str) -> None:
    tallies: dict[str, Tally] = defaultdict(Tally)
    _phase(_override, [booking_server], _world(), 0.3, tallies, processes=2, threads=1)
    summary = _summaries(tallies, 0.3)
    assert set(summary) == {"override"}
    assert list(summary["override"]["statuses"]) == ["201"]
    assert summary["override"]["unsuccessful"] == 0
    assert summary["override"]["successes_per_second"] > 0


def test_the_mixed_hour_files_its_overrides_apart_from_its_bookings(booking_server: str) -> None:
    random.seed(7)  # the mix is drawn from the module's generator: the same draws each time
    http, world = _connection(booking_server), _world(patients=400)
    endpoints: dict[str, int] = defaultdict(int)
    try:
        for _ in range(400):
            name, status = _mixed(http, world)
            endpoints[name] += 1
            assert status != "error"
    finally:
        http.close()
    assert set(endpoints) == {"availability_week", "book_course", "day_sheet", "health", "override"}
    # A small share: most of what the desk books over is the odd one out, not the hour's work.
    assert endpoints["override"] < endpoints["book_course"] / 5


@pytest.fixture(params=[_Refusing, _Deferring], ids=["409", "202"])
def refusing_server(request: pytest.FixtureRequest) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_refused_bookings_are_not_throughput(refusing_server: str) -> None:
    measured = Measurement(
        bases=[refusing_server],
        world=_world(),
        meter=CpuMeter(server_groups=[], database_is_local=False),
        phases={
            "trivial_only": (_health, 0.3, "health"),
            "booking_only": (_book, 0.3, "book_course"),
        },
    )
    assert measured.phase("trivial_only") > 0
    # Every booking was answered, quickly, and none was made.
    assert measured.phase("booking_only") == 0
    summary = measured.summaries("booking_only")["book_course"]
    assert summary["requests"] > 0
    assert list(summary["statuses"]) in (["409"], ["202"])
    assert summary["successes_per_second"] == 0


def test_the_runs_note_gives_each_phase_its_own_length() -> None:
    phases = {
        "trivial_only": (_health, 15.0, "health"),
        "booking_only": (_book, 15.0, "book_course"),
        "busiest_hour_mixed": (_mixed, 30.0, "book_course"),
    }
    note = _runs_note(3, phases)
    assert "busiest hour mixed 30 s" in note and "trivial only 15 s" in note


# Actions of the tests' own, run in the client processes (so defined at module level, where a
# spawned process finds them). None sends a request: they say who ran them.


def _whoami(http: HTTPConnection, world: World) -> tuple[str, str]:
    time.sleep(0.01)
    return "who", str(os.getpid())


def _take_patient(http: HTTPConnection, world: World) -> tuple[str, str]:
    time.sleep(0.01)
    return "patient", str(world.patient())


def _explode(http: HTTPConnection, world: World) -> tuple[str, str]:
    raise RuntimeError("a client broke")


def _spin(http: HTTPConnection, world: World) -> tuple[str, str]:
    # The thread's own CPU: the process's would count the other client thread's too.
    ends = time.thread_time() + 0.02
    while time.thread_time() < ends:
        pass
    return "spin", "200"


def test_answers_of_every_client_process_are_merged_into_one_tally() -> None:
    tallies: dict[str, Tally] = defaultdict(Tally)
    _phase(_whoami, [_closed_base()], _world(), 0.3, tallies, processes=3, threads=2)
    who = tallies["who"]
    # Three processes answered, and every answer of each is in the one tally.
    assert len(who.statuses) == 3
    assert os.getpid() not in {int(pid) for pid in who.statuses}
    assert sum(who.statuses.values()) == len(who.latencies) > 3


def test_client_processes_hold_disjoint_shares_of_the_patients() -> None:
    world = _world(patients=10)
    shares = [set(world.share(n, 3).patient_ids) for n in range(3)]
    assert set.union(*shares) == set(world.patient_ids)
    assert sum(len(share) for share in shares) == len(world.patient_ids)


def test_share_refuses_fewer_patients_than_processes() -> None:
    with pytest.raises(ValueError, match="cannot be shared"):
        _world(patients=2).share(0, 3)


def test_no_patient_books_twice_across_processes_and_phases_of_a_run() -> None:
    world = _world(patients=100_000)
    tallies: dict[str, Tally] = defaultdict(Tally)
    for _ in range(2):  # the next phase of the run goes on where each share stopped
        _phase(_take_patient, [_closed_base()], world, 0.2, tallies, processes=2, threads=2)
    taken = tallies["patient"].statuses
    assert sum(taken.values()) > 6
    assert set(taken.values()) == {1}
    world.shares_taken.clear()  # a new run: the same patients again
    again: dict[str, Tally] = defaultdict(Tally)
    _phase(_take_patient, [_closed_base()], world, 0.2, again, processes=2, threads=2)
    assert set(again["patient"].statuses) & set(taken)


def test_no_client_process_is_left_after_a_phase() -> None:
    _phase(_health, [_closed_base()], _world(), 0.2, defaultdict(Tally), processes=2, threads=1)
    assert multiprocessing.active_children() == []


def test_a_failing_client_fails_the_phase_and_leaves_no_process() -> None:
    tallies: dict[str, Tally] = defaultdict(Tally)
    with pytest.raises(RuntimeError, match="a client broke"):
        _phase(_explode, [_closed_base()], _world(), 5.0, tallies, processes=2, threads=2)
    assert multiprocessing.active_children() == []
    assert not tallies


class _InterruptedMeter(CpuMeter):
    """Interrupted (^C) just as the clients are let go."""

    def start(self) -> dict[str, dict[int, float]]:
        raise KeyboardInterrupt


def test_an_interrupted_phase_leaves_no_client_process() -> None:
    meter = _InterruptedMeter(server_groups=[], database_is_local=False)
    with pytest.raises(KeyboardInterrupt):
        _phase(_health, [_closed_base()], _world(), 60.0, {}, meter=meter, processes=2)
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="/proc is Linux's")
def test_the_generator_cpu_covers_its_client_processes() -> None:
    tallies: dict[str, Tally] = defaultdict(Tally)
    meter = CpuMeter(server_groups=[], database_is_local=False)
    _, used = _phase(_spin, [_closed_base()], _world(), 0.5, tallies, meter=meter, processes=2)
    assert used is not None
    # Each call burnt 20 ms of its thread's CPU in a client process, none in this one.
    burnt = len(tallies["spin"].latencies) * 0.02
    assert burnt > 0
    assert (used["load_generator"] or 0) >= burnt * 0.9
    assert meter.generator_pids == []


def test_an_interrupt_while_starting_clients_leaves_no_client_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawned = multiprocessing.get_context("spawn").Process
    start = spawned.start
    calls = []

    def start_then_interrupt(process: multiprocessing.process.BaseProcess) -> None:
        calls.append(process)
        if len(calls) == 2:  # ^C between the first client's start and the second's
            raise KeyboardInterrupt
        start(process)

    monkeypatch.setattr(spawned, "start", start_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _phase(_health, [_closed_base()], _world(), 5.0, {}, processes=3, threads=1)
    assert multiprocessing.active_children() == []
