"""Repeat a measurement and summarise it robustly (median and p95, never one time)."""

from __future__ import annotations

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
    rank = max(0, min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1))
    return {
        "runs": len(ordered),
        "median_s": statistics.median(ordered),
        "p95_s": ordered[rank],
        "min_s": ordered[0],
        "max_s": ordered[-1],
        # Every sample, for the latency plots of docs/performance.md.
        "samples_s": ordered,
    }


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
