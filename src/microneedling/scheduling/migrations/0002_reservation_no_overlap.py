"""On PostgreSQL, make overlapping active reservations of one resource impossible.

An exclusion constraint (btree_gist for ``=`` on the resource, ``&&`` on the half-open time
range) refuses the second of two overlapping rows even when two transactions race. Only active
rows that are not deliberate staff overrides take part. SQLite has no such constraint; there
the booking service checks and inserts inside one IMMEDIATE transaction instead.
"""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE scheduling_reservation
  ADD CONSTRAINT reservation_no_overlap
  EXCLUDE USING gist (resource WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
  WHERE (active AND NOT overlap_allowed);
"""
DROP = "ALTER TABLE scheduling_reservation DROP CONSTRAINT IF EXISTS reservation_no_overlap;"


def _on_postgres(sql: str):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP))]
