"""Run the benchmark suites and report medians, p95 and ratios to a baseline.

Engines suite: screening, course planning and triage of ``size`` generated inputs per run.
The baseline is parsing the same inputs from JSON into the intake models, which every caller
pays anyway: the ratio says how much the engine adds on top of just reading its input, and
stays meaningful on a noisy machine where single times do not.
"""

from __future__ import annotations

import json
import platform
from typing import Any

from microneedling.bench import generate
from microneedling.bench.timing import measure
from microneedling.core.courses import plan_course
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake, screen
from microneedling.core.triage import TriageReport, triage


def _engines(runs: int, size: int) -> dict[str, Any]:
    pack = load_pack()
    raw_intakes = json.dumps(generate.intakes(pack, size))
    intakes = [Intake.model_validate(item) for item in json.loads(raw_intakes)]
    requests = generate.course_requests(pack, size)
    reports = [TriageReport.model_validate(r) for r in generate.triage_reports(pack, size)]

    def parse() -> None:
        for item in json.loads(raw_intakes):
            Intake.model_validate(item)

    def screen_all() -> None:
        for intake in intakes:
            screen(intake, pack)

    def plan_all() -> None:
        for request in requests:
            plan_course(pack=pack, **request)

    def triage_all() -> None:
        for report in reports:
            triage(report, pack)

    baseline = measure(parse, runs=runs)
    results: dict[str, Any] = {"baseline_parse_intakes": baseline}
    for name, work in (("screen", screen_all), ("plan", plan_all), ("triage", triage_all)):
        summary = measure(work, runs=runs)
        summary["per_item_median_us"] = summary["median_s"] / size * 1e6
        summary["ratio_to_baseline_median"] = summary["median_s"] / baseline["median_s"]
        summary["under_one_second"] = summary["p95_s"] < 1.0
        results[name] = summary
    return {"size": size, **results}


SUITES = {"engines": _engines}


def run_benchmarks(*, only: str | None, runs: int, size: int) -> dict[str, Any]:
    """Run one suite or all of them; returns the JSON-ready report."""
    chosen = [only] if only else list(SUITES)
    return {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.machine(),
        },
        "runs": runs,
        "suites": {name: SUITES[name](runs, size) for name in chosen},
    }
