"""Staff administration of the directory: locations and their hours, rooms, devices,
providers and where they work, services and their phases, and each clinic's policy."""

from __future__ import annotations

from datetime import time
from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from microneedling.accounts.admin_scope import OrganizationScoped
from microneedling.audit.services import audit_record
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import (
    CartridgeLot,
    ClinicPolicy,
    Device,
    Location,
    LocationClosure,
    OpeningHours,
    Organization,
    Provider,
    ProviderLeave,
    ProviderSchedule,
    Room,
    Service,
    ServicePhase,
)
from microneedling.directory.policy_form import (
    MESSAGE_FIELDS,
    NUMBER_FIELDS,
    ClinicPolicyFormBase,
    policy_form,
)
from microneedling.directory.selectors import (
    hours_of,
    leave_of,
    provider_stranded_visits,
    stranded_visits,
)


class OpeningHoursFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """A location's hours as edited together: new hours may not leave outside them a visit
    still to come that the old hours held (move it on the desk first, or change the hours
    after it)."""

    def clean(self) -> None:
        """Refuse the new hours if they would strand a booked visit."""
        super().clean()
        location = self.instance
        if any(self.errors) or location.pk is None:
            return
        new: dict[int, list[tuple[time, time]]] = {}
        for row in _kept_rows(self):
            new.setdefault(row["weekday"], []).append((row["opens"], row["closes"]))
        old: dict[int, list[tuple[time, time]]] = {}
        for stored in OpeningHours.objects.filter(location=location):
            old.setdefault(stored.weekday, []).append((stored.opens, stored.closes))
        stranded = stranded_visits(location, before=old, after=new)
        if stranded:
            raise ValidationError(
                f"{stranded} visit(s) still to come would fall outside these hours: move them "
                "first (on the desk), or change the hours once they have passed"
            )


class OpeningHoursInline(OrganizationScoped, admin.TabularInline[OpeningHours, Location]):
    model = OpeningHours
    extra = 0
    formset = OpeningHoursFormSet


class ClosureInline(OrganizationScoped, admin.TabularInline[LocationClosure, Location]):
    """Closures as recorded; a new one is made on the desk's re-homing page (or by
    ``microneedling close-location``), which also moves the visits booked in it."""

    model = LocationClosure
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Location | None = None) -> bool:
        """Not here: a closure made in a form would leave its visits where they are."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Location | None = None) -> bool:
        """Not here, for the same reason."""
        return False


class RoomInline(OrganizationScoped, admin.TabularInline[Room, Location]):
    model = Room
    extra = 0


class DeviceInline(OrganizationScoped, admin.TabularInline[Device, Location]):
    model = Device
    extra = 0


class LocationForm(ModelForm):  # type: ignore[type-arg]
    """A location's details. Its status and closing day are set by closing it through
    re-homing (the desk's page or ``microneedling close-location``), which moves its visits
    and tells the patients; set here they would strand every visit booked there. The one
    change allowed here is calling a closure off: back to open, with no closing day."""

    # No Meta: the admin gives the model and the fields (modelform_factory).

    #: What a closure called off in this form was (status and closing day), for the audit.
    called_off: dict[str, Any] | None = None

    def clean(self) -> dict[str, Any]:
        """Refuse a closure made here; allow one called off."""
        data = super().clean() or {}
        stored = self.instance
        if stored.pk is None:
            return data
        before = Location.objects.filter(pk=stored.pk).values("status", "closes_on").first()
        if before is None:
            return data
        after = {"status": data.get("status"), "closes_on": data.get("closes_on")}
        if after == before:
            return data
        reopened = after == {"status": Location.Status.OPEN, "closes_on": None}
        self.called_off = dict(before) if reopened else None  # for the audit event
        if not reopened:
            raise ValidationError(
                {
                    "status": "close a location through re-homing (the desk's page or "
                    "close-location), which moves its visits; here a closure can only be "
                    "called off: open, with no closing day"
                }
            )
        return data


@admin.register(Location)
class LocationAdmin(OrganizationScoped, admin.ModelAdmin[Location]):
    """Locations with their hours, closures, rooms and pens on one page."""

    form = LocationForm
    list_display = ("name", "city", "zip_code", "status", "closes_on", "successor")
    list_filter = ("status", ("organization", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "city", "zip_code")
    inlines = (OpeningHoursInline, ClosureInline, RoomInline, DeviceInline)

    def save_model(self, request: HttpRequest, obj: Location, form: Any, change: bool) -> None:
        """Save; a closure called off is audited, as the closure itself was."""
        before = form.called_off  # set by LocationForm.clean
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if before is not None:
                audit_record(
                    actor=request.user,
                    action="location_reopen",
                    object_type="location",
                    object_id=obj.pk,
                    details={
                        "status_was": before["status"],
                        "closes_on_was": str(before["closes_on"] or ""),
                    },
                )


def _kept_rows(formset: BaseInlineFormSet) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    """The rows an inline formset saves: each form's answers, bar the deleted and empty."""
    rows = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None) or {}
        if data and not data.get("DELETE"):
            rows.append(data)
    return rows


