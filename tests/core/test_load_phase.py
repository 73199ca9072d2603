"""A load phase's answers: each counts against its own endpoint, failures included."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from microneedling.bench.cpu import CpuMeter
from microneedling.bench.load import (
    Measurement,
    Tally,
    World,
    _book,
    _browse,
    _health,
    _mixed,
    _phase,
    _runs_note,
)


def _world() -> World:
    return World(
        location_ids=[1],
        location_slugs=["one"],
        service_id=1,
        patient_ids=[1, 2, 3],
        token="t",  # noqa: S106 (no server checks it)
        desk_cookie="sessionid=x",
        first_day=date(2027, 3, 8),
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
    assert set(tallies) <= {"availability_week", "book_course", "day_sheet", "health"}
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
