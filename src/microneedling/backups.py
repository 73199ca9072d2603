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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microneedling.core.errors import InputError


@dataclass(frozen=True)
class BackupReport:
    """What a backup or a restore did."""

    engine: str
    file: str
    size_bytes: int
    tables: int
    integrity: str


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


def _pg_url(db: dict[str, Any]) -> str:
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise InputError("engine", f"{name} is not installed (Debian: postgresql-client)")
    return found


def database_backup(*, target: Path) -> BackupReport:
    """Write a consistent copy of the live database to ``target`` (not overwriting)."""
    if target.exists():
        raise InputError("file", f"{target} exists already: choose a new name")
    if not target.parent.is_dir():
        raise InputError("file", f"{target.parent} is not a folder")
    db = _settings()
    if db["vendor"] == "sqlite":
        partial = target.with_name(target.name + ".partial")
        with sqlite3.connect(db["NAME"]) as source, sqlite3.connect(partial) as copy:
            source.backup(copy, pages=1024)  # steps, so writers are never held for long
            # The copy takes the live database's WAL mode with its pages; a backup is one
            # self-contained file, with no -wal or -shm beside it once it has been read.
            copy.execute("PRAGMA journal_mode=DELETE")
        tables, integrity = _sqlite_check(partial)
        if integrity != "ok":
            partial.unlink()
            raise RuntimeError(f"the copy failed its integrity check: {integrity}")
        partial.rename(target)  # the name appears only once the copy is whole
        return BackupReport("sqlite", str(target), target.stat().st_size, tables, integrity)
    subprocess.run(  # noqa: S603
        [_pg_tool("pg_dump"), "--format=custom", f"--file={target}", _pg_url(db)],
        check=True,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    )
    listing = subprocess.run(  # noqa: S603
        [_pg_tool("pg_restore"), "--list", str(target)], check=True, capture_output=True, text=True
    ).stdout
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
        from django.db import connections  # noqa: PLC0415

        connections.close_all()
        with sqlite3.connect(source) as backup, sqlite3.connect(db["NAME"]) as live:
            backup.backup(live)
        tables, integrity = _sqlite_check(Path(db["NAME"]))
        return BackupReport("sqlite", str(db["NAME"]), source.stat().st_size, tables, integrity)
    subprocess.run(  # noqa: S603
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={_pg_url(db)}",
            str(source),
        ],
        check=True,
    )
    return BackupReport("postgresql", str(db["NAME"]), source.stat().st_size, 0, "ok")
