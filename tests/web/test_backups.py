"""`microneedling backup` and `restore`, as separate processes, on SQLite and PostgreSQL: the
restored database holds exactly what the backup saw, and bad input changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment, Reservation
from tests.web.conftest import MONDAY, Clinic, book_course, build_clinic, make_patient
from tests.web.processes import database_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_now")]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microneedling.cli", *args],
        env=database_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _snapshot() -> dict[str, list[tuple[object, ...]]]:
    return {
        "patients": list(Patient.objects.order_by("pk").values_list("pk", "last_name", "email")),
        "visits": list(Appointment.objects.order_by("pk").values_list("pk", "starts_at", "status")),
        "reservations": list(
            Reservation.objects.order_by("pk").values_list("pk", "resource", "starts_at", "active")
        ),
    }


def test_a_restored_backup_holds_exactly_what_was_backed_up(tmp_path: Path) -> None:
    clinic: Clinic = build_clinic()
    book_course(clinic, make_patient(clinic), MONDAY)
    before = _snapshot()
    target = tmp_path / "clinic.backup"
    made = _cli("backup", str(target))
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    assert report["integrity"] == "ok" and report["tables"] > 20 and target.stat().st_size > 0
    # Life goes on after the backup...
    make_patient(clinic, name="Dan Reyes")
    Appointment.objects.update(status="cancelled")
    assert _snapshot() != before
    # ...and the restore brings back the moment of the backup, exactly.
    restored = _cli("restore", str(target), "--yes")
    assert restored.returncode == 0, restored.stderr
    connection.close()
    assert _snapshot() == before
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")
            assert cursor.fetchone()[0] == "ok"


def test_bad_backup_and_restore_requests_exit_2_and_change_nothing(tmp_path: Path) -> None:
    clinic = build_clinic()
    make_patient(clinic)
    before = _snapshot()
    taken = tmp_path / "taken"
    taken.write_text("already here")
    exists = _cli("backup", str(taken))
    assert exists.returncode == 2 and "file:" in exists.stderr and "exists" in exists.stderr
    assert taken.read_text() == "already here"
    unconfirmed = _cli("restore", str(taken))
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    missing = _cli("restore", str(tmp_path / "nope"), "--yes")
    assert missing.returncode == 2 and "is not a file" in missing.stderr
    if connection.vendor == "sqlite":
        junk = _cli("restore", str(taken), "--yes")
        assert junk.returncode == 2, junk.stderr
    connection.close()
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("good", "odd"),
    [("ok.backup", "ok.backup#x"), ("ok.backup", "ok.backup?x"), ("okA.backup", "ok%41.backup")],
)
def test_a_backup_or_restore_uses_the_very_file_it_is_named_whatever_the_name(
    tmp_path: Path, good: str, odd: str
) -> None:
    clinic = build_clinic()
    make_patient(clinic)
    before = _snapshot()
    # A backup is written under an odd name, whole, with nothing left beside it.
    made = _cli("backup", str(tmp_path / odd))
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["integrity"] == "ok"
    assert [p.name for p in tmp_path.iterdir()] == [odd]
    if connection.vendor == "sqlite":
        # Read as a URI, the odd name would mean the good backup beside it: the restore
        # must check the file it will copy, a stranger here, and refuse it.
        assert _cli("backup", str(tmp_path / good)).returncode == 0
        (tmp_path / odd).unlink()
        with sqlite3.connect(tmp_path / odd) as db:
            db.execute("CREATE TABLE t (x)")
        refused = _cli("restore", str(tmp_path / odd), "--yes")
        assert refused.returncode == 2
        assert "not a Microneedling Clinic database" in refused.stderr
    connection.close()
    assert _snapshot() == before


def _sqlite_only() -> Path:
    """The live SQLite file (these refusals concern SQLite's own restore)."""
    if connection.vendor != "sqlite":
        pytest.fail("called on PostgreSQL: the caller checks the engine first")
    return Path(connection.settings_dict["NAME"])


def test_a_restore_refuses_a_stranger_a_newer_backup_and_the_live_file_itself(
    tmp_path: Path,
) -> None:
    clinic = build_clinic()
    make_patient(clinic)
    before = _snapshot()
    if connection.vendor == "sqlite":
        live = _sqlite_only()
        # Only the bookkeeping table, nothing of ours: restoring it would empty the clinic.
        stranger = tmp_path / "stranger.backup"
        with sqlite3.connect(stranger) as db:
            db.execute("CREATE TABLE django_migrations (id INTEGER, app TEXT, name TEXT, x)")
        refused = _cli("restore", str(stranger), "--yes")
        assert refused.returncode == 2 and "its tables are missing" in refused.stderr
        # A backup whose database a later version migrated further.
        newer = tmp_path / "newer.backup"
        assert _cli("backup", str(newer)).returncode == 0
        with sqlite3.connect(newer) as db:
            db.execute(
                "INSERT INTO django_migrations (app, name, applied) "
                "VALUES ('scheduling', '9999_from_the_future', '2030-01-01')"
            )
        refused = _cli("restore", str(newer), "--yes")
        assert refused.returncode == 2 and "newer version" in refused.stderr
        itself = _cli("restore", str(live), "--yes")
        assert itself.returncode == 2 and "the live database itself" in itself.stderr
    else:
        # pg_restore's own complaint, not its command line (which named the database).
        text = tmp_path / "text.backup"
        text.write_text("not a dump")
        refused = _cli("restore", str(text), "--yes")
        assert refused.returncode == 2 and "pg_restore failed" in refused.stderr
        assert "postgresql://" not in refused.stderr and "Traceback" not in refused.stderr
    connection.close()
    assert _snapshot() == before


def test_a_restore_gives_up_on_a_database_in_use_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from microneedling import backups  # noqa: PLC0415
    from microneedling.core.errors import InputError  # noqa: PLC0415

    clinic = build_clinic()
    make_patient(clinic)
    backup = tmp_path / "clinic.backup"
    assert _cli("backup", str(backup)).returncode == 0
    backed_up = _snapshot()
    make_patient(clinic, name="Dan Reyes")
    before = _snapshot()
    if connection.vendor == "sqlite":
        monkeypatch.setattr(backups, "BUSY_SECONDS", 1)
        holder = sqlite3.connect(_sqlite_only(), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # a worker in the middle of a write
        try:
            with pytest.raises(InputError, match="is in use: stop the app servers"):
                backups.database_restore(source=backup)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        connection.close()
        assert _snapshot() == before
    else:
        # PostgreSQL restores in one transaction that waits for its locks like any other
        # writer: the backup restores with this process's connection open.
        assert _cli("restore", str(backup), "--yes").returncode == 0
        connection.close()
        assert _snapshot() == backed_up != before


def test_a_backup_is_readable_by_its_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    clinic = build_clinic()
    make_patient(clinic)
    target = tmp_path / "clinic.backup"
    # The usual umask, which would leave a new file readable by every account.
    previous = os.umask(0o022)
    try:
        made = _cli("backup", str(target))
    finally:
        os.umask(previous)
    assert made.returncode == 0, made.stderr
    # Every patient's health record is in it: no group or other bits at all.
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_backup_a_newer_version_made_is_refused_on_either_engine_and_changes_nothing(
    tmp_path: Path,
) -> None:
    clinic = build_clinic()
    make_patient(clinic)
    # A later version's migration, as its database records it (a rollback of an upgrade).
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('scheduling', '9999_from_the_future', '2030-01-01')"
        )
    newer = tmp_path / "newer.backup"
    made = _cli("backup", str(newer))
    assert made.returncode == 0, made.stderr
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE name = '9999_from_the_future'")
    make_patient(clinic, name="Dan Reyes")
    before = _snapshot()
    refused = _cli("restore", str(newer), "--yes")
    assert refused.returncode == 2, refused.stdout
    assert "newer version" in refused.stderr and "9999_from_the_future" in refused.stderr
    assert "Traceback" not in refused.stderr
    connection.close()
    assert _snapshot() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE name = '9999_from_the_future'")
        assert cursor.fetchone()[0] == 0


def test_a_postgresql_restore_gives_up_on_a_table_in_use_and_changes_nothing(
    tmp_path: Path,
) -> None:
    clinic = build_clinic()
    make_patient(clinic)
    backup = tmp_path / "clinic.backup"
    assert _cli("backup", str(backup)).returncode == 0
    make_patient(clinic, name="Dan Reyes")
    before = _snapshot()
    if connection.vendor == "sqlite":
        # SQLite's counterpart: test_a_restore_gives_up_on_a_database_in_use_and_changes_nothing.
        holder = sqlite3.connect(Path(connection.settings_dict["NAME"]), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        release = holder.close
    else:
        import psycopg  # noqa: PLC0415

        db = connection.settings_dict
        holder = psycopg.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]
        )
        # A worker left in the middle of a transaction holds the table the restore drops.
        holder.execute("SELECT count(*) FROM patients_patient")
        release = holder.close
    try:
        refused = _cli_within("restore", str(backup), "--yes", seconds=120)
    finally:
        release()
    assert refused.returncode == 2, refused.stdout
    assert "in use" in refused.stderr and "Traceback" not in refused.stderr
    connection.close()
    assert _snapshot() == before


