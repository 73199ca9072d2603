"""The admin site, kept to one's own organisation (superusers see every one)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from microneedling.accounts.access import (
    location_ids,
    locations_usable,
    organization_id,
    providers_usable,
)


def accounts_of(org: int, *, unclaimed: bool = False) -> QuerySet[Any]:
    """The sign-in accounts an organisation's admin may pick: its own staff and, with
    ``unclaimed``, accounts that belong to no one yet (not a patient's, not staff
    anywhere); never a superuser's."""
    users = get_user_model()._default_manager
    picked = Q(staff_member__organization=org)
    if unclaimed:
        picked |= Q(staff_member__isnull=True, patient__isnull=True)
    return users.filter(picked, is_superuser=False)


def scoped(rows: QuerySet[Any], user: Any) -> QuerySet[Any]:
    """``rows`` limited to ``user``'s organisation, by whichever link the model has: a
    directory link, the account a row belongs to (authenticators), or the username it
    names (sign-in lock-outs, which name patients' and staff's usernames alike)."""
    if user.is_superuser:
        return rows
    org = organization_id(user) or 0
    names = {f.name for f in rows.model._meta.get_fields()}
    if rows.model._meta.label == "directory.Organization":
        return rows.filter(pk=org)
    if location_ids(user) is not None:
        # A clinic admin runs some of the organisation's locations, not all of them: rows
        # of a location (or a provider) they do not use are no more theirs to change here
        # than on the desk.
        rows = _within_locations(rows, user, names)
    for path in ("organization", "location", "provider", "service"):
        if path in names:
            suffix = "" if path == "organization" else "__organization"
            return rows.filter(**{f"{path}{suffix}": org})
    if "user" in names:
        return rows.filter(user__staff_member__organization=org, user__is_superuser=False)
    if "username" in names:
        people = get_user_model()._default_manager.filter(
            Q(staff_member__organization=org) | Q(patient__organization=org),
            is_superuser=False,
        )
        return rows.filter(username__in=people.values("username"))
    return rows.none()  # a model with no tie to an organisation: superusers only


def _within_locations(rows: QuerySet[Any], user: Any, names: set[str]) -> QuerySet[Any]:
    """``rows`` limited to the locations ``user`` may use (``locations_usable``) and the
    providers who work there (``providers_usable``), by the model's own link to either."""
    label = rows.model._meta.label
    if label == "directory.Location":
        return rows.filter(pk__in=locations_usable(user).values("pk"))
    if label == "directory.Provider":
        return rows.filter(pk__in=providers_usable(user).values("pk"))
    # A row tied to a location (a provider's hours there included) follows the location.
    if "location" in names:
        return rows.filter(location__in=locations_usable(user).values("pk"))
    if "provider" in names:
        return rows.filter(provider__in=providers_usable(user).values("pk"))
    return rows


class OrganizationScoped:
    """Mixed into a ModelAdmin or an inline: lists, pages and every choice of a related
    row hold the user's own organisation's rows only."""

    #: Whether an account that is no one's yet may be picked (to make it staff). Elsewhere
    #: it may not: an authenticator planted on it would follow it into whichever
    #: organisation later takes it on.
    picks_unclaimed_accounts = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        """Only the organisation's rows (other ids answer as missing)."""
        return scoped(super().get_queryset(request), request.user)  # type: ignore[misc]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """Choices of a related row: the organisation's only."""
        related: type[Model] = db_field.related_model
        if related._meta.app_label == "directory":
            kwargs["queryset"] = scoped(related._default_manager.all(), request.user)
        if related is get_user_model() and not request.user.is_superuser:
            kwargs["queryset"] = accounts_of(
                organization_id(request.user) or 0, unclaimed=self.picks_unclaimed_accounts
            )
            # A list, not a raw id: the raw-id widget prints any account's name beside
            # whatever id is typed, even one outside the choices.
            kwargs["widget"] = forms.Select()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """Many-to-many choices (a member of staff's locations): the organisation's only."""
        related: type[Model] = db_field.related_model
        if related._meta.app_label == "directory":
            kwargs["queryset"] = scoped(related._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
