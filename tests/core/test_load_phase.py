"""A load phase's answers: each counts against its own endpoint, failures included."""

from __future__ import annotations

import socket
from collections import defaultdict
from datetime import date

from microneedling.bench.load import Tally, World, _book, _browse, _mixed, _phase


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
