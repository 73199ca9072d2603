"""Where, who and what: organisations, locations and their hours, rooms, devices, providers
and the services they offer, with the phases each visit goes through."""

from __future__ import annotations

from collections.abc import Collection
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from microneedling.core.knowledge import load_pack
from microneedling.core.knowledge.models import Policy


def validate_time_zone(value: str) -> None:
    """Refuse a name that is not an IANA time zone this machine knows (``zoneinfo``)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: a path-like or malformed key, which zoneinfo refuses before looking.
        raise ValidationError(
            "%(value)r is not a known IANA time zone (e.g. America/Chicago)",
            code="unknown_time_zone",
            params={"value": value},
        ) from None


class Organization(models.Model):
    """A clinic or a chain of clinics."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    """A clinic site, with its address, time zone and whether it is open."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSING = "closing", "Closing"
        CLOSED = "closed", "Closed"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="locations"
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    address = models.CharField(max_length=300)
    city = models.CharField(max_length=120)
    region = models.CharField(max_length=60, help_text="State or region")
    zip_code = models.CharField(max_length=12, db_index=True)
    latitude = models.FloatField()
    longitude = models.FloatField()
    timezone = models.CharField(
        max_length=64,
        help_text="IANA time zone, e.g. America/Chicago",
        validators=[validate_time_zone],
    )
    phone = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    closes_on = models.DateField(
        null=True, blank=True, help_text="First day the location no longer sees patients"
    )
    successor = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="predecessors",
        help_text="Where patients go once this location closes",
    )

    def __str__(self) -> str:
        return self.name


class OpeningHours(models.Model):
    """One opening span of a location on a weekday (several per day are allowed)."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(help_text="0 = Monday … 6 = Sunday")
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["weekday", "opens"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(opens__lt=models.F("closes")),
                name="opening_hours_opens_before_closes",
            ),
            models.CheckConstraint(
                condition=models.Q(weekday__lte=6), name="opening_hours_weekday_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location_id} weekday {self.weekday} {self.opens}–{self.closes}"


class LocationClosure(models.Model):
    """Days a location is shut: a holiday, a refurbishment, or its permanent closure."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="closures")
    starts_on = models.DateField()
    ends_on = models.DateField(help_text="Last closed day (inclusive)")
    reason = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_on__lte=models.F("ends_on")),
                name="closure_starts_before_it_ends",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location_id} closed {self.starts_on}–{self.ends_on}"


class Room(models.Model):
    """A treatment room; a visit keeps one room through all its phases."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=80)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.location.name} · {self.name}"


def visits_to_come(**where: object) -> models.QuerySet[Any]:
    """Visits still to be given (requested or booked, starting after now) matching ``where``:
    what an edit of hours, leave or a provider must not leave without a place or a person.
    (The scheduling app's model, looked up when called: it depends on this module.)"""
    appointment = apps.get_model("scheduling", "Appointment")
    return appointment.objects.filter(
        starts_at__gt=timezone.now(), status__in=appointment.TO_COME, **where
    )


def charted_identity_check(instance: models.Model, column: str, fields: tuple[str, ...]) -> None:
    """Refuse a change to ``fields`` of a pen or lot that a procedure chart names (by its
    ``column``): a signed chart records what was used by pointing here, so rewriting the
    row would rewrite every chart, and a recall could no longer find its patients."""
    if instance.pk is None:
        return
    before = type(instance)._default_manager.filter(pk=instance.pk).values(*fields).first()
    if before is None:
        return
    changed = [
        name for name in fields if before[name] != getattr(instance, _attname(instance, name))
    ]
    if not changed:
        return
    charts = apps.get_model("charting", "ProcedureChart").objects
    if charts.filter(**{column: instance.pk}).exists():
        raise ValidationError(
            dict.fromkeys(
                changed, "charts name this as it is: add a new one instead of changing it"
            )
        )


def _attname(instance: models.Model, name: str) -> str:
    # A foreign key compares by its id, as values() gives it.
    field = instance._meta.get_field(name)
    return field.attname if isinstance(field, models.Field) else name


class Device(models.Model):
    """A microneedling pen at a location."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=80)
    model = models.CharField(max_length=120)
    serial_number = models.CharField(max_length=80, unique=True)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.model})"

    def clean(self) -> None:
        """A pen charts name keeps its model, serial number and location (retire it instead)."""
        super().clean()
        charted_identity_check(self, "device", ("location", "model", "serial_number"))


class CartridgeLot(models.Model):
    """Single-use needle cartridges in stock at a location, by manufacturer lot."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="cartridges")
    device_model = models.CharField(max_length=120)
    lot_number = models.CharField(max_length=80)
    expires_on = models.DateField()
    quantity = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["location", "device_model", "lot_number"],
                name="cartridge_lot_unique_per_location",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.device_model} lot {self.lot_number}"

    def clean(self) -> None:
        """A lot charts name keeps what identifies it; only the count in stock changes."""
        super().clean()
        charted_identity_check(
            self, "cartridge_lot", ("location", "device_model", "lot_number", "expires_on")
        )


