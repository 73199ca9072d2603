"""The one place that decides who may do what, to whose records.

Two questions, always in this order:

1. **What kind of thing** may this person do? A role grants *capabilities* (see ``GRANTS``):
   front desk schedules and sees contact details but never clinical notes; providers see and
   write the clinical record; clinic admins run their locations; chain operators run the
   chain; auditors read the audit trail and nothing else.
2. **Whose records**? Patients see their own. Staff see the patients of their organisation
   who have a visit at one of their locations, or no visit anywhere yet (a new patient is
   the whole chain's to screen and book). Chain operators see the whole organisation. A
   member of staff outside that scope may open one patient's record in an emergency by
   giving a reason (break-glass): the grant is short, personal and audited.

Views, the JSON API and FHIR call ``may``/``patients_visible``/``may_see_patient``; nothing
else reads ``is_staff`` to decide access. Superusers are the system's administrators: they
hold every capability everywhere.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from microneedling.accounts.models import BreakGlassGrant, StaffMember
from microneedling.directory.models import Location, Provider
from microneedling.directory.selectors import schedules_in_force
from microneedling.patients.models import Patient

#: A Django user, anonymous or not (``request.user``); typed loosely because the abstract
#: user types lack the fields (``is_superuser``) every concrete user here has.
User = Any


class Role(StrEnum):
    """Who someone is to the clinic, as far as access goes."""

    ANONYMOUS = "anonymous"
    PATIENT = "patient"
    FRONT_DESK = "front_desk"
    PROVIDER = "provider"
    CLINIC_ADMIN = "clinic_admin"
    CHAIN_OPERATOR = "chain_operator"
    AUDITOR = "auditor"
    SUPERUSER = "superuser"
    #: Signed in, but neither a patient nor a member of staff with a role: may do nothing.
    NONE = "none"


class Can(StrEnum):
    """Capabilities a role grants."""

    DESK = "desk"  # open the desk at all
    SCHEDULE = "schedule"  # day sheets, visits' times, booking, moving, statuses
    CONTACT = "contact"  # names, phone numbers, e-mail, messages
    OVERRIDE = "override"  # deliberately double-book, with a reason
    CLINICAL_READ = "clinical_read"  # charts, photos, screenings, skin reports, scores
    CLINICAL_WRITE = "clinical_write"  # write and sign charts, decide screenings, score
    CLOSURES = "closures"  # close locations, move providers, re-home visits
    BULK_EXPORT = "bulk_export"  # the whole clinic's data at once
    ADMIN_SITE = "admin_site"  # locations, hours, rooms, devices, providers, policy
    AUDIT = "audit"  # read the audit trail
    PEOPLE = "people"  # staff accounts and their roles
    BREAK_GLASS = "break_glass"  # open a record outside one's scope, with a reason


_STAFF = frozenset({Can.DESK, Can.SCHEDULE, Can.CONTACT})
GRANTS: dict[Role, frozenset[Can]] = {
    Role.ANONYMOUS: frozenset(),
    Role.NONE: frozenset(),
    Role.PATIENT: frozenset(),
    Role.FRONT_DESK: _STAFF | {Can.OVERRIDE},
    Role.PROVIDER: _STAFF | {Can.CLINICAL_READ, Can.CLINICAL_WRITE, Can.BREAK_GLASS},
    Role.CLINIC_ADMIN: _STAFF
    | {Can.OVERRIDE, Can.CLINICAL_READ, Can.CLOSURES, Can.ADMIN_SITE, Can.BREAK_GLASS},
    Role.CHAIN_OPERATOR: _STAFF
    | {Can.OVERRIDE, Can.CLOSURES, Can.BULK_EXPORT, Can.ADMIN_SITE, Can.AUDIT, Can.PEOPLE},
    Role.AUDITOR: frozenset({Can.AUDIT}),
    Role.SUPERUSER: frozenset(Can),
}

#: Roles that are staff (work at the desk or in the back office).
STAFF_ROLES = frozenset(
    {Role.FRONT_DESK, Role.PROVIDER, Role.CLINIC_ADMIN, Role.CHAIN_OPERATOR, Role.AUDITOR}
)


class AccessDenied(Exception):
    """The caller may not do this (views answer 403, or 404 where existence would leak)."""


#: A user's staff membership as ``_member`` reads it, named from a row that has the user
#: (``select_related`` on an API token, say), so that it comes in the same query.
MEMBER_RELATED = ("staff_member__organization", "staff_member__provider")


def member_read_with(user: User) -> None:
    """Keep the membership that was read along with ``user`` (see ``MEMBER_RELATED``) for
    the rest of the request, as ``_member`` would have read it."""
    try:
        member: StaffMember | None = user.staff_member
    except StaffMember.DoesNotExist:
        member = None
    user._staff_member_cache = member


def _member(user: User) -> StaffMember | None:
    if not getattr(user, "is_authenticated", False):
        return None
    # One look-up per request: the user object lives as long as the request does.
    if hasattr(user, "_staff_member_cache"):
        cached: StaffMember | None = user._staff_member_cache
        return cached
    member = (
        StaffMember.objects.select_related("organization", "provider")
        .filter(user_id=user.pk)
        .first()
    )
    user._staff_member_cache = member
    return member


def role_of(user: User) -> Role:
    """The role that decides what ``user`` may do."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Role.ANONYMOUS
    if not user.is_active:
        return Role.NONE
    if user.is_superuser:
        return Role.SUPERUSER
    member = _member(user)
    if member is not None:
        return Role(member.role)
    if Patient.objects.filter(user_id=user.pk).exists():
        return Role.PATIENT
    return Role.NONE


