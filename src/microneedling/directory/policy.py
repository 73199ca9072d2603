"""The clinic's policy as the services use it: booking rules and the knowledge-pack choices,
read once per operation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from microneedling.core.knowledge.models import Policy
from microneedling.directory.models import (
    ClinicPolicy,
    default_booking_horizon_days,
    default_min_notice_hours,
    default_reminder_hours,
    default_slot_grid_minutes,
)


@dataclass(frozen=True)
class BookingRules:
    """How a clinic books: the start grid, the least notice, the furthest day, and the
    positions and protocols it follows where the sources differ."""

    grid_minutes: int
    notice_hours: int
    horizon_days: int
    pack_policy: Policy = field(default_factory=Policy)
    # The message rules of the same row, for a booking's messages (no second read).
    reminder_hours: tuple[int, ...] = field(default_factory=lambda: tuple(default_reminder_hours()))
    quiet_from: time = time(21)
    quiet_until: time = time(8)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The earliest and latest moments a visit may start, seen from ``now``."""
        return now + timedelta(hours=self.notice_hours), now + timedelta(days=self.horizon_days)


def booking_rules(organization_id: int) -> BookingRules:
    """The organisation's rules: its stored policy, or the deployment's defaults (one query)."""
    row = ClinicPolicy.objects.filter(organization_id=organization_id).first()
    if row is None:
        return BookingRules(
            grid_minutes=default_slot_grid_minutes(),
            notice_hours=default_min_notice_hours(),
            horizon_days=default_booking_horizon_days(),
        )
    return BookingRules(
        grid_minutes=row.slot_grid_minutes,
        notice_hours=row.min_notice_hours,
        horizon_days=row.booking_horizon_days,
        pack_policy=row.pack_policy(),
        reminder_hours=tuple(row.reminder_hours),
        quiet_from=row.quiet_from,
        quiet_until=row.quiet_until,
    )
