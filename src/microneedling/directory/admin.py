"""Staff administration of the directory: locations and their hours, rooms, devices,
providers and where they work, services and their phases."""

from __future__ import annotations

from django.contrib import admin

from microneedling.directory.models import (
    CartridgeLot,
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


class OpeningHoursInline(admin.TabularInline[OpeningHours, Location]):
    model = OpeningHours
    extra = 0


class ClosureInline(admin.TabularInline[LocationClosure, Location]):
    model = LocationClosure
    extra = 0


class RoomInline(admin.TabularInline[Room, Location]):
    model = Room
    extra = 0


class DeviceInline(admin.TabularInline[Device, Location]):
    model = Device
    extra = 0


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin[Location]):
    """Locations with their hours, closures, rooms and pens on one page."""

    list_display = ("name", "city", "zip_code", "status", "closes_on", "successor")
    list_filter = ("status", "organization")
    search_fields = ("name", "city", "zip_code")
    inlines = (OpeningHoursInline, ClosureInline, RoomInline, DeviceInline)


class ScheduleInline(admin.TabularInline[ProviderSchedule, Provider]):
    model = ProviderSchedule
    extra = 0


class LeaveInline(admin.TabularInline[ProviderLeave, Provider]):
    model = ProviderLeave
    extra = 0


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin[Provider]):
    """Providers with where and when they work, and their leave."""

    list_display = ("display_name", "role", "active")
    list_filter = ("role", "active")
    search_fields = ("display_name",)
    inlines = (ScheduleInline, LeaveInline)


class PhaseInline(admin.TabularInline[ServicePhase, Service]):
    model = ServicePhase
    extra = 0


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin[Service]):
    """Services and the phases each visit goes through."""

    list_display = ("name", "code", "kind", "active")
    inlines = (PhaseInline,)


admin.site.register(Organization)
admin.site.register(CartridgeLot)