class Provider(models.Model):
    """A person who treats patients."""

    class Role(models.TextChoices):
        PHYSICIAN = "physician", "Physician"
        NURSE_PRACTITIONER = "nurse_practitioner", "Nurse practitioner"
        AESTHETICIAN = "aesthetician", "Aesthetician"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="providers"
    )
    display_name = models.CharField(max_length=200)
    role = models.CharField(max_length=20, choices=Role.choices)
    qualifications = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.display_name

    def clean(self) -> None:
        """A provider with visits still to come is not switched off as a form's tick-box:
        their patients would keep visits nobody will give. Move the visits first (the desk's
        re-homing, or ``microneedling move-provider``)."""
        super().clean()
        if self.pk is None or self.active:
            return
        was_active = type(self)._default_manager.filter(pk=self.pk, active=True).exists()
        if not was_active:
            return
        waiting = visits_to_come(provider_id=self.pk).count()
        if waiting:
            raise ValidationError(
                {
                    "active": f"{waiting} visit(s) still to come are booked with this "
                    "provider: move them first (re-homing on the desk, or "
                    "`microneedling move-provider`)"
                }
            )


class ProviderSchedule(models.Model):
    """When a provider works at a location on a weekday, from a date and until a date."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="schedules")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="schedules")
    weekday = models.PositiveSmallIntegerField(help_text="0 = Monday … 6 = Sunday")
    starts = models.TimeField()
    ends = models.TimeField()
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Last day (inclusive)")

    class Meta:
        indexes = [models.Index(fields=["provider", "weekday"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts__lt=models.F("ends")),
                name="provider_schedule_starts_before_ends",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} at {self.location_id} weekday {self.weekday}"


class ProviderLeave(models.Model):
    """Time a provider is away (holiday, training, sickness)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="leave")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at")),
                name="leave_starts_before_it_ends",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} away {self.starts_at}–{self.ends_at}"


class Service(models.Model):
    """Something a patient can book: a consultation, microneedling of some areas, a review."""

    class Kind(models.TextChoices):
        CONSULTATION = "consultation", "Consultation"
        TREATMENT = "treatment", "Microneedling treatment"
        FOLLOW_UP = "follow_up", "Follow-up review"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="services"
    )
    code = models.SlugField()
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    areas = models.JSONField(default=list, blank=True, help_text="Knowledge-pack area codes")
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="service_code_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class ServicePhase(models.Model):
    """A phase of a service's visit and the resources it holds."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="phases")
    order = models.PositiveSmallIntegerField()
    code = models.CharField(max_length=40)
    minutes = models.PositiveSmallIntegerField()
    needs_provider = models.BooleanField(default=False)
    needs_room = models.BooleanField(default=True)
    needs_device = models.BooleanField(default=False)

    class Meta:
        ordering = ["order"]
        constraints = [
            models.UniqueConstraint(fields=["service", "order"], name="service_phase_order"),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} phase {self.order}: {self.code}"

    @property
    def needs(self) -> tuple[str, ...]:
        """The resource kinds this phase holds."""
        kinds = (
            ("provider", self.needs_provider),
            ("room", self.needs_room),
            ("device", self.needs_device),
        )
        return tuple(kind for kind, needed in kinds if needed)


def default_slot_grid_minutes() -> int:
    """The deployment's slot grid, for a clinic that has not chosen its own."""
    return int(settings.MICRONEEDLING["SLOT_GRID_MINUTES"])


