"""Writes for scheduling: book one visit, book a whole course, move, cancel, change status.

Every write runs in one transaction. On SQLite that transaction takes the write lock at BEGIN
(IMMEDIATE), so the free time read inside it cannot change before the reservations are
inserted. On PostgreSQL two transactions can read the same free time; the exclusion
constraint then refuses the second insert and the caller gets a 409 naming the resource.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from microneedling.accounts.access import Can, Role, may, may_use_location, role_of
from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.services import audit_record
from microneedling.charting.services import consent_is_current
from microneedling.core.availability import Slot
from microneedling.core.courses import CoursePlan, PlannedSession, chain_sessions, plan_course
from microneedling.core.errors import BookingConflict, BookingRefused, InputError
from microneedling.core.knowledge import load_pack
from microneedling.core.knowledge.models import Gap, Policy
from microneedling.core.series import SeriesResult, search_days, search_series
from microneedling.core.series.spacing import day_blocked, first_unblocked
from microneedling.directory.models import Location, Provider, Service
from microneedling.directory.policy import BookingRules, booking_rules
from microneedling.notifications import events
from microneedling.notifications.outbox import message_rules_of
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling.booking import (
    TakenByOverride,
    provider_of,
    reservation_rows,
    reservations_insert,
    reservations_write,
    slot_at,
    unavailable_conflict,
)
from microneedling.scheduling.calendars import (
    MAX_RESERVATION,
    LocationCalendar,
    location_calendar,
)
from microneedling.scheduling.models import (
    Appointment,
    AppointmentRequest,
    Course,
    CourseSession,
    Reservation,
)
from microneedling.scheduling.spacing import TOO_SOON, patient_lock, treatment_spacing_check

#: PostgreSQL's codes for a transaction that lost a race: deadlock, serialisation failure.
_RACE_STATES = frozenset({"40P01", "40001"})
#: How often a course booking that lost a race is tried again before answering 409.
RACE_ATTEMPTS = 3


def lost_race(error: OperationalError) -> bool:
    """Whether a database error means a concurrent transaction won (worth a retry)."""
    return getattr(error.__cause__, "sqlstate", None) in _RACE_STATES


@contextmanager
def race_as_conflict(*, session: int) -> Iterator[None]:
    """Answer a lost race (the exclusion constraint, a deadlock, a serialisation failure)
    inside the block with a 409 naming the course session; other errors pass through."""
    try:
        yield
    except (IntegrityError, OperationalError) as error:
        if isinstance(error, OperationalError) and not lost_race(error):
            raise
        raise BookingConflict(
            "another booking took one of these times a moment ago; try again", session=session
        ) from error


#: How many days after the requested day the first session may fall.
FIRST_SESSION_FLEX_DAYS = 6


@dataclass(frozen=True)
class Preferences:
    """A patient's soft preferences for a course search."""

    provider_id: int | None = None
    weekdays: tuple[int, ...] = ()
    times: tuple[tuple[str, str], ...] = ()


def _local_today(location: Location, now: datetime) -> date:
    return now.astimezone(ZoneInfo(location.timezone)).date()


def account_open_check(patient: Patient) -> None:
    """Refuse to book or request a visit for a patient who closed their account: closing
    cancelled their visits and stopped their messages, and a new booking would bring back
    what they asked to end (the record itself stays, read-only, for the law)."""
    if patient.closed_at is not None:
        raise BookingRefused(
            "this patient closed their account; nothing new can be booked for them",
            code="account_closed",
            field="patient",
        )


def same_organization(
    patient: Patient,
    location: Location,
    provider: Provider | None = None,
    *,
    provider_field: str = "provider",
) -> None:
    """Refuse a booking at another organisation's location, or with (or preferring, named
    by ``provider_field``) its provider: each organisation keeps its own patients, and its
    staff see only those (the API must not reach across)."""
    if patient.organization_id != location.organization_id:
        raise BookingRefused(
            "that location belongs to another organisation than the patient's",
            code="other_organization",
            field="location",
        )
    if provider is not None and provider.organization_id != location.organization_id:
        raise BookingRefused(
            "that provider works for another organisation",
            code="other_organization",
            field=provider_field,
        )


def provider_treats_check(
    provider: Provider, service: Service, rules: BookingRules, *, field: str = "provider"
) -> None:
    """Refuse a treatment with a provider whom the clinic's position on who does the
    needling leaves out (``dispute.who_performs``: doctors and nurse practitioners only).
    Said outright, instead of the "no free time" the diary, which lists no such provider for
    treatments, would otherwise give; other visits (a consultation) may be with anyone."""
    if service.kind != Service.Kind.TREATMENT:
        return
    roles = load_pack().treating_roles(rules.pack_policy)
    if roles is not None and provider.role not in roles:
        allowed = " or ".join(str(Provider.Role(role).label).lower() for role in roles)
        raise BookingRefused(
            f"this clinic has the needling done by a {allowed} only, and "
            f"{provider.display_name} is not one",
            code="provider_not_treating",
            field=field,
        )


