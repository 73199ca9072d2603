"""Backups of the whole database, taken while the clinic runs, and their restore.

SQLite: the online backup API copies a consistent snapshot page by page while others keep
writing; the copy is checked (``PRAGMA integrity_check``) before it is reported. PostgreSQL:
``pg_dump`` in its custom format and ``pg_restore``, which must be on the PATH (Debian's
postgresql-client). Restore replaces the whole database: stop the app servers and workers
first (docs/deploy.md).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from microneedling.core.errors import InputError


@dataclass(frozen=True)
class BackupReport:
    """What a backup or a restore did."""

    engine: str
    file: str
    size_bytes: int
    tables: int
    integrity: str
    #: Migrations of this version the restored database has not had (an older backup): the
    #: app must not start on it before ``microneedling migrate``.
    migrations_to_apply: int = 0


def _settings() -> dict[str, Any]:
    from django.db import connection  # noqa: PLC0415

    return dict(connection.settings_dict) | {"vendor": connection.vendor}


def _sqlite_check(path: Path) -> tuple[int, str]:
    try:
        # A URI, so the check can be read-only; ``as_uri`` escapes "#", "?" and "%", which
        # would otherwise cut the name short and check some other file.
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            tables = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()
            migrated = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'django_migrations'"
            ).fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise InputError("file", f"is not a SQLite database ({error})") from None
    if not migrated:
        raise InputError("file", "is not a Microneedling Clinic database")
    return int(tables[0]), str(integrity)


#: How long a restore waits for other connections to the live database to let go.
BUSY_SECONDS = 10


def _restorable(applied: set[tuple[str, str]]) -> int:
    """Refuse a backup this code cannot run on, from the migrations it records as applied
    (``applied``): not one of ours (our apps' first migrations missing), or made by a newer
    version (migrations this code does not know). The number of this version's migrations
    the backup has not had."""
    from django.apps import apps  # noqa: PLC0415
    from django.db.migrations.loader import MigrationLoader  # noqa: PLC0415

    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    ours = {
        (config.label, "0001_initial")
        for config in apps.get_app_configs()
        if config.name.startswith("microneedling.")
    } & known
    if not ours <= applied:
        raise InputError("file", "is not a Microneedling Clinic database (its tables are missing)")
    newer = sorted(f"{app}.{name}" for app, name in applied - known)
    if newer:
        raise InputError(
            "file",
            f"was made by a newer version (migrations {', '.join(newer[:3])}); upgrade first",
        )
    return len(known - applied)


def _sqlite_applied(path: Path) -> set[tuple[str, str]]:
    """The migrations a SQLite backup records as applied."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
        try:
            return set(db.execute("SELECT app, name FROM django_migrations").fetchall())
        except sqlite3.DatabaseError as error:
            raise InputError("file", f"is not a Microneedling Clinic database ({error})") from None


def _pg_applied(path: Path, db: dict[str, Any]) -> set[tuple[str, str]]:
    """The migrations a pg_dump archive records as applied, read from the archive itself
    (its ``django_migrations`` rows as pg_restore prints them, without touching a database):
    checked before ``--clean`` drops anything."""
    script = _pg_run(
        [_pg_tool("pg_restore"), "--data-only", "--table=django_migrations", "--file=-", str(path)],
        db,
    )
    applied: set[tuple[str, str]] = set()
    columns: list[str] | None = None
    for line in script.splitlines():
        if columns is None:
            # COPY public.django_migrations (id, app, name, applied) FROM stdin;
            if line.startswith("COPY ") and ".django_migrations (" in line:
                columns = [c.strip() for c in line.partition("(")[2].partition(")")[0].split(",")]
            continue
        if line == "\\.":  # the end of the rows
            break
        row = dict(zip(columns, line.split("\t"), strict=False))
        applied.add((row.get("app", ""), row.get("name", "")))
    return applied


def _pg_url(db: dict[str, Any]) -> str:
    # No password here: it would show in ``ps`` and in error messages (see _pg_env).
    # Each part percent-encoded: a server reached over its socket has a folder as its host
    # ("/var/run/postgresql"), whose slashes would otherwise be read as the database name.
    user, host, name = (quote(str(db[key] or ""), safe="") for key in ("USER", "HOST", "NAME"))
    return f"postgresql://{user}@{host or 'localhost'}:{db['PORT'] or 5432}/{name}"


def _pg_env(db: dict[str, Any]) -> dict[str, str]:
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def _pg_run(args: list[str], db: dict[str, Any]) -> str:
    """Run a PostgreSQL client tool; its own message, never its command line, on failure."""
    try:
        done = subprocess.run(  # noqa: S603
            args, check=True, capture_output=True, text=True, env=_pg_env(db)
        )
    except subprocess.CalledProcessError as error:
        said = (error.stderr or "").strip().splitlines()
        raise InputError("file", f"{Path(args[0]).name} failed: {' '.join(said[-2:])}") from None
    return done.stdout


def _give_up_when_busy(deadline: float) -> Any:
    """A backup progress callback that stops retrying a locked database after ``deadline``
    (SQLite's backup would otherwise wait for ever)."""

    def progress(status: int, remaining: int, total: int) -> None:
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) and time.monotonic() > deadline:
            raise InputError(
                "database", "is in use: stop the app servers and workers, then restore"
            )

    return progress


