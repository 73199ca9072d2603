"""Repeat a measurement and summarise it robustly (median and p95, never one time)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any


def measure(work: Callable[[], object], *, runs: int, warmup: int = 1) -> dict[str, Any]:
    """Time ``work`` ``runs`` times after ``warmup`` untimed calls; seconds per run."""
    for _ in range(warmup):
        work()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return summarise(samples)


def summarise(samples: list[float]) -> dict[str, Any]:
    """Median, p95, min and max of some samples in seconds (p95 by nearest rank)."""
    ordered = sorted(samples)
    return {
        "runs": len(ordered),
        "median_s": statistics.median(ordered),
        "p95_s": nearest_rank(ordered, 0.95),
        "min_s": ordered[0],
        "max_s": ordered[-1],
        # Every sample, for the latency plots of docs/performance.md.
        "samples_s": ordered,
    }


def nearest_rank(ordered: list[float], share: float) -> float:
    """The ``share`` percentile of sorted samples by nearest rank: the smallest sample with at
    least ``share`` of them at or below it (the ceil(share * n)-th, counted from 1)."""
    # Rounded first so that 0.95 * 100 (94.99999... or 95.00000...1 in binary) is 95.
    rank = math.ceil(round(share * len(ordered), 9))
    return ordered[max(0, min(len(ordered) - 1, rank - 1))]


def reference_workload() -> int:
    """A fixed pure-Python computation (no I/O, no allocation spikes) to time next to a
    suite: on a shared machine its spread shows how noisy the moment was."""
    return sum(i * i % 7 for i in range(300_000))


def machine_reference(runs: int = 9) -> dict[str, Any]:
    """Median and spread of :func:`reference_workload`: a spread well above 1 means other
    work on the machine slowed some runs, and the suite's p95 should be read with that."""
    summary = measure(reference_workload, runs=runs)
    summary["spread_max_over_min"] = summary["max_s"] / summary["min_s"]
    return summary