def location_open_check(location: Location, day: date) -> None:
    """Refuse a booking on ``day`` at a location that has closed, or will have by then.

    Named, rather than left to the diary (which has no free time there), so the caller
    hears that the place is shut, not that it is busy, and where its patients now go.
    """
    shut = location.status == Location.Status.CLOSED
    closing = location.closes_on is not None and day >= location.closes_on
    if not (shut or closing):
        return
    successor = location.successor
    onward = f"; its patients now go to {successor.name}" if successor else ""
    # Still open today, closing later: say when, not that it "has closed".
    what = (
        "has closed"
        if shut or location.closes_on is None
        else f"closes on {location.closes_on.isoformat()} and takes no bookings from then"
    )
    raise BookingRefused(
        f"{location.name} {what}{onward}", code="location_closed", field="location"
    )


def staff_location_check(*, actor: Actor, location: Location) -> None:
    """Refuse a member of staff a booking at a location they do not work at.

    Seeing a patient (a new one is the whole chain's) does not make every diary of the
    chain one's own: staff book only where ``accounts.access`` says they work or run the
    place (chain operators and superusers everywhere). Patients book for themselves at
    any location of their organisation, and the system (no user) is not limited here.
    """
    user = acting_user(actor)
    if user is None or role_of(user) == Role.PATIENT:
        return
    if not may_use_location(user, location):
        raise BookingRefused(
            "you do not work at this location, so you cannot book there",
            code="not_your_location",
            field="location",
        )


def booking_gate(
    patient: Patient,
    first_day: date,
    *,
    areas: Sequence[str] = (),
    field: str = "areas",
    day_field: str = "first_session",
) -> Screening:
    """The patient's latest screening if it allows booking from ``first_day`` (and covers
    ``areas``, see :func:`areas_screened_check`); else refuse. A refusal of the day names
    ``day_field`` (a course's first session; a single visit's own start), one of the areas
    ``field``.

    ``clinician_review`` that is still pending raises with code ``review_pending`` so the
    caller can create an appointment request instead.
    """
    latest = patient.screenings.newest_first().first()
    if latest is None:
        raise BookingRefused("the patient has not been screened", code="not_screened")
    screening_clears_check(latest, first_day, areas=areas, field=field, day_field=day_field)
    return latest


def screening_clears_check(
    screening: Screening,
    first_day: date,
    *,
    areas: Sequence[str] = (),
    field: str = "areas",
    day_field: str = "first_session",
) -> None:
    """:func:`booking_gate`'s verdicts on a screening already read (the patient's newest):
    refuse treatment from ``first_day`` of ``areas`` unless it clears it."""
    verdict_check(screening, first_day, day_field=day_field)
    planned = date.fromisoformat(screening.intake["planned_date"])
    if first_day < planned:
        # Waiting periods and medicine pauses were counted to the day the answers named: a
        # peel or a last dose that ends its wait by then may not have by an earlier day.
        raise BookingRefused(
            f"the answers were screened for treatment from {planned.isoformat()}; "
            "answer the questions again to start earlier",
            code="deferred",
            field=day_field,
        )
    areas_screened_check(screening, areas, field=field)


def booked_visit_cleared_check(screening: Screening, appointment: Appointment) -> None:
    """Refuse a treatment booked earlier that the patient's newest screening now stops on
    its day: not eligible, deferred past it, waiting for or declined by a provider. When
    the newest answers were about the visit's own skin, also a day before the one they
    were screened for. Answers about other skin (a neck course planned for June, in the
    middle of a face course) say nothing about this skin's waits, so they neither cover
    nor stop its areas: the visit stands on the screening it was booked on."""
    day = appointment.starts_at.astimezone(ZoneInfo(appointment.location.timezone)).date()
    # A course's own areas (what its plan treats), else the service's.
    session = appointment.course_session
    areas = session.course.areas if session is not None else appointment.service.areas
    if _uncovered(screening, areas):
        verdict_check(screening, day, day_field="starts_at")
    else:
        screening_clears_check(screening, day, areas=areas, day_field="starts_at")


def verdict_check(screening: Screening, first_day: date, *, day_field: str) -> None:
    """Refuse treatment from ``first_day`` unless the screening's verdict (and a provider's
    review of it, where one is needed) allows it."""
    if screening.verdict == Screening.Verdict.NOT_ELIGIBLE:
        raise BookingRefused("screening found the treatment unsuitable", code="not_eligible")
    if screening.verdict == Screening.Verdict.DEFERRED:
        if screening.deferred_until is None:
            raise BookingRefused(
                "treatment is deferred until a condition resolves; update the intake",
                code="deferred",
            )
        if first_day < screening.deferred_until:
            raise BookingRefused(
                f"treatment may start from {screening.deferred_until.isoformat()}",
                code="deferred",
                field=day_field,
            )
    if screening.verdict == Screening.Verdict.REVIEW:
        if screening.review == Screening.Review.DECLINED:
            raise BookingRefused("a provider declined the treatment", code="not_eligible")
        if screening.review != Screening.Review.APPROVED:
            raise BookingRefused(
                "a provider must review the screening first", code="review_pending"
            )


def areas_screened_check(screening: Screening, areas: Iterable[str], *, field: str) -> None:
    """Refuse treating an area the screening did not ask about.

    The intake names the areas to be treated, and the rules about skin (an infection, a
    rash, a recent procedure there) look only at those: a course of the neck booked on a
    screening of the face would never have been checked for a rash on the neck. An area
    inside a screened one (``face.periorbital`` in ``face``) is covered; the reverse is not.
    """
    uncovered = _uncovered(screening, areas)
    if uncovered:
        raise BookingRefused(
            f"the screening did not cover the {load_pack().areas[uncovered[0]].name.lower()}: "
            "answer the intake for that area first",
            code="area_not_screened",
            field=field,
        )