def _not_shown(formset: BaseInlineFormSet, stored: Any) -> Any:  # type: ignore[type-arg]
    """The stored rows the formset did not show (outside the user's admin scope)."""
    return stored.exclude(pk__in=formset.get_queryset().values("pk"))


def _strand_check(provider: Provider, stranded: int) -> None:
    if stranded:
        raise ValidationError(
            f"{stranded} visit(s) still to come with {provider.display_name} would no longer "
            "fall in their hours: move them first (re-homing or the desk), or change this once "
            "they have passed"
        )


class ScheduleFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """A provider's hours as edited together: they may not stop holding a booked visit."""

    def clean(self) -> None:
        """Refuse hours that would strand a visit still to come."""
        super().clean()
        provider = self.instance
        if any(self.errors) or provider.pk is None:
            return

        stored = ProviderSchedule.objects.filter(provider=provider)
        # Hours at a location this user does not run are not on the page (admin scope), so
        # not being sent back is no sign they were deleted: they stay as they are.
        after = hours_of(_not_shown(self, stored)) + [
            (
                row["location"].pk,
                row["weekday"],
                row["starts"],
                row["ends"],
                row["valid_from"],
                row.get("valid_until"),
            )
            for row in _kept_rows(self)
            if row.get("location") is not None
        ]
        before = hours_of(stored)
        _strand_check(provider, provider_stranded_visits(provider, hours=(before, after)))


class LeaveFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """A provider's leave as edited together: it may not fall on a booked visit."""

    def clean(self) -> None:
        """Refuse leave that would strand a visit still to come."""
        super().clean()
        provider = self.instance
        if any(self.errors) or provider.pk is None:
            return
        stored = ProviderLeave.objects.filter(provider=provider)
        after = leave_of(_not_shown(self, stored))
        after += [(row["starts_at"], row["ends_at"]) for row in _kept_rows(self)]
        before = leave_of(stored)
        _strand_check(provider, provider_stranded_visits(provider, leave=(before, after)))


class ScheduleInline(OrganizationScoped, admin.TabularInline[ProviderSchedule, Provider]):
    model = ProviderSchedule
    extra = 0
    formset = ScheduleFormSet


class LeaveInline(OrganizationScoped, admin.TabularInline[ProviderLeave, Provider]):
    model = ProviderLeave
    extra = 0
    formset = LeaveFormSet


@admin.register(Provider)
class ProviderAdmin(OrganizationScoped, admin.ModelAdmin[Provider]):
    """Providers with where and when they work, and their leave."""

    list_display = ("display_name", "role", "active")
    list_filter = ("role", "active")
    search_fields = ("display_name",)
    inlines = (ScheduleInline, LeaveInline)