def _cli_within(*args: str, seconds: float) -> subprocess.CompletedProcess[str]:
    """The command, which must finish within ``seconds`` (not wait for ever)."""
    return subprocess.run(
        [sys.executable, "-m", "microneedling.cli", *args],
        env=database_env(),
        capture_output=True,
        text=True,
        timeout=seconds,
        check=False,
    )


def test_restoring_an_older_backup_says_to_migrate_before_starting_the_app(
    tmp_path: Path,
) -> None:
    clinic = build_clinic()
    make_patient(clinic)
    # The backup of last night, taken before this version's newest migration was applied.
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(name) FROM django_migrations WHERE app = 'scheduling'")
        newest = cursor.fetchone()[0]
    forget = "DELETE FROM django_migrations WHERE app = 'scheduling' AND name = %s"
    remember = (
        "INSERT INTO django_migrations (app, name, applied) "
        "SELECT 'scheduling', %s, '2026-12-01' WHERE NOT EXISTS "
        "(SELECT 1 FROM django_migrations WHERE app = 'scheduling' AND name = %s)"
    )
    older = tmp_path / "older.backup"
    try:
        with connection.cursor() as cursor:
            cursor.execute(forget, [newest])
        assert _cli("backup", str(older)).returncode == 0
        with connection.cursor() as cursor:
            cursor.execute(remember, [newest, newest])
        restored = _cli("restore", str(older), "--yes")
    finally:
        connection.close()
        # The test database stays migrated for the tests after this one.
        with connection.cursor() as cursor:
            cursor.execute(remember, [newest, newest])
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["migrations_to_apply"] == 1
    assert "run `microneedling migrate` before starting the app" in restored.stderr