def _uncovered(screening: Screening, areas: Iterable[str]) -> list[str]:
    """The pack's areas among ``areas`` that the screening's intake did not ask about."""
    pack = load_pack()
    screened = set(screening.intake.get("treatment_areas") or ())
    return [
        area
        for area in areas
        if area in pack.areas and not screened.intersection(pack.area_lineage(area))
    ]


def concerns_allowed_check(indications: Sequence[str], policy: Policy | None) -> None:
    """Refuse a course for a concern the clinic's chosen positions rule out.

    Screening sees only the conditions an intake names, not the concern a course is booked
    for; under seed-004's literal scar position a course for acne scars is itself proof of
    scars, so the screening's verdict alone would let it through.
    """
    pack = load_pack()
    refused = pack.refused_concerns(indications, policy)
    if refused:
        code, reason = next(iter(refused.items()))
        name = pack.indications[code].name.lower()
        raise BookingRefused(
            f"this clinic does not treat {name}: {reason}",
            code="not_eligible",
            field="indications",
        )


def spaced_window_check(
    calendar: LocationCalendar, first: date, last: date, *, what: str, field: str | None
) -> None:
    """Refuse placing ``what`` (a course's first session, a replacement) when no day from
    ``first`` to ``last`` is far enough from the patient's other treatments of the same
    skin, naming the first day that is: a clear answer where the search would only find no
    slot (``BookingRefused`` naming ``field``)."""
    if not calendar.spacing or not all(
        day_blocked(calendar.spacing, first + timedelta(days=n), calendar.zone)
        for n in range((last - first).days + 1)
    ):
        return
    start = first_unblocked(calendar.spacing, first, calendar.zone)
    raise BookingRefused(
        "the patient has another treatment of the same skin too close to those days; "
        f"treatments of one area need at least {load_pack().treatment_gap_days} days between "
        f"them, so {what} can be on {start.isoformat()} at the earliest",
        code=TOO_SOON,
        field=field,
    )


def visit_gate(
    *,
    patient: Patient,
    service: Service,
    location: Location,
    starts_at: datetime,
    field: str,
    day_field: str,
) -> None:
    """Screen a single visit of ``service`` at ``starts_at`` (the location's own day): a
    treatment must pass :func:`booking_gate`, a consultation need not, since it is what the
    clinic offers a patient it has not cleared (or not screened yet). A refusal of the
    service's areas names ``field``, one of the day ``day_field``."""
    if service.kind != Service.Kind.TREATMENT:
        return
    day = starts_at.astimezone(ZoneInfo(location.timezone)).date()
    booking_gate(patient, day, areas=service.areas, field=field, day_field=day_field)


def treatment_cleared_check(appointment: Appointment) -> None:
    """Refuse starting a treatment the patient's newest screening does not clear on the
    visit's day (see :func:`booked_visit_cleared_check`): answers given since it was booked
    (a pregnancy, a new medicine, a recent peel, a review declined) count at the chair, not
    only when booking. A consultation is not a treatment and needs no screening, nor does a
    visit of a patient never screened here: booking needs a screening, so only an import
    from the clinic's old system brings one, agreed (and screened) there. The refusal names
    ``status``, the field the desk changed, and says what to do."""
    if appointment.service.kind != Service.Kind.TREATMENT:
        return
    screening = appointment.patient.screenings.newest_first().first()
    if screening is None:
        return
    try:
        booked_visit_cleared_check(screening, appointment)
    except BookingRefused as refused:
        raise BookingRefused(
            f"the treatment cannot start: {refused.message}",
            code=refused.code,
            field="status",
        ) from refused


def booking_gate_on(patient: Patient, day: date, *, field: str) -> Screening:
    """:func:`booking_gate` for a visit moved or booked again on ``day``: the same verdicts,
    with any refusal naming ``field`` (the request's own field, not a course's first day)."""
    try:
        return booking_gate(patient, day)
    except BookingRefused as refused:
        raise BookingRefused(refused.message, code=refused.code, field=field) from refused


def _conflict_from_race(
    resources: Sequence[str], start: datetime, end: datetime, session: int | None
) -> BookingConflict:
    """After the database refused an overlap, find and name what was taken."""
    taken = (
        Reservation.objects.filter(
            resource__in=resources,
            active=True,
            overlap_allowed=False,
            starts_at__lt=end,
            ends_at__gt=start,
            starts_at__gte=start - MAX_RESERVATION,
        )
        .order_by("starts_at")
        .first()
    )
    resource = taken.resource if taken else (resources[0] if resources else None)
    return BookingConflict(
        "the time was taken by another booking a moment ago",
        resource=resource,
        session=session,
        starts_at=start.isoformat(),
    )