class PhaseInline(OrganizationScoped, admin.TabularInline[ServicePhase, Service]):
    model = ServicePhase
    extra = 0


@admin.register(Service)
class ServiceAdmin(OrganizationScoped, admin.ModelAdmin[Service]):
    """Services and the phases each visit goes through."""

    list_display = ("name", "code", "kind", "active")
    inlines = (PhaseInline,)


@admin.register(Organization)
class OrganizationAdmin(OrganizationScoped, admin.ModelAdmin[Organization]):
    """The organisation itself (a chain operator sees only their own)."""


@admin.register(CartridgeLot)
class CartridgeLotAdmin(OrganizationScoped, admin.ModelAdmin[CartridgeLot]):
    """Needle cartridge lots per location, with their expiry."""


@admin.register(ClinicPolicy)
class ClinicPolicyAdmin(OrganizationScoped, admin.ModelAdmin[ClinicPolicy]):
    """The clinic's booking numbers and its choice on each question the sources answer
    differently; every save names a reason and is audited."""

    list_display = ("organization", "slot_grid_minutes", "min_notice_hours", "updated_at")

    def has_delete_permission(self, request: HttpRequest, obj: ClinicPolicy | None = None) -> bool:
        """Never: deleting the row would put the clinic back on the defaults with no reason
        and no audit event; a change back to a default is made, and audited, by editing."""
        return False

    def get_form(
        self,
        request: HttpRequest,
        obj: ClinicPolicy | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm[ClinicPolicy]]:
        kwargs["form"] = policy_form(load_pack())
        kwargs["fields"] = None  # the form class lists its own fields
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: ClinicPolicy | None = None) -> Any:
        form = policy_form(load_pack())
        positions = [n for n, (kind, _) in form.choice_fields.items() if kind == "positions"]
        protocols = [n for n, (kind, _) in form.choice_fields.items() if kind == "protocols"]
        return [
            (None, {"fields": (*NUMBER_FIELDS, "reason")}),
            ("Messages", {"fields": MESSAGE_FIELDS}),
            ("Where the sources differ", {"fields": positions}),
            ("Protocols", {"fields": protocols}),
        ]

    def save_model(
        self, request: HttpRequest, obj: ClinicPolicy, form: ModelForm[ClinicPolicy], change: bool
    ) -> None:
        if not isinstance(form, ClinicPolicyFormBase):  # get_form always builds one
            raise TypeError(form)
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_record(
                actor=request.user,
                action="clinic_policy_change" if change else "clinic_policy_create",
                object_type="organization",
                object_id=obj.organization_id,
                reason=form.cleaned_data["reason"],
                details={"changed": form.choices_changed()},
            )
        self._warn_of_visits_to_move(request, obj.organization_id)

    def _warn_of_visits_to_move(self, request: HttpRequest, organization_id: int) -> None:
        """Visits booked before a change of who may do the needling stay booked: say how
        many are now with a provider who may not, and where the desk sees them."""
        from django.contrib import messages  # noqa: PLC0415
        from django.utils import timezone  # noqa: PLC0415

        from microneedling.scheduling.selectors import (  # noqa: PLC0415 (an app above this one)
            visits_with_non_treating_providers,
        )

        visits = visits_with_non_treating_providers(organization_id, now=timezone.now())
        count = visits.count()
        if not count:
            return
        first = visits.first()
        assert first is not None  # noqa: S101 (counted)
        messages.warning(
            request,
            f"{count} treatment visit{'s' if count != 1 else ''} still to come "
            f"{'are' if count != 1 else 'is'} booked with a provider who may not do the "
            "needling under this position (the first at "
            f"{first.location.name} on {_local_day(first).isoformat()}); the day sheets "
            "flag them for the desk to move.",
        )


def _local_day(visit: Any) -> Any:
    """The day a visit falls on at its location."""
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    return visit.starts_at.astimezone(ZoneInfo(visit.location.timezone)).date()