def may(user: User, capability: Can) -> bool:
    """Whether ``user``'s role grants ``capability`` (before any question of whose record)."""
    return capability in GRANTS[role_of(user)]


def is_staff(user: User) -> bool:
    """A member of staff who works with patients (any role with the desk)."""
    return may(user, Can.DESK)


def location_ids(user: User) -> set[int] | None:
    """The locations whose patients ``user`` serves; ``None`` means every location of their
    organisation (chain operators and superusers)."""
    role = role_of(user)
    if role in (Role.SUPERUSER, Role.CHAIN_OPERATOR):
        return None
    member = _member(user)
    if member is None:
        return set()
    ids = set(member.locations.values_list("pk", flat=True))
    if member.provider_id is not None:
        # Only hours still in force: a provider who moved away no longer works there.
        hours = schedules_in_force().filter(provider_id=member.provider_id)
        ids |= set(hours.values_list("location_id", flat=True))
    return ids


def organization_id(user: User) -> int | None:
    """The organisation a member of staff belongs to (``None``: every one, or none)."""
    member = _member(user)
    return member.organization_id if member is not None else None


def patients_visible(user: User) -> QuerySet[Patient]:
    """The patients whose records ``user`` may open (their own, for a patient)."""
    from microneedling.scheduling.models import Appointment  # noqa: PLC0415

    role = role_of(user)
    everyone = Patient.objects.all()
    if role == Role.SUPERUSER:
        return everyone
    if role == Role.PATIENT:
        return everyone.filter(user_id=user.pk)
    if not may(user, Can.DESK):
        return everyone.none()
    org = organization_id(user)
    if org is None:
        return everyone.none()
    rows = everyone.filter(organization_id=org)
    places = location_ids(user)
    if places is None:
        return rows
    visits = Appointment.objects.filter(patient_id=OuterRef("pk"))
    scoped = Q(Exists(visits.filter(location_id__in=places))) | ~Q(Exists(visits))
    grants = BreakGlassGrant.objects.filter(
        user_id=user.pk, patient_id=OuterRef("pk"), expires_at__gt=timezone.now()
    )
    scoped |= Q(Exists(grants))
    return rows.filter(scoped)


def _whole_organization(user: User) -> int | None:
    """The organisation of a chain operator, whose scope is all of it (every patient and
    location of theirs, see ``location_ids``); ``None`` for any other user."""
    if role_of(user) != Role.CHAIN_OPERATOR or not may(user, Can.DESK):
        return None
    return organization_id(user)


