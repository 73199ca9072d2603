"""The statistics the benchmark pages print: percentiles by nearest rank, on every sample."""

from __future__ import annotations

import pytest

from microneedling.bench.load import Tally, _summary
from microneedling.bench.timing import summarise


@pytest.mark.parametrize(("count", "p95_rank"), [(5, 5), (20, 19), (40, 38), (100, 95), (101, 96)])
def test_p95_is_the_nearest_rank_sample(count: int, p95_rank: int) -> None:
    # Samples 1..count: the nearest-rank p95 is the ceil(0.95 * count)-th of them.
    assert summarise([float(n) for n in range(1, count + 1)])["p95_s"] == p95_rank


def test_load_percentiles_are_the_nearest_rank_samples() -> None:
    tally = Tally()
    for n in range(1, 101):  # 1 ms .. 100 ms
        tally.add(n / 1e3, "200")
    summary = _summary(tally, 1.0)
    # Of 100 samples, the 50th, 95th and 99th smallest: not the 51st, 96th and 100th.
    assert summary["p50_ms"] == pytest.approx(50.0)
    assert summary["p95_ms"] == pytest.approx(95.0)
    assert summary["p99_ms"] == pytest.approx(99.0)


def test_p50_of_ten_load_samples_is_the_fifth() -> None:
    tally = Tally()
    for n in range(1, 11):
        tally.add(n / 1e3, "200")
    assert _summary(tally, 1.0)["p50_ms"] == pytest.approx(5.0)


def test_answers_that_did_not_do_the_work_are_counted() -> None:
    tally = Tally()
    for status in ("201", "201", "202", "409", "302", "500", "error"):
        tally.add(0.01, status)
    summary = _summary(tally, 1.0, "book_course")
    assert summary["unsuccessful"] == 5
    assert summary["successes_per_second"] == 2


def test_the_thinned_latencies_keep_the_slowest() -> None:
    tally = Tally()
    for n in range(1, 10_001):  # 10,000 samples: thinned every 2nd, the last one odd
        tally.add(n / 1e6, "200")
    samples = _summary(tally, 1.0, "health")["samples_ms"]
    assert samples[0] == 0.001
    assert samples[-1] == 10.0
    assert len(samples) <= 5_002
