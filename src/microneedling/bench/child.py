"""A benchmark suite run in its own process, against the database its environment names.

``python -m microneedling.bench.child SUITE RUNS`` prints the JSON of the suite (scheduling,
notifications or rehoming) on stdout.
With BENCH_RESET_DATABASE=1 on PostgreSQL the bench database is dropped and created first, so
every run starts from the same generated chain, and dropped again after the run (also when it
fails).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys


def _reset_postgres(*, create: bool = True) -> None:
    """Drop the bench database, and create it afresh unless ``create`` is false."""
    import psycopg  # noqa: PLC0415
    from dj_database_url import parse  # noqa: PLC0415

    config = parse(os.environ["DATABASE_URL"])
    name = config["NAME"]
    admin = psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            admin.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    """Run the named suite and print its JSON."""
    suite, runs = sys.argv[1], int(sys.argv[2])
    scratch = bool(os.environ.get("BENCH_RESET_DATABASE") and os.environ.get("DATABASE_URL"))
    if scratch:
        _reset_postgres()
    try:
        return _run(suite, runs)
    finally:
        if scratch:
            # The database was made for this run: dropped after it, failed or not.
            from django.db import connections  # noqa: PLC0415

            with contextlib.suppress(Exception):  # the drop ends them anyway
                connections.close_all()
            _reset_postgres(create=False)


def _run(suite: str, runs: int) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microneedling.config.settings")
    import django  # noqa: PLC0415

    django.setup()
    if suite == "scheduling":
        from microneedling.bench.scheduling import run  # noqa: PLC0415
    elif suite == "notifications":
        from microneedling.bench.notifications import run  # noqa: PLC0415
    elif suite == "rehoming":
        from microneedling.bench.rehoming import run  # noqa: PLC0415
    elif suite == "load":
        from microneedling.bench.load import run  # noqa: PLC0415
    else:
        raise SystemExit(f"unknown suite {suite}")
    sys.stdout.write(json.dumps(run(runs)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