def may_see_patient(user: User, patient: Patient | int) -> bool:
    """Whether ``patient`` is within ``user``'s scope (see ``patients_visible``)."""
    if isinstance(patient, Patient):
        org = _whole_organization(user)
        if org is not None:
            # patients_visible is the organisation's patients: the record read says whose.
            return bool(patient.organization_id == org)
    patient_id = patient if isinstance(patient, int) else patient.pk
    return patients_visible(user).filter(pk=patient_id).exists()


def can_act_for(user: User, patient: Patient) -> bool:
    """The patient themselves, or staff who schedule for patients in their scope."""
    if role_of(user) == Role.PATIENT:
        return bool(patient.user_id == user.pk)
    return may(user, Can.SCHEDULE) and may_see_patient(user, patient)


def may_read_clinical(user: User, patient: Patient | int) -> bool:
    """Charts, photos, screenings and reports of ``patient``: providers and clinic admins
    within their scope, or the patient themselves."""
    patient_id = patient if isinstance(patient, int) else patient.pk
    if role_of(user) == Role.PATIENT:
        return Patient.objects.filter(pk=patient_id, user_id=user.pk).exists()
    return may(user, Can.CLINICAL_READ) and may_see_patient(user, patient_id)


def locations_usable(user: User) -> QuerySet[Location]:
    """The locations ``user`` works at or runs: every one of their organisation's for chain
    operators (never another organisation's), every location for superusers."""
    everywhere = Location.objects.all()
    if role_of(user) == Role.SUPERUSER:
        return everywhere
    org = organization_id(user)
    if org is None:
        return everywhere.none()
    places = location_ids(user)
    mine = everywhere.filter(organization_id=org)
    return mine if places is None else mine.filter(pk__in=places)


def providers_usable(user: User) -> QuerySet[Provider]:
    """The providers ``user`` schedules for: those with hours in force at a location ``user``
    may use (every one of the organisation's for chain operators, every provider for superusers)."""
    everyone = Provider.objects.all()
    if role_of(user) == Role.SUPERUSER:
        return everyone
    org = organization_id(user)
    if org is None:
        return everyone.none()
    mine = everyone.filter(organization_id=org)
    places = location_ids(user)
    if places is None:
        return mine
    hours = schedules_in_force().filter(provider_id=OuterRef("pk"), location_id__in=places)
    return mine.filter(Exists(hours))


def may_use_location(user: User, location: Location | int) -> bool:
    """Whether ``user`` works at (or runs) ``location`` (see ``locations_usable``)."""
    if isinstance(location, Location):
        org = _whole_organization(user)
        if org is not None:
            # locations_usable is the organisation's locations: the row read says whose.
            return bool(location.organization_id == org)
    location_id = location if isinstance(location, int) else location.pk
    return locations_usable(user).filter(pk=location_id).exists()


def require(condition: bool, what: str = "this") -> None:
    """Raise ``AccessDenied`` unless ``condition`` holds."""
    if not condition:
        raise AccessDenied(f"you may not open {what}")


#: What each capability opens in the admin site, as ``app_label`` or ``app_label.model``.
#: Clinical rows (charts, scores, signed consents) are not here: they are read through the
#: audited desk, and only superusers see them in the admin.
ADMIN_MODELS: dict[Can, frozenset[str]] = {
    # (Consent texts are one for the whole system: the superuser's, like clinical rows.)
    Can.ADMIN_SITE: frozenset({"directory"}),
    # Staff, their authenticators (a lost phone is replaced here), sign-in lock-outs and
    # API tokens (listed and revoked; issued by the command line).
    Can.PEOPLE: frozenset({"accounts.staffmember", "accounts.apitoken", "otp_totp", "axes"}),
}


def may_admin(user: User, app_label: str, model: str | None = None) -> bool:
    """Whether ``user`` may manage ``app_label`` (or one ``model`` of it) in the admin."""
    if role_of(user) == Role.SUPERUSER:
        return True
    opened = set().union(*(names for cap, names in ADMIN_MODELS.items() if may(user, cap)))
    if model is None:
        return any(name.split(".")[0] == app_label for name in opened)
    return app_label in opened or f"{app_label}.{model}" in opened
