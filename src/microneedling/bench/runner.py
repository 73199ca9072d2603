"""Run the benchmark suites and report medians, p95 and ratios to a baseline.

Engines suite: screening, course planning and triage of ``size`` generated inputs per run.
An engine's baseline is parsing its own inputs from JSON into their models (intakes for
screening, side-effect reports for triage), which every caller pays anyway: the ratio says how
much the engine adds on top of just reading its input, and stays meaningful on a noisy machine
where single times do not. Course planning takes plain values, with no model to parse: it has
no baseline and no ratio (a ratio to parsing some other engine's input would mean nothing).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

from microneedling.bench import generate
from microneedling.bench.timing import machine_reference, measure
from microneedling.core.courses import plan_course
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake, screen
from microneedling.core.triage import TriageReport, triage


def _engines(runs: int, size: int) -> dict[str, Any]:
    pack = load_pack()
    raw_intakes = json.dumps(generate.intakes(pack, size))
    intakes = [Intake.model_validate(item) for item in json.loads(raw_intakes)]
    requests = generate.course_requests(pack, size)
    raw_reports = json.dumps(generate.triage_reports(pack, size))
    reports = [TriageReport.model_validate(r) for r in json.loads(raw_reports)]

    def parse() -> None:
        for item in json.loads(raw_intakes):
            Intake.model_validate(item)

    def parse_reports() -> None:
        for item in json.loads(raw_reports):
            TriageReport.model_validate(item)

    def screen_all() -> None:
        for intake in intakes:
            screen(intake, pack)

    def plan_all() -> None:
        for request in requests:
            plan_course(pack=pack, **request)

    def triage_all() -> None:
        for report in reports:
            triage(report, pack)

    reference_before = machine_reference()
    results: dict[str, Any] = {
        "baseline_parse_intakes": measure(parse, runs=runs),
        "baseline_parse_triage_reports": measure(parse_reports, runs=runs),
    }
    engines = (
        ("screen", screen_all, "baseline_parse_intakes"),
        ("plan", plan_all, None),
        ("triage", triage_all, "baseline_parse_triage_reports"),
    )
    for name, work, baseline in engines:
        summary = measure(work, runs=runs)
        summary["per_item_median_us"] = summary["median_s"] / size * 1e6
        summary["baseline"] = baseline
        summary["ratio_to_baseline_median"] = (
            summary["median_s"] / results[baseline]["median_s"] if baseline else None
        )
        summary["under_one_second"] = summary["p95_s"] < 1.0
        results[name] = summary
    # As every suite: how noisy the machine was, timed before and after (see the page).
    reference = {"before": reference_before, "after": machine_reference()}
    return {"size": size, "machine_reference": reference, **results}


def _per_engine(suite: str, runs: int) -> dict[str, Any]:
    """One child process per database engine, each on a fresh database."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="microneedling-bench-") as scratch:
        for engine, env in _engine_environments(scratch).items():
            results[engine] = _child(suite, runs, env)
    return results


def _child(suite: str, runs: int, env: dict[str, str]) -> dict[str, Any]:
    """One suite in a child process on the database ``env`` names: its JSON or its error."""
    command = [sys.executable, "-m", "microneedling.bench.child", suite, str(runs)]
    # Our own interpreter and module with fixed arguments: nothing untrusted runs.
    done = subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, check=False, timeout=3600
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _postgres_environment() -> dict[str, str]:
    """PostgreSQL on BENCH_DATABASE_URL (or the local server), made afresh by the child."""
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/microneedling_bench"
    )
    return {**base, "DATABASE_URL": url, "BENCH_RESET_DATABASE": "1"}


def _engine_environments(scratch: str) -> dict[str, dict[str, str]]:
    """SQLite in the folder ``scratch`` (removed after the suite); PostgreSQL as above."""
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {
        "sqlite": {**base, "MICRONEEDLING_DATA_DIR": scratch},
        "postgresql": _postgres_environment(),
    }


def _scheduling(runs: int, size: int) -> dict[str, Any]:
    return _per_engine("scheduling", runs)


def _notifications(runs: int, size: int) -> dict[str, Any]:
    return _per_engine("notifications", runs)


def _rehoming(runs: int, size: int) -> dict[str, Any]:
    # Each preview plans and writes 10,000 moves; three runs give a median and a spread.
    return _per_engine("rehoming", min(runs, 3))


def _load(runs: int, size: int) -> dict[str, Any]:
    # Two app servers on PostgreSQL, as the scale-out setup runs (SQLite is one machine's).
    env = _postgres_environment()
    command = [sys.executable, "-m", "microneedling.bench.child", "load", str(runs)]
    done = subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    if done.returncode != 0:
        return {"postgresql": {"error": done.stderr.strip().splitlines()[-3:]}}
    return {"postgresql": json.loads(done.stdout)}


SUITES = {
    "engines": _engines,
    "scheduling": _scheduling,
    "notifications": _notifications,
    "rehoming": _rehoming,
    "load": _load,
}


def run_benchmarks(*, only: str | None, runs: int, size: int) -> dict[str, Any]:
    """Run one suite or all of them; returns the JSON-ready report."""
    chosen = [only] if only else list(SUITES)
    return {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "runs": runs,
        "suites": {name: SUITES[name](runs, size) for name in chosen},
    }