def test_a_postgresql_server_reached_over_its_unix_socket_is_backed_up_and_restored(
    tmp_path: Path,
) -> None:
    folder = Path("/var/run/postgresql")
    if not any(folder.glob(".s.PGSQL.*")):
        # CI starts the server beside every run; a laptop with SQLite alone may have none.
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's socket is missing: CI runs the server")
        pytest.skip("no PostgreSQL server on this machine (its socket is missing)")
    if connection.vendor == "sqlite":
        # This run's database is a file: what is checked is that the address the backup
        # gives pg_dump for a server reached over its socket does reach that server.
        from microneedling.backups import _pg_url  # noqa: PLC0415

        settings = {"USER": "postgres", "HOST": str(folder), "PORT": "", "NAME": "postgres"}
        pg_dump = shutil.which("pg_dump")
        assert pg_dump is not None, "the server's machine has pg_dump (postgresql-client)"
        dumped = subprocess.run(
            [pg_dump, "--schema-only", "--dbname", _pg_url(settings)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert dumped.returncode == 0, dumped.stderr
        return
    clinic = build_clinic()
    make_patient(clinic)
    before = _snapshot()
    db = connection.settings_dict
    # Debian's usual set-up: the server's socket folder as the host, percent-encoded.
    env = database_env(
        DATABASE_URL=f"postgres://{db['USER']}@%2Fvar%2Frun%2Fpostgresql/{db['NAME']}"
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "microneedling.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    target = tmp_path / "clinic.backup"
    made = cli("backup", str(target))
    assert made.returncode == 0, made.stderr
    make_patient(clinic, name="Dan Reyes")
    connection.close()
    restored = cli("restore", str(target), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert _snapshot() == before
