"""Each engine's ratio is to parsing its own input, as the page says."""

from __future__ import annotations

from microneedling.bench.report import rows
from microneedling.bench.runner import _engines


def test_each_engine_is_compared_with_parsing_its_own_input() -> None:
    suite = _engines(runs=1, size=5)
    triage = suite["triage"]
    assert triage["ratio_to_baseline_median"] == (
        triage["median_s"] / suite["baseline_parse_triage_reports"]["median_s"]
    )
    screen = suite["screen"]
    assert screen["ratio_to_baseline_median"] == (
        screen["median_s"] / suite["baseline_parse_intakes"]["median_s"]
    )
    # Planning takes plain values: parsing intakes is no baseline for it.
    assert suite["plan"]["ratio_to_baseline_median"] is None
    table = {r[2]: r[3] for r in rows({"suites": {"engines": suite}})}
    assert table["plan 5 items: median / p95"].endswith("(no baseline: its input is not parsed)")
    assert "parsing its input" in table["triage 5 items: median / p95"]


def test_the_engines_suite_notes_how_noisy_the_machine_was() -> None:
    # The page says every suite carries machine_reference in the JSON.
    reference = _engines(runs=1, size=2)["machine_reference"]
    assert reference["before"]["spread_max_over_min"] >= 1
    assert reference["after"]["runs"] == 9