def appointment_book(
    *,
    patient: Patient,
    service: Service,
    location: Location,
    provider: Provider,
    starts_at: datetime,
    actor: Actor = None,
    override_reason: str = "",
    now: datetime | None = None,
    confirm: bool = True,
    check_spacing: bool = True,
) -> Appointment:
    """Book one visit at ``starts_at``; raise BookingConflict if any phase's resource is taken.

    ``confirm=False`` (an import of visits the patient already knows about) queues the
    visit's reminders but no "your visit is booked" message. ``check_spacing=False`` (the
    same import: visits agreed in the clinic's old system keep their times) books a
    treatment even if it comes too soon after another of the same skin.

    With ``override_reason`` (staff only, checked by the caller) the visit may overlap existing
    bookings on purpose: its reservations are marked and the override is audited.

    The clinic's minimum notice is for patients booking themselves: staff who schedule may
    book any free time from now on (a walk-in, a gap filled by phone) without an override,
    which would also let the visit overlap another.
    """
    if timezone.is_naive(starts_at):
        raise BookingRefused(
            "starts_at must include a time zone", code="naive_datetime", field="starts_at"
        )
    account_open_check(patient)
    same_organization(patient, location, provider)
    staff_location_check(actor=actor, location=location)
    now = now or timezone.now()
    local_day = starts_at.astimezone(ZoneInfo(location.timezone)).date()
    location_open_check(location, local_day)
    override = bool(override_reason.strip())
    attempted: Slot | None = None
    try:
        with transaction.atomic():
            rules = booking_rules(location.organization_id)
            provider_treats_check(provider, service, rules)
            if service.kind == Service.Kind.TREATMENT:
                # Before any reservation is written (see patient_lock).
                patient_lock(patient.pk)
            calendar = location_calendar(
                location=location,
                service=service,
                first_day=local_day,
                last_day=local_day,
                provider_ids=[provider.pk],
                rules=rules,
            )
            slot = slot_at(
                calendar,
                starts_at,
                provider,
                rules=rules,
                now=now,
                ignore_notice=schedules(actor),
            )
            if slot is None and override:
                calendar = location_calendar(
                    location=location,
                    service=service,
                    first_day=local_day,
                    last_day=local_day,
                    provider_ids=[provider.pk],
                    include_bookings=False,
                    rules=rules,
                )
                slot = slot_at(
                    calendar, starts_at, provider, rules=rules, now=now, ignore_notice=True
                )
            if slot is None:
                raise unavailable_conflict(calendar, starts_at, provider)
            attempted = slot
            appointment = Appointment.objects.create(
                patient=patient,
                service=service,
                location=location,
                provider=provider,
                starts_at=slot.start,
                ends_at=slot.end,
                booked_by=acting_user(actor),
                override_reason=override_reason if override else "",
            )
            reservations_write(appointment, slot, calendar.phases, overlap_allowed=override)
            if service.kind == Service.Kind.TREATMENT and check_spacing and not override:
                # After the write, so that a time already taken (by this patient too) is
                # answered as taken; a refusal here rolls the visit back. A staff override
                # may also treat sooner, on purpose and audited.
                treatment_spacing_check(
                    patient_id=patient.pk,
                    areas=service.areas,
                    starts_at=slot.start,
                    zone=location.timezone,
                    excluding_appointment=appointment.pk,
                )
            audit_record(
                actor=actor,
                action="appointment_book",
                object_type="patient",
                object_id=patient.pk,
                details={"appointment": appointment.pk, "starts_at": slot.start.isoformat()},
            )
            if override:
                audit_record(
                    actor=actor,
                    action="booking_override",
                    object_type="appointment",
                    object_id=appointment.pk,
                    reason=override_reason,
                    # Named, so that the override is in the patient's access log too.
                    details={"starts_at": slot.start.isoformat(), "patient": patient.pk},
                )
            if confirm:
                events.visit_booked(appointment, now=now, staff_caused=not is_patient(actor))
            else:
                events.visit_schedule(appointment, now=now)
            return appointment
    except (IntegrityError, OperationalError) as error:
        if isinstance(error, OperationalError) and not lost_race(error):
            raise
        if attempted is None:
            raise
        # Name the resource that was taken among those this visit tried to hold.
        held = sorted({rid for needs in attempted.assignment.values() for rid in needs.values()})
        raise _conflict_from_race(held, attempted.start, attempted.end, None) from error


@dataclass(frozen=True)
class CourseProposal:
    """A course plan and the slots found for every session (not yet booked)."""

    plan: CoursePlan
    series: SeriesResult
    calendar: LocationCalendar
    rules: BookingRules


