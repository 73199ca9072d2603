"""Whole seconds since the Unix epoch, computed by the database from a datetime column.

Reservations keep these next to their datetimes (as generated columns, so the database keeps
them right on every write): availability reads tens of thousands of reservations at a time,
and integers come out of both engines, and out of a covering index, several times faster
than timestamps that must be parsed.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler


class EpochSeconds(models.Func):
    """``column`` as whole seconds since the epoch: rounded down, or up with ``up=True``
    (an end rounded up keeps a busy span from shrinking)."""

    output_field = models.BigIntegerField()

    def __init__(self, expression: str, *, up: bool = False) -> None:
        super().__init__(expression)
        self.up = up

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        # Django stores UTC text, "YYYY-MM-DD HH:MM:SS" plus ".ffffff" only when the
        # microseconds are not zero; unixepoch() drops the fraction, so a longer text
        # rounding up adds one second.
        template = "unixepoch(%(expressions)s)"
        if self.up:
            template = "(unixepoch(%(expressions)s) + (length(%(expressions)s) > 19))"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        # AT TIME ZONE 'UTC' makes the expression immutable, as a generated column needs
        # (EXTRACT on a timestamptz depends on the session's zone setting in general).
        rounding = "ceil" if self.up else "floor"
        template = f"{rounding}(EXTRACT(EPOCH FROM (%(expressions)s AT TIME ZONE 'UTC')))::bigint"
        return self.as_sql(compiler, connection, template=template, **extra)

    def deconstruct(self) -> Any:
        """Keep ``up`` in migrations."""
        path, args, kwargs = super().deconstruct()
        if self.up:
            kwargs["up"] = True
        return path, args, kwargs
