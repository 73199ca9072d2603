"""The admin site, kept to one's own organisation (superusers see every one)."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest

from microneedling.accounts.access import organization_id


def scoped(rows: QuerySet[Any], user: Any) -> QuerySet[Any]:
    """``rows`` limited to ``user``'s organisation, by whichever link the model has."""
    if user.is_superuser:
        return rows
    org = organization_id(user) or 0
    names = {f.name for f in rows.model._meta.get_fields()}
    if rows.model._meta.label == "directory.Organization":
        return rows.filter(pk=org)
    for path in ("organization", "location", "provider", "service"):
        if path in names:
            suffix = "" if path == "organization" else "__organization"
            return rows.filter(**{f"{path}{suffix}": org})
    return rows.none()  # a model with no tie to an organisation: superusers only


class OrganizationScoped:
    """Mixed into a ModelAdmin or an inline: lists, pages and every choice of a related
    row hold the user's own organisation's rows only."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        """Only the organisation's rows (other ids answer as missing)."""
        return scoped(super().get_queryset(request), request.user)  # type: ignore[misc]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """Choices of a related row: the organisation's only."""
        related: type[Model] = db_field.related_model
        if related._meta.app_label == "directory":
            kwargs["queryset"] = scoped(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """Many-to-many choices (a member of staff's locations): the organisation's only."""
        related: type[Model] = db_field.related_model
        if related._meta.app_label == "directory":
            kwargs["queryset"] = scoped(related._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