def course_propose(
    *,
    patient: Patient,
    location: Location,
    service: Service,
    indications: Sequence[str],
    first_session: date,
    areas: Sequence[str] | None = None,
    preferences: Preferences | None = None,
    now: datetime | None = None,
    policy: Policy | None = None,
    actor: Actor = None,
) -> CourseProposal:
    """Plan the course and search slots for all of its sessions at once (no writes).

    ``actor`` is who asks (staff see only the diaries of the locations they work at).
    ``policy`` overrides the clinic's stored choices of protocol (say, the six-session
    acne-scar protocol); without it the clinic's policy applies, or the pack's defaults.
    """
    preferences = preferences or Preferences()
    now = now or timezone.now()
    location_open_check(location, first_session)
    if service.kind != Service.Kind.TREATMENT:
        raise BookingRefused(
            f"a course's sessions are treatments; {service.name} is not one",
            code="not_a_treatment",
            field="service",
        )
    preferred = (
        Provider.objects.filter(pk=preferences.provider_id, active=True).first()
        if preferences.provider_id is not None
        else None
    )
    if preferences.provider_id is not None and preferred is None:
        # Else the search would prefer nobody, and a booked course would keep a dangling id.
        raise BookingRefused(
            "no active provider has this id",
            code="unknown_provider",
            field="preferences.provider_id",
        )
    account_open_check(patient)
    same_organization(patient, location, preferred, provider_field="preferences.provider_id")
    staff_location_check(actor=actor, location=location)
    rules = booking_rules(location.organization_id)
    concerns_allowed_check(indications, policy or rules.pack_policy)
    plan = plan_course(
        pack=load_pack(),
        indications=indications,
        first_session=first_session,
        fitzpatrick=patient.fitzpatrick_type,
        areas=areas,
        as_of=_local_today(location, now),
        policy=policy or rules.pack_policy,
    )
    # The first session may fall on any day of the week from the requested day (the clinic
    # may be shut or full that day); later windows re-derive from the days really chosen.
    opening = plan.sessions[0]
    sessions = (
        replace(opening, latest=opening.earliest + timedelta(days=FIRST_SESSION_FLEX_DAYS)),
        *plan.sessions[1:],
    )
    not_before, not_after = rules.window(now)
    gap = (plan.gap_days[0], plan.gap_days[2])

    def search(follow_plan_windows: bool) -> tuple[LocationCalendar, SeriesResult]:
        days = search_days(sessions=sessions, gap_days=gap, follow_plan_windows=follow_plan_windows)
        calendar = location_calendar(
            location=location,
            service=service,
            first_day=days[0][0],
            last_day=days[-1][1],
            only_days=days,
            patient_id=patient.pk,
            rules=rules,
            areas=list(plan.depth_mm),
        )
        series = search_series(
            sessions=sessions,
            follow_plan_windows=follow_plan_windows,
            gap_days=gap,
            phases=calendar.phases,
            resources=list(calendar.resources),
            zone=calendar.zone,
            grid_minutes=rules.grid_minutes,
            not_before=not_before,
            not_after=not_after,
            preferred_provider=(
                f"provider:{preferences.provider_id}" if preferences.provider_id else None
            ),
            preferred_weekdays=preferences.weekdays,
            preferred_times=preferences.times,
            patient_busy=calendar.patient_blocked,
        )
        return calendar, series

    # First inside the plan's own windows (about a third of the days the full search reads).
    # A course found there with one provider throughout (the preferred one, if asked for)
    # is kept: the full search could only beat it by putting a session more than a week
    # from its target to win a preferred weekday or time, which a two-week window offers
    # twice unless the diary is full. Otherwise the full search, each session counted from
    # the day the one before it falls on.
    calendar, series = search(follow_plan_windows=True)
    spaced_window_check(
        calendar,
        opening.earliest,
        opening.earliest + timedelta(days=FIRST_SESSION_FLEX_DAYS),
        what="the course's first session",
        field="first_session",
    )
    score = series.score
    if not (
        series.ok and score and score.provider_changes == 0 and not score.off_preferred_provider
    ):
        calendar, series = search(follow_plan_windows=False)
    return CourseProposal(plan=plan, series=series, calendar=calendar, rules=rules)


@dataclass(frozen=True)
class BookedCourse:
    """A course just booked, with the sessions and visits the booking wrote (in session
    order), so that the caller can answer without reading them back."""

    course: Course
    sessions: tuple[CourseSession, ...]
    visits: tuple[Appointment, ...]


def course_book(
    *,
    patient: Patient,
    location: Location,
    service: Service,
    indications: Sequence[str],
    first_session: date,
    areas: Sequence[str] | None = None,
    preferences: Preferences | None = None,
    actor: Actor = None,
    now: datetime | None = None,
    policy: Policy | None = None,
) -> Course:
    """Book every session of a course or none (see :func:`course_booking`)."""
    return course_booking(
        patient=patient,
        location=location,
        service=service,
        indications=indications,
        first_session=first_session,
        areas=areas,
        preferences=preferences,
        actor=actor,
        now=now,
        policy=policy,
    ).course


