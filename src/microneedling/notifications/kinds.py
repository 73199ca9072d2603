"""The messages the product sends, whether a patient may opt out of each, and whether each
may wait out quiet hours."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of message: its subject line, and how it is treated."""

    subject: str
    essential: bool  # sent even to a patient who opted out of reminders
    urgent: bool = False  # goes out at once, even in quiet hours


KINDS: dict[str, Kind] = {
    "course_booked": Kind("Your treatment course is booked", essential=True),
    "visit_booked": Kind("Your visit is booked", essential=True),
    "visit_moved": Kind("Your visit has moved", essential=True),
    "visit_cancelled": Kind("Your visit is cancelled", essential=True),
    "visit_missed": Kind("We missed you at your visit", essential=True),
    "reminder": Kind("A reminder of your visit", essential=False),
    "hold_start": Kind("Time to pause a medicine before your visit", essential=True),
    "pre_care": Kind("Getting ready for tomorrow's visit", essential=False),
    "aftercare_check": Kind("How is your skin healing?", essential=False),
    "window_opens": Kind("Your next session can be booked now", essential=False),
    "maintenance_due": Kind("Time for a maintenance session", essential=False),
    "screening_result": Kind("Your health questionnaire has been reviewed", essential=True),
    "skin_report_escalated": Kind("About the skin report you sent us", essential=True, urgent=True),
    "location_change": Kind("A change to where you will be seen", essential=True),
    "visit_unsettled": Kind("Your visit needs a new time or place", essential=True),
}

#: Kinds tied to a visit's time: a move or a cancellation withdraws the ones not yet sent.
TIMED_KINDS = frozenset(
    {"reminder", "hold_start", "pre_care", "aftercare_check", "window_opens", "maintenance_due"}
)