def _pg_wait_until_unused(deadline: float) -> None:
    """Wait until no other session holds a table of the live database, or refuse once
    ``deadline`` has passed: pg_restore's ``--clean`` waits for such locks for ever (its
    script turns ``lock_timeout`` off), so a worker stuck in a transaction would hang the
    restore and the person running it."""
    from django.db import connection  # noqa: PLC0415

    held = """
        SELECT count(*) FROM pg_locks
        WHERE locktype = 'relation' AND pid <> pg_backend_pid()
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    """
    try:
        while True:
            with connection.cursor() as cursor:
                cursor.execute(held)
                if not cursor.fetchone()[0]:
                    return
            if time.monotonic() > deadline:
                raise InputError(
                    "database", "is in use: stop the app servers and workers, then restore"
                )
            time.sleep(0.25)
    finally:
        connection.close()  # holding nothing itself while pg_restore runs


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise InputError("engine", f"{name} is not installed (Debian: postgresql-client)")
    return found


def _private_file(path: Path) -> None:
    """Create ``path`` empty, readable and writable by this account only, before anything
    is written to it: a backup holds every patient's health record, and a file created with
    the usual umask (022) would be readable by every account on the machine. SQLite and
    pg_dump both write into the file as it is, so it keeps this mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        raise InputError("file", f"cannot write the backup there ({error.strerror})") from None


def database_backup(*, target: Path) -> BackupReport:
    """Write a consistent copy of the live database to ``target`` (not overwriting)."""
    if target.exists():
        raise InputError("file", f"{target} exists already: choose a new name")
    if not target.parent.is_dir():
        raise InputError("file", f"{target.parent} is not a folder")
    db = _settings()
    if db["vendor"] == "sqlite":
        live = Path(db["NAME"])
        if not live.is_file():  # connecting would create an empty one
            raise InputError("database", f"there is no database at {live}: migrate first")
        partial = target.with_name(target.name + ".partial")
        if partial.is_dir():
            raise InputError("file", f"{partial} is a folder: remove it or choose a new name")
        partial.unlink(missing_ok=True)  # what a backup cut short left
        _private_file(partial)
        try:
            with sqlite3.connect(live) as source, sqlite3.connect(partial) as copy:
                source.backup(copy, pages=1024)  # steps, so writers are never held for long
                # The copy takes the live database's WAL mode with its pages; a backup is one
                # self-contained file, with no -wal or -shm beside it once it has been read.
                copy.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as error:
            partial.unlink(missing_ok=True)
            raise InputError("file", f"cannot write the backup there ({error})") from None
        tables, integrity = _sqlite_check(partial)
        if integrity != "ok":
            partial.unlink()
            raise RuntimeError(f"the copy failed its integrity check: {integrity}")
        partial.rename(target)  # the name appears only once the copy is whole
        return BackupReport("sqlite", str(target), target.stat().st_size, tables, integrity)
    partial = target.with_name(target.name + ".partial")
    if partial.is_dir():
        raise InputError("file", f"{partial} is a folder: remove it or choose a new name")
    partial.unlink(missing_ok=True)  # what a dump cut short left
    _private_file(partial)
    try:
        _pg_run([_pg_tool("pg_dump"), "--format=custom", f"--file={partial}", _pg_url(db)], db)
        listing = _pg_run([_pg_tool("pg_restore"), "--list", str(partial)], db)
    except InputError:
        partial.unlink(missing_ok=True)  # no half-written file left to be taken for a backup
        raise
    partial.rename(target)
    tables = sum(" TABLE public " in line for line in listing.splitlines())
    return BackupReport("postgresql", str(target), target.stat().st_size, tables, "ok")


def database_restore(*, source: Path) -> BackupReport:
    """Replace the whole database with the backup ``source`` (the app must be stopped)."""
    if not source.is_file():
        raise InputError("file", f"{source} is not a file")
    db = _settings()
    if db["vendor"] == "sqlite":
        tables, integrity = _sqlite_check(source)
        if integrity != "ok":
            raise InputError("file", f"the backup is damaged: {integrity}")
        behind = _restorable(_sqlite_applied(source))
        live_path = Path(db["NAME"])
        if live_path.exists() and live_path.resolve() == source.resolve():
            raise InputError("file", "is the live database itself, not a backup of it")
        from django.db import connections  # noqa: PLC0415

        connections.close_all()
        deadline = time.monotonic() + BUSY_SECONDS
        try:
            # SQLite writes the whole copy in one transaction on the live file: a failure
            # (a page size the live WAL file cannot take, a full disk) leaves it as it was.
            with sqlite3.connect(source) as backup, sqlite3.connect(live_path) as live:
                backup.backup(live, pages=1024, progress=_give_up_when_busy(deadline))
        except sqlite3.Error as error:
            raise InputError(
                "database", f"the restore was refused, nothing changed ({error})"
            ) from None
        tables, integrity = _sqlite_check(live_path)
        return BackupReport(
            "sqlite", str(db["NAME"]), source.stat().st_size, tables, integrity, behind
        )
    behind = _restorable(_pg_applied(source, db))
    _pg_wait_until_unused(time.monotonic() + BUSY_SECONDS)
    _pg_run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={_pg_url(db)}",
            str(source),
        ],
        db,
    )
    return BackupReport("postgresql", str(db["NAME"]), source.stat().st_size, 0, "ok", behind)