def course_booking(
    *,
    patient: Patient,
    location: Location,
    service: Service,
    indications: Sequence[str],
    first_session: date,
    areas: Sequence[str] | None = None,
    preferences: Preferences | None = None,
    actor: Actor = None,
    now: datetime | None = None,
    policy: Policy | None = None,
) -> BookedCourse:
    """Book every session of a course or none (BookingConflict names the failing session);
    the course with the sessions and visits written.

    A transaction that loses a race to a concurrent booking (the exclusion constraint, a
    deadlock between two courses inserting overlapping sessions in opposite order, or a
    staff override committed after the search read the diary) is run again, so it searches
    the diary as it now stands; after a few losses it answers 409.
    """
    screening = booking_gate(patient, first_session)
    for attempt in range(1, RACE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _course_book_once(
                    patient=patient,
                    location=location,
                    service=service,
                    indications=indications,
                    first_session=first_session,
                    areas=areas,
                    preferences=preferences,
                    actor=actor,
                    now=now,
                    screening=screening,
                    policy=policy,
                )
        except TakenByOverride:
            # The next search reads the diary with the override in it.
            if attempt == RACE_ATTEMPTS:
                raise
        except (IntegrityError, OperationalError) as error:
            if isinstance(error, OperationalError) and not lost_race(error):
                raise
            if attempt == RACE_ATTEMPTS:
                raise BookingConflict(
                    "other bookings took the course's times a moment ago; search again"
                ) from error
    raise AssertionError("unreachable")  # pragma: no cover


def _course_book_once(
    *,
    patient: Patient,
    location: Location,
    service: Service,
    indications: Sequence[str],
    first_session: date,
    areas: Sequence[str] | None,
    preferences: Preferences | None,
    actor: Actor,
    now: datetime | None,
    screening: Screening,
    policy: Policy | None,
) -> BookedCourse:
    """One attempt at booking a course, inside the caller's transaction."""
    proposal = course_propose(
        patient=patient,
        location=location,
        service=service,
        indications=indications,
        first_session=first_session,
        areas=areas,
        preferences=preferences,
        now=now,
        policy=policy,
        actor=actor,
    )
    series = proposal.series
    if not series.ok:
        raise BookingConflict(
            series.reason or "no slots for the whole course", session=series.failed_session
        )
    plan = proposal.plan
    # The areas really planned (the concern's default when none were asked for).
    areas_screened_check(screening, list(plan.depth_mm), field="areas")
    course = Course.objects.create(
        patient=patient,
        location=location,
        service=service,
        screening=screening,
        preferred_provider_id=(preferences.provider_id if preferences else None),
        indications=list(plan.indications),
        protocols=list(plan.protocols),
        areas=list(plan.depth_mm),
        fitzpatrick_type=patient.fitzpatrick_type,
        sessions_total=plan.sessions_total,
        gap_min_days=plan.gap_days[0],
        gap_target_days=plan.gap_days[1],
        gap_max_days=plan.gap_days[2],
        maintenance_days=plan.maintenance.every_days_min,
    )
    chosen = dict(series.choices)
    # Sessions, then visits, then all their reservations: three inserts for the whole course.
    sessions = CourseSession.objects.bulk_create(
        [
            CourseSession(
                course=course,
                number=planned.number,
                earliest=planned.earliest,
                target=planned.target,
                latest=planned.latest,
                status=CourseSession.Status.BOOKED,
            )
            for planned in _windows_from_choices(proposal)
        ]
    )
    booked_by = acting_user(actor)
    visits = Appointment.objects.bulk_create(
        [
            Appointment(
                patient=patient,
                service=service,
                location=location,
                provider_id=provider_of(chosen[session.number]),
                course_session=session,
                starts_at=chosen[session.number].start,
                ends_at=chosen[session.number].end,
                booked_by=booked_by,
            )
            for session in sessions
        ]
    )
    reservations_insert(
        [
            row
            for session, visit in zip(sessions, visits, strict=True)
            for row in reservation_rows(visit, chosen[session.number], proposal.calendar.phases)
        ]
    )
    audit_record(
        actor=actor,
        action="course_book",
        object_type="patient",
        object_id=patient.pk,
        details={"course": course.pk, "sessions": len(chosen)},
    )
    # A course that waited for a provider's review is this one: its request is done.
    AppointmentRequest.objects.filter(
        patient=patient,
        location=location,
        reason="clinician_review",
        status__in=REQUESTS_WAITING,
    ).update(
        status=AppointmentRequest.Status.BOOKED,
        decided_at=now or timezone.now(),
        decision_reason=f"course {course.pk} booked",
    )
    events.course_booked(
        course,
        now=now,
        visits=visits,
        staff_caused=not is_patient(actor),
        # Read with the booking rules, in this transaction: the clinic's policy once.
        rules=message_rules_of(proposal.rules),
    )
    return BookedCourse(course=course, sessions=tuple(sessions), visits=tuple(visits))


def _windows_from_choices(proposal: CourseProposal) -> list[PlannedSession]:
    """Each session's window counted from the day the session before it was booked on.

    That is what the patient is shown and what a later re-plan starts from.
    """
    plan, zone = proposal.plan, ZoneInfo(proposal.calendar.zone)
    chosen = dict(proposal.series.choices)
    opening = plan.sessions[0]
    windows = [replace(opening, latest=opening.earliest + timedelta(days=FIRST_SESSION_FLEX_DAYS))]
    gap = Gap(min=plan.gap_days[0], target=plan.gap_days[1], max=plan.gap_days[2])
    for planned in plan.sessions[1:]:
        previous_day = chosen[planned.number - 1].start.astimezone(zone).date()
        windows += chain_sessions(
            start_number=planned.number, count=1, anchor=previous_day, gap=gap, as_of=None
        )
    return windows


def appointment_request_create(
    *,
    patient: Patient,
    location: Location,
    service: Service,
    reason: str,
    payload: dict[str, object],
    provider: Provider | None = None,
) -> AppointmentRequest:
    """Record a booking that needs a decision (e.g. a screening waiting for review).

    A course asked for again while the same one still waits for a provider's review (a
    retried request, a second try with other dates) updates the waiting request with what
    is asked now, so the desk's list has the patient once."""
    account_open_check(patient)
    same_organization(patient, location, provider)
    screening = patient.screenings.newest_first().first()
    with transaction.atomic():
        waiting = None
        if reason == "clinician_review":
            # Only a review is merged, so only it waits on the patient's lock: of two asks
            # at once, the second finds the first's request.
            patient_lock(patient.pk)
            waiting = (
                AppointmentRequest.objects.filter(
                    patient=patient,
                    location=location,
                    service=service,
                    reason=reason,
                    status=AppointmentRequest.Status.OPEN,
                )
                .order_by("pk")
                .first()
            )
        if waiting is not None:
            waiting.provider, waiting.screening, waiting.payload = provider, screening, payload
            waiting.save(update_fields=["provider", "screening", "payload"])
            return waiting
        return AppointmentRequest.objects.create(
            patient=patient,
            location=location,
            service=service,
            provider=provider,
            screening=screening,
            reason=reason,
            payload=payload,
        )


#: Requests the desk still has to act on: waiting for a decision, or approved and so ready
#: to book (a provider's approval of the screening approves them).
REQUESTS_WAITING = (AppointmentRequest.Status.OPEN, AppointmentRequest.Status.APPROVED)

#: The longest reason kept for closing a request by hand.
CLOSE_REASON_MAX = 300


def appointment_request_close(
    *, request: AppointmentRequest, actor: Actor, reason: str
) -> AppointmentRequest:
    """The desk closes a request it has dealt with some other way (the patient rang back,
    the visits were moved by phone, nobody can be reached): declined, with who and why, and
    audited. Refused without a reason, or once the request is closed already."""
    if request.reason == "rehoming":
        # Its patient was told the visit cannot go ahead and its reminders were withdrawn:
        # it closes itself once the visit is moved, cancelled, missed or checked in, which
        # is what tells the patient again.
        raise InputError(
            "request", "a re-homing request closes itself once its visit is moved or cancelled"
        )
    reason = reason.strip()
    if not reason:
        raise InputError("reason", "say why the request is closed")
    if len(reason) > CLOSE_REASON_MAX:
        raise InputError("reason", f"keep the reason to {CLOSE_REASON_MAX} characters")
    decided = {
        "status": AppointmentRequest.Status.DECLINED,
        "decided_by": acting_user(actor),
        "decided_at": timezone.now(),
        "decision_reason": reason,
    }
    with transaction.atomic():
        # Only while waiting: two people closing it, or the system closing it meanwhile,
        # leave one decision, not the last one written.
        if not AppointmentRequest.objects.filter(pk=request.pk, status__in=REQUESTS_WAITING).update(
            **decided
        ):
            raise InputError("request", "this request was closed a moment ago")
        for name, value in decided.items():
            setattr(request, name, value)
        audit_record(
            actor=actor,
            action="appointment_request_close",
            object_type="patient",
            object_id=request.patient_id,
            reason=reason,
            details={"request": request.pk, "reason_code": request.reason},
        )
    return request


def rehoming_requests_close(
    *,
    appointment_ids: Collection[int],
    status: str,
    why: str,
    now: datetime | None = None,
) -> int:
    """Close the desk's open requests to re-home these visits (left where they were by a
    closure or a provider's move): each has been dealt with some other way, moved by the
    desk, the patient or a later re-homing, cancelled, missed or gone ahead, so the desk's
    list must not send anyone to re-home it again. ``status`` and ``why`` say how; the
    number closed. One statement: a caller with many visits passes them in batches small
    enough for the database's limit on parameters."""
    return AppointmentRequest.objects.filter(
        reason="rehoming",
        status=AppointmentRequest.Status.OPEN,
        payload__appointment__in=list(appointment_ids),
    ).update(status=status, decided_at=now or timezone.now(), decision_reason=why)


def appointment_cancel(*, appointment: Appointment, actor: Actor, reason: str = "") -> Appointment:
    """Cancel a visit and free its resources; its course session becomes cancelled."""
    return appointment_set_status(
        appointment=appointment, status=Appointment.Status.CANCELLED, actor=actor, reason=reason
    )


#: Allowed status changes; anything else is refused.
TRANSITIONS: dict[str, set[str]] = {
    "requested": {"booked", "cancelled", "entered_in_error"},
    "booked": {"checked_in", "cancelled", "no_show", "entered_in_error"},
    "checked_in": {"in_progress", "cancelled", "no_show", "entered_in_error"},
    "in_progress": {"completed", "entered_in_error"},
    "completed": {"entered_in_error"},
    "cancelled": set(),
    "no_show": {"entered_in_error"},
    "entered_in_error": set(),
}


#: Statuses that record what happened on the visit's day, so are refused before it.
ON_THE_DAY = frozenset({"checked_in", "no_show"})


#: The course session's status after its visit takes each of these statuses.
SESSION_AFTER = {
    "completed": "done",
    "no_show": "missed",
    "cancelled": "cancelled",
    # The visit never was: the session waits to be booked again, unless another of its
    # visits (a replacement after a no-show) stands.
    "entered_in_error": "planned",
}


def _session_follows(appointment: Appointment, status: str) -> None:
    session = appointment.course_session
    if session is None or status not in SESSION_AFTER:
        return
    if status == Appointment.Status.ENTERED_IN_ERROR:
        others = session.appointments.exclude(pk=appointment.pk)
        if others.filter(status__in=Appointment.HOLDING).exists():
            return
    session.status = SESSION_AFTER[status]
    session.save(update_fields=["status"])


#: What a patient may still change of their own: a visit still to come, not yet begun.
PATIENT_CHANGEABLE = ("requested", "booked")


def patient_change_check(*, appointment: Appointment, actor: Actor, now: datetime) -> None:
    """Refuse a patient's change to a visit that has begun, passed or been checked in.

    Staff record what happened to such a visit (a no-show, a check-in); a patient cancelling
    or moving it would erase that and free the room while they may be in it. Staff and the
    system are not limited here.
    """
    if is_patient(actor):
        _refuse_begun(appointment, now)


def _refuse_begun(appointment: Appointment, now: datetime) -> None:
    if appointment.status not in PATIENT_CHANGEABLE or appointment.starts_at <= now:
        raise BookingRefused(
            "this visit has begun or is over; the clinic can change it for you",
            code="visit_started",
            field="appointment",
        )


def schedules(actor: Actor) -> bool:
    """Whether ``actor`` is a member of staff who books and moves visits (not a patient,
    not the system)."""
    user = acting_user(actor)
    return user is not None and may(user, Can.SCHEDULE)


def is_patient(actor: Actor) -> bool:
    """Whether ``actor`` is a patient acting for themselves (not staff, not the system)."""
    user = acting_user(actor)
    return user is not None and role_of(user) == Role.PATIENT


def _ready_to_start_check(appointment: Appointment, actor: Actor) -> None:
    """Refuse starting the procedure without the current consent, or a treatment the
    newest screening stops: why it stops it is the screening's, told to those who read
    clinical notes (and the system); anyone else reads that a provider can see why."""
    if not consent_is_current(
        appointment.patient, _local_today(appointment.location, timezone.now())
    ):
        raise BookingRefused(
            "the patient has not signed the current consent", code="consent_missing", field="status"
        )
    try:
        treatment_cleared_check(appointment)
    except BookingRefused as refused:
        user = acting_user(actor)
        if user is None or may(user, Can.CLINICAL_READ):
            raise
        raise BookingRefused(
            "the treatment cannot start: the patient's newest answers stop it; "
            "a provider can see why",
            code=refused.code,
            field="status",
        ) from refused


def appointment_set_status(
    *,
    appointment: Appointment,
    status: str,
    actor: Actor,
    reason: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Move an appointment along its lifecycle; releasing statuses free the resources.

    A patient may only cancel, and only a visit still to come (:func:`patient_change_check`).
    """
    if status not in TRANSITIONS.get(appointment.status, set()):
        raise BookingRefused(
            f"cannot change a {appointment.status} appointment to {status}",
            code="invalid_transition",
            field="status",
        )
    by_patient = is_patient(actor)  # one role lookup: this runs for every day-sheet click
    if by_patient:
        _refuse_begun(appointment, now or timezone.now())
        if status != Appointment.Status.CANCELLED:
            raise BookingRefused(
                f"only the clinic may mark a visit {status}", code="staff_only", field="status"
            )
    if status in ON_THE_DAY:
        today = _local_today(appointment.location, now or timezone.now())
        day = appointment.starts_at.astimezone(ZoneInfo(appointment.location.timezone)).date()
        if today < day:
            # A patient cannot arrive, or fail to, before the day: a click on the wrong
            # row would otherwise release next month's room or start the missed-visit path.
            raise BookingRefused(
                f"status {status} can be set on the visit's day ({day.isoformat()}) or "
                "later, not before",
                code="too_early",
                field="status",
            )
    if status == Appointment.Status.NO_SHOW and appointment.status in Appointment.TO_COME:
        start = appointment.starts_at
        if (now or timezone.now()) < start:
            # Nobody has failed to come before the time they were booked for: a click on the
            # wrong row at nine would release a four o'clock room and tell the patient they
            # missed it. (A patient checked in who leaves may be marked so at any time.)
            local_start = start.astimezone(ZoneInfo(appointment.location.timezone))
            raise BookingRefused(
                f"a visit not checked in can be marked a no-show from its start "
                f"({local_start:%H:%M}), not before",
                code="too_early",
                field="status",
            )
    with transaction.atomic():
        # The patient first, then the visit, as every writer of a patient's visits locks
        # them (a move, a replacement, a booking): the follow-up of their screening below
        # takes this lock, and taking it after the visit's row could deadlock with a move.
        patient_lock(appointment.patient_id)
        if status == Appointment.Status.IN_PROGRESS:
            # Under the lock: answers recorded a moment ago (which take it too) are read.
            _ready_to_start_check(appointment, actor)
        # Only from the status checked above: two people changing one visit at once (a
        # check-in and a no-show) must not both win, or the visit could end checked in with
        # its room already released.
        changed = Appointment.objects.filter(pk=appointment.pk, status=appointment.status).update(
            status=status, updated_at=timezone.now()
        )
        if not changed:
            raise BookingRefused(
                "someone changed this visit a moment ago; look at it again",
                code="changed_meanwhile",
                field="status",
            )
        was_to_come = appointment.status in Appointment.TO_COME
        appointment.status = status
        if was_to_come:
            # Once a visit is no longer to come, a request to re-home it is moot (one
            # statement per visit: only its first step off the diary).
            rehoming_requests_close(
                appointment_ids=[appointment.pk],
                status=(
                    AppointmentRequest.Status.BOOKED
                    if status == Appointment.Status.CHECKED_IN
                    else AppointmentRequest.Status.DECLINED
                ),
                why=f"the visit is {status}",
                now=now,
            )
            # Imported here: the follow-up reads the screening checks of this module.
            from microneedling.scheduling.screening_followup import (  # noqa: PLC0415
                screening_followup_after_visit,
            )

            screening_followup_after_visit(appointment=appointment, now=now or timezone.now())
        if status not in Appointment.HOLDING:
            appointment.reservations.update(active=False)
        _session_follows(appointment, status)
        audit_record(
            actor=actor,
            action=f"appointment_{status}",
            object_type="appointment",
            object_id=appointment.pk,
            reason=reason,
            # Named, so that the change is in the patient's access log and audit search.
            details={"patient": appointment.patient_id},
        )
        if status in (Appointment.Status.CANCELLED, Appointment.Status.NO_SHOW):
            events.visit_cancelled(appointment, staff_caused=not by_patient)
        elif status == Appointment.Status.ENTERED_IN_ERROR:
            events.visit_voided(appointment)
    return appointment
