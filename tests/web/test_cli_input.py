"""Bad input to the ``microneedling`` command: exit status 2 and one line on stderr naming the
field and the problem, never a traceback, and nothing written.

Most cases run the command in this process (``main(argv)``) because they are refused before
any work starts; a few run as real processes to show that no traceback escapes either way.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from microneedling.cli import main
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment
from tests.web.conftest import build_clinic
from tests.web.processes import database_env

INTAKE: dict[str, Any] = {
    "planned_date": "2026-12-10",
    "birth_date": "1991-06-15",
    "fitzpatrick_type": 2,
    "treatment_areas": ["face"],
    "pregnant": False,
    "breastfeeding": False,
}
PATIENTS_HEADER = "external_id,first_name,last_name,email,birth_date\n"
APPOINTMENTS_HEADER = "external_id,patient,provider,location,service,starts_at\n"
PLAN = ["plan", "--indication", "acne_scars"]


def _write_json(path: Path, data: dict[str, Any]) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def _files(folder: Path) -> dict[str, str]:
    """The bad input files the cases below name by key."""
    latin = folder / "latin1.json"
    latin.write_bytes('{"note": "Jos\u00e9"}'.encode("latin-1"))
    deep = folder / "deep.json"
    deep.write_text("[" * 100_000, encoding="utf-8")
    huge_number = folder / "huge-number.json"
    huge_number.write_text('{"fitzpatrick_type": ' + "9" * 5000 + "}", encoding="utf-8")
    late = {
        **INTAKE,
        "planned_date": "9999-12-31",
        "medications": [{"code": "isotretinoin", "last_dose": "9999-12-30"}],
    }
    early = {
        **INTAKE,
        "birth_date": "0001-01-01",
        "planned_date": "0001-01-02",
        "medications": [{"code": "aspirin", "last_dose": None}],
    }
    empty = folder / "empty.csv"
    empty.write_text("  \n", encoding="utf-8")
    return {
        "empty": str(empty),
        "iso": _write_json(folder / "iso.json", late),
        "early": _write_json(folder / "early.json", early),
        "latin1": str(latin),
        "deep": str(deep),
        "huge_number": str(huge_number),
    }


# (arguments with {file} keys, words the one line must hold, also run as a real process)
REFUSED: list[tuple[list[str], tuple[str, ...], bool]] = [
    (["screen", "{iso}"], ("planned_date", "2199-12-31"), True),
    (["screen", "{early}"], ("planned_date", "1900-01-01"), True),
    (["screen", "{latin1}"], ("latin1.json", "UTF-8"), True),
    (["screen", "{deep}"], ("input", "nested too deeply"), True),
    (["screen", "{huge_number}"], ("input", "JSON"), False),
    (
        [*PLAN, "--first-session", "9999-12-31", "--today", "9999-12-01"],
        ("--first-session", "2199-12-31"),
        True,
    ),
    (
        [*PLAN, "--first-session", "2027-01-05", "--done", "9999-12-31", "--today", "9999-12-31"],
        ("--done", "2199-12-31"),
        False,
    ),
    (
        ["close-location", "riverbend", "--from", "9999-12-30", "--until", "9999-12-31"],
        ("--from", "2199-12-31"),
        True,
    ),
    (["worker", "--interval", "nan"], ("--interval",), True),
    (["worker", "--interval", "1e308"], ("--interval",), False),
    (["worker", "--interval", "inf"], ("--interval",), False),
    (["worker", "--max-tasks", "-1"], ("--max-tasks", "at least 1"), False),
    (["serve", "--host", "bad host"], ("--host", "bad host"), True),
    (["serve", "--port", "99999"], ("--port", "65535"), True),
    (["serve", "--workers", "1", "--timeout", "-5"], ("--timeout",), True),
    (["serve", "--workers", "1", "--task-workers", "-1"], ("--task-workers",), False),
    (["bench", "--runs", "0", "--only", "engines"], ("--runs", "at least 1"), True),
    (["bench", "--size", "-5"], ("--size", "at least 1"), False),
    (["bench", "--write-docs", "{empty}"], ("--write-docs", "is not a folder"), False),
    (["import"], ("import", "at least one of --patients"), False),
    (["import", "--patients", "{empty}"], ("--patients", "is empty"), True),
]


def _assert_refused(code: int, out: str, err: str, needles: tuple[str, ...]) -> None:
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _name(args: list[str]) -> str:
    return " ".join(args)[:60]


@pytest.mark.parametrize(
    ("args", "needles"), [case[:2] for case in REFUSED], ids=[_name(c[0]) for c in REFUSED]
)
def test_bad_arguments_and_files_exit_2_naming_the_field(
    args: list[str],
    needles: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = _files(tmp_path)
    code = main([arg.format(**files) for arg in args])
    captured = capsys.readouterr()
    _assert_refused(code, captured.out, captured.err, needles)


def test_screening_standard_input_that_is_not_utf8_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io  # noqa: PLC0415

    raw = io.TextIOWrapper(io.BytesIO(b'{"planned_date": "caf\xe9"}'), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", raw)
    code = main(["screen", "-"])
    captured = capsys.readouterr()
    _assert_refused(code, captured.out, captured.err, ("input", "UTF-8"))


# --- as real processes: no traceback escapes ---
IN_PROCESSES = [case[:2] for case in REFUSED if case[2]]


@pytest.mark.parametrize(("args", "needles"), IN_PROCESSES, ids=[_name(c[0]) for c in IN_PROCESSES])
def test_bad_input_exits_2_without_a_traceback_in_a_real_process(
    args: list[str], needles: tuple[str, ...], tmp_path: Path
) -> None:
    files = _files(tmp_path)
    env = {**os.environ, "MICRONEEDLING_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "microneedling.cli", *(arg.format(**files) for arg in args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_refused(result.returncode, result.stdout, result.stderr, needles)


# --- commands that reach the database ---
def _counts() -> tuple[int, int]:
    return Patient.objects.count(), Appointment.objects.count()


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
@pytest.mark.parametrize("provider", ["\u00b2", "99999999999999999999999"])
def test_moving_a_provider_named_by_an_odd_number_exits_2(
    provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    build_clinic()
    code = main(["move-provider", provider, "--to", "riverbend", "--from", "2027-04-01"])
    captured = capsys.readouterr()
    _assert_refused(code, captured.out, captured.err, ("PROVIDER", provider))


def _import_cases(folder: Path) -> list[tuple[list[str], tuple[str, ...]]]:
    latin = folder / "latin1.csv"
    latin.write_bytes(
        (PATIENTS_HEADER + "P-1,Jos\u00e9,Ruiz,jose@example.org,1990-01-01\n").encode("latin-1")
    )
    wide = folder / "wide.csv"
    wide.write_text(
        PATIENTS_HEADER
        + "P-1,Ana,Ruiz,ana@example.org,1990-01-01\n"
        + f"P-2,{'A' * 140_000},Lopez,b@example.org,1990-01-01\n",
        encoding="utf-8",
    )
    patients = folder / "patients.csv"
    patients.write_text(
        PATIENTS_HEADER
        + "P-1,Ana,Ruiz,ana@example.org,1990-01-01\n"
        + "P-2,Bea,Lopez,bea@example.org,1850-01-01\n",
        encoding="utf-8",
    )
    long_name = folder / "long-name.csv"
    long_name.write_text(
        PATIENTS_HEADER + f"P-1,{'Ana' * 50},Ruiz,ana@example.org,1990-01-01\n", encoding="utf-8"
    )
    good = folder / "good-patients.csv"
    good.write_text(PATIENTS_HEADER + "P-1,Ana,Ruiz,ana@example.org,1990-01-01\n")
    visits = folder / "appointments.csv"
    visits.write_text(
        APPOINTMENTS_HEADER
        + "A-1,P-1,Dr. Ada Quill,riverbend,mn-face-riverbend,2027-03-09T10:00:00\n"
        + "A-2,P-1,Dr. Ada Quill,riverbend,mn-face-riverbend,9999-12-31T23:00:00\n"
        + "A-3,P-1,Dr. Ada Quill,riverbend,mn-face-riverbend,9999-12-31T23:00:00-12:00\n",
        encoding="utf-8",
    )
    nul = folder / "nul.csv"
    nul.write_text(PATIENTS_HEADER + "P-1,An\x00a,Ruiz,ana@example.org,1990-01-01\n")
    org = ["import", "--organization", "riverbend-group"]
    return [
        ([*org, "--patients", str(latin)], ("--patients", "latin1.csv", "line 2", "UTF-8")),
        ([*org, "--patients", str(wide)], ("patients.csv line 3", "field limit")),
        ([*org, "--patients", str(patients)], ("patients.csv line 3, birth_date", "1900")),
        (
            [*org, "--patients", str(long_name)],
            ("patients.csv line 2, first_name", "longer than 120"),
        ),
        (
            [*org, "--patients", str(good), "--appointments", str(visits)],
            ("appointments.csv line 3, starts_at", "2199-12-31"),
        ),
        ([*org, "--patients", str(nul)], ("patients.csv line 2, first_name", "NUL byte")),
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
@pytest.mark.parametrize("case", range(6))
def test_a_bad_import_file_exits_2_naming_file_line_and_column_and_writes_nothing(
    case: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_clinic()
    args, needles = _import_cases(tmp_path)[case]
    before = _counts()
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in captured.err, captured.err
    assert _counts() == before


@pytest.mark.django_db(transaction=True)
def test_importing_a_latin1_file_exits_2_in_a_real_process(tmp_path: Path) -> None:
    build_clinic()
    args, needles = _import_cases(tmp_path)[0]
    result = subprocess.run(
        [sys.executable, "-m", "microneedling.cli", *args],
        env=database_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_refused(result.returncode, result.stdout, result.stderr, needles)
    assert _counts() == (0, 0)


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_a_closure_whose_csv_cannot_be_written_is_refused_before_anything_moves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from microneedling.directory.models import Location  # noqa: PLC0415

    clinic = build_clinic()
    for where, needle in ((tmp_path, "is a folder"), (tmp_path / "no" / "x.csv", "not a folder")):
        code = main(
            ["close-location", clinic.location.slug, "--from", "2027-03-01", "--csv", str(where)]
        )
        captured = capsys.readouterr()
        _assert_refused(code, captured.out, captured.err, ("--csv", needle))
    assert Location.objects.get(pk=clinic.location.pk).status == clinic.location.status


@pytest.mark.django_db
def test_a_token_label_longer_than_the_database_keeps_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from microneedling.accounts.models import ApiToken  # noqa: PLC0415
    from tests.web.conftest import make_staff  # noqa: PLC0415

    make_staff("desk", "front_desk")
    code = main(["token", "--user", "desk", "--label", "x" * 101])
    captured = capsys.readouterr()
    _assert_refused(code, captured.out, captured.err, ("--label", "at most 100"))
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_a_token_is_listed_and_stopped_from_the_command_line_and_a_wrong_id_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from microneedling.accounts.models import ApiToken  # noqa: PLC0415
    from microneedling.accounts.services import api_token_issue, api_token_user  # noqa: PLC0415
    from microneedling.audit.models import AuditEvent  # noqa: PLC0415
    from tests.web.conftest import make_staff  # noqa: PLC0415

    desk = make_staff("desk", "front_desk")
    other = make_staff("other", "front_desk")
    kept, leaked = api_token_issue(user=desk, label="laptop"), api_token_issue(user=desk)
    theirs = api_token_issue(user=other)
    leaked_id = ApiToken.objects.filter(user=desk).order_by("pk").last().pk  # type: ignore[union-attr]
    assert main(["token", "--user", "desk", "--list"]) == 0
    listed = capsys.readouterr().out
    assert f"#{leaked_id}\t" in listed and "laptop" in listed and leaked not in listed
    # Another user's token is not this user's to stop: refused, named, nothing changed.
    other_id = ApiToken.objects.get(user=other).pk
    code = main(["token", "--user", "desk", "--revoke", str(other_id)])
    captured = capsys.readouterr()
    _assert_refused(code, captured.out, captured.err, ("--revoke", "no working token"))
    assert api_token_user(theirs) == other
    assert main(["token", "--user", "desk", "--revoke", f"#{leaked_id}"]) == 0
    assert "1 token(s) of desk no longer work" in capsys.readouterr().out
    assert api_token_user(leaked) is None and api_token_user(kept) == desk
    assert AuditEvent.objects.filter(action="api_token_revoke", object_id=str(desk.pk)).exists()
    assert main(["token", "--user", "desk", "--revoke-all"]) == 0
    assert "1 token(s)" in capsys.readouterr().out
    assert api_token_user(kept) is None and api_token_user(theirs) == other
    code = main(["token", "--user", "desk", "--revoke", "²"])
    captured = capsys.readouterr()
    _assert_refused(code, captured.out, captured.err, ("--revoke", "not a token id"))


@pytest.mark.django_db
def test_a_token_given_days_stops_working_after_them_and_a_bad_count_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from datetime import timedelta  # noqa: PLC0415

    import time_machine  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    from microneedling.accounts.models import ApiToken  # noqa: PLC0415
    from microneedling.accounts.services import api_token_user  # noqa: PLC0415
    from tests.web.conftest import make_staff  # noqa: PLC0415

    desk = make_staff("desk", "front_desk")
    for days in ("0", "99999", "ten"):
        code = main(["token", "--user", "desk", "--days", days])
        captured = capsys.readouterr()
        _assert_refused(code, captured.out, captured.err, ("--days",))
    assert not ApiToken.objects.exists()
    assert main(["token", "--user", "desk", "--days", "30", "--label", "pilot"]) == 0
    secret = capsys.readouterr().out.strip()
    assert api_token_user(secret) == desk
    assert main(["token", "--user", "desk", "--list"]) == 0
    assert "expires" in capsys.readouterr().out
    with time_machine.travel(timezone.now() + timedelta(days=30, minutes=1)):
        assert api_token_user(secret) is None


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_a_closures_csv_of_patients_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    from tests.web.conftest import MONDAY, book_visit, local, make_patient  # noqa: PLC0415

    clinic = build_clinic()
    book_visit(clinic, make_patient(clinic), local(MONDAY, 10))
    fresh, there = tmp_path / "moves.csv", tmp_path / "old.csv"
    closing = ["close-location", clinic.location.slug, "--from", MONDAY.isoformat(), "--dry-run"]
    there.write_text("an older report")
    there.chmod(0o644)
    # The usual umask, which would leave a new file readable by every account.
    previous = os.umask(0o022)
    try:
        for target in (fresh, there):
            assert main([*closing, "--csv", str(target)]) == 0
    finally:
        os.umask(previous)
    for target in (fresh, there):
        assert "Marsh" in target.read_text(encoding="utf-8")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600, target.name
