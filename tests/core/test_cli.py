"""The ``microneedling`` command, run as a real process: JSON out, one-line errors, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

COMMAND = str(Path(sys.executable).with_name("microneedling"))
INTAKE: dict[str, Any] = {
    "planned_date": "2026-12-10",
    "birth_date": "1991-06-15",
    "fitzpatrick_type": 5,
    "treatment_areas": ["face"],
    "pregnant": False,
    "breastfeeding": False,
    "conditions": [{"code": "eczema", "area": "legs", "status": "active"}],
    "medications": [{"code": "ibuprofen", "last_dose": None}],
    "procedures": [{"code": "botox", "area": "face", "date": "2026-12-01"}],
    "allergies": [],
}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_screen_reads_a_file_and_prints_the_verdict(tmp_path: Path) -> None:
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(INTAKE))
    result = run("screen", str(path))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["verdict"] == "deferred"
    assert out["deferred_until"] == "2026-12-15"
    assert out["med_holds"][0] == {
        **out["med_holds"][0],
        "code": "ibuprofen",
        "stop_on": "2026-12-03",
        "resume_on": "2026-12-13",
    }
    assert {"rule", "outcome", "message", "sources"} <= set(out["reasons"][0])
    assert any(p["effect"] == "conservative_depth" for p in out["precautions"])


def test_screen_reads_standard_input() -> None:
    result = run("screen", "-", stdin=json.dumps({**INTAKE, "procedures": []}))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verdict"] == "eligible_with_precautions"


def test_screen_schema_is_a_json_schema_that_accepts_a_valid_intake() -> None:
    result = run("screen", "--schema")
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(INTAKE, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**INTAKE, "fitzpatrick_type": 9}, schema)


def test_plan_prints_sessions_with_windows_maintenance_and_depth() -> None:
    result = run(
        "plan",
        "--indication",
        "acne_scars",
        "--indication",
        "fine_lines",
        "--first-session",
        "2027-01-05",
        "--fitzpatrick",
        "2",
        "--today",
        "2027-01-01",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["indications"] == ["acne_scars", "fine_lines"]
    assert [s["number"] for s in out["sessions"]] == [1, 2, 3]
    assert set(out["sessions"][1]) == {"number", "earliest", "target", "latest"}
    assert set(out["maintenance"]) == {"first_due", "every_days_min", "every_days_max"}
    assert out["depth_mm"]["face"] == {"min": 0.5, "max": 1.5}
    assert out["timeline"] and out["sources"]


def test_plan_replans_from_done_sessions() -> None:
    result = run(
        "plan",
        "--indication",
        "acne_scars",
        "--first-session",
        "2027-01-05",
        "--done",
        "2027-01-05",
        "2027-02-10",
        "--today",
        "2027-02-11",
    )
    out = json.loads(result.stdout)
    assert out["status"] == "on_track"
    assert out["sessions"] == [
        {"number": 3, "earliest": "2027-03-10", "target": "2027-03-10", "latest": "2027-03-24"}
    ]


def test_triage_prints_the_action_and_reasons() -> None:
    report = {"symptoms": [{"code": "redness"}], "days_since_session": 8}
    result = run("triage", "-", stdin=json.dumps(report))
    out = json.loads(result.stdout)
    assert out["action"] == "contact_clinic"
    assert out["reasons"][0]["symptom"] == "redness"


def test_pack_check_and_codes() -> None:
    check = json.loads(run("pack", "check").stdout)
    assert check["valid"] is True
    codes = json.loads(run("pack", "codes").stdout)
    assert {
        "conditions",
        "medications",
        "procedures",
        "areas",
        "indications",
        "symptoms",
        "allergies",
    } <= set(codes)
    assert "isotretinoin" in codes["medications"]
    assert "redness" in codes["symptoms"]


# --- bad input: exit 2, one line naming the field ---
def test_unknown_code_exits_2_naming_the_field() -> None:
    bad = {**INTAKE, "conditions": [{"code": "werewolf_bite"}]}
    assert_one_line_error(
        run("screen", "-", stdin=json.dumps(bad)), "conditions.0.code", "werewolf_bite"
    )


def test_impossible_date_exits_2_naming_the_field() -> None:
    bad = {**INTAKE, "planned_date": "2026-02-30"}
    assert_one_line_error(run("screen", "-", stdin=json.dumps(bad)), "planned_date")


def test_missing_field_exits_2_naming_the_field() -> None:
    bad = {k: v for k, v in INTAKE.items() if k != "birth_date"}
    assert_one_line_error(run("screen", "-", stdin=json.dumps(bad)), "birth_date", "required")


def test_malformed_json_exits_2_with_its_position() -> None:
    assert_one_line_error(run("screen", "-", stdin='{"planned_date": '), "malformed JSON", "line 1")


def test_missing_file_exits_2() -> None:
    assert_one_line_error(run("screen", "/nonexistent/intake.json"), "cannot read")


def test_bad_plan_date_exits_2_naming_the_option() -> None:
    result = run("plan", "--indication", "acne_scars", "--first-session", "2027-13-01")
    assert_one_line_error(result, "--first-session", "2027-13-01")


def test_unknown_indication_exits_2() -> None:
    result = run(
        "plan", "--indication", "hiccups", "--first-session", "2027-01-05", "--today", "2027-01-01"
    )
    assert_one_line_error(result, "indication.0", "hiccups")


def test_plan_refuses_a_done_day_given_twice() -> None:
    days = ["2027-01-05"] * 8
    result = run(
        "plan", "--indication", "acne_scars", "--first-session", "2027-01-05", "--done", *days
    )
    assert_one_line_error(result, "done.1", "2027-01-05", "twice")


def test_missing_required_option_exits_2() -> None:
    assert_one_line_error(run("plan", "--indication", "acne_scars"), "--first-session")


def test_triage_with_unknown_symptom_exits_2() -> None:
    report = {"symptoms": [{"code": "sparkles"}], "days_since_session": 2}
    assert_one_line_error(run("triage", "-", stdin=json.dumps(report)), "symptoms.0.code")