def default_min_notice_hours() -> int:
    """The deployment's minimum notice, for a clinic that has not chosen its own."""
    return int(settings.MICRONEEDLING["MIN_NOTICE_HOURS"])


def default_booking_horizon_days() -> int:
    """The deployment's booking horizon, for a clinic that has not chosen its own."""
    return int(settings.MICRONEEDLING["BOOKING_HORIZON_DAYS"])


def default_reminder_hours() -> list[int]:
    """Reminders two days and one day before a visit."""
    return [48, 24]


class ClinicPolicy(models.Model):
    """A clinic's own choices where the sources or the clinic's habits differ: the booking
    grid, notice and horizon, and which position of each knowledge-pack dispute and which
    protocol of each concern it follows. Without a row the pack's defaults and the
    deployment's settings apply; every change is audited."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="policy"
    )
    slot_grid_minutes = models.PositiveSmallIntegerField(
        choices=[(m, f"every {m} minutes") for m in (5, 10, 15, 20, 30, 60)],
        default=default_slot_grid_minutes,
        help_text="Visits start on this grid (minutes past the hour)",
    )
    min_notice_hours = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(24 * 14)],
        default=default_min_notice_hours,
        help_text="How far ahead a patient must book",
    )
    booking_horizon_days = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(30), MaxValueValidator(800)],
        default=default_booking_horizon_days,
        help_text="How far ahead the diary opens",
    )
    positions = models.JSONField(
        default=dict, blank=True, help_text="Dispute id → the position the clinic follows"
    )
    protocols = models.JSONField(
        default=dict, blank=True, help_text="Concern code → the protocol the clinic follows"
    )
    reminder_hours = models.JSONField(
        default=default_reminder_hours,
        blank=True,
        help_text="Hours before a visit at which reminders go out, e.g. [48, 24]",
    )
    quiet_from = models.TimeField(
        default=time(21), help_text="No non-urgent messages from this local time…"
    )
    quiet_until = models.TimeField(default=time(8), help_text="…until this local time")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "clinic policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(slot_grid_minutes__in=(5, 10, 15, 20, 30, 60)),
                name="policy_grid_divides_the_hour",
            ),
            models.CheckConstraint(
                condition=models.Q(booking_horizon_days__gte=30),
                name="policy_horizon_at_least_30_days",
            ),
        ]

    def __str__(self) -> str:
        return f"Policy of {self.organization_id}"

    def clean(self) -> None:
        """Every chosen position and protocol must exist in the knowledge pack."""
        problems = load_pack().policy_problems(self.pack_policy())
        if problems:
            raise ValidationError(
                {
                    key.split(".", 1)[0]: f"{key.split('.', 1)[1]}: {problem}"
                    for key, problem in problems.items()
                }
            )

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """Reminder hours must be whole hours between 1 and 14 days, no repeats."""
        super().clean_fields(exclude)
        hours = self.reminder_hours
        if not (exclude and "reminder_hours" in exclude) and (
            not isinstance(hours, list)
            or not all(isinstance(h, int) and 1 <= h <= 24 * 14 for h in hours)
            or len(set(hours)) != len(hours)
        ):
            raise ValidationError(
                {"reminder_hours": "give whole hours from 1 to 336, each once, e.g. [48, 24]"}
            )

    def pack_policy(self) -> Policy:
        """The positions and protocols as the engines take them."""
        return Policy(positions=dict(self.positions), protocols=dict(self.protocols))
