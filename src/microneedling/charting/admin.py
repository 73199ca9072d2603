"""Administration of consent texts (new versions are added, old ones kept); charts, consents
and scores are shown read-only, since they are changed only through the desk's services."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from microneedling.charting.models import Consent, ConsentText, OutcomeScore, ProcedureChart


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin[ConsentText]):
    """Consent versions: add a new one to change the text; signed versions stay as they were."""

    list_display = ("version", "title", "active_from")

    def has_change_permission(self, request: HttpRequest, obj: ConsentText | None = None) -> bool:
        """A version someone signed never changes (and only those allowed change any)."""
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or not obj.signatures.exists())

    def has_delete_permission(self, request: HttpRequest, obj: ConsentText | None = None) -> bool:
        """Versions are kept for the record."""
        return False


class _ReadOnly:
    """Records written by the desk's services only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Not from the admin."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Not from the admin."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Not from the admin."""
        return False


@admin.register(Consent)
class ConsentAdmin(_ReadOnly, admin.ModelAdmin[Consent]):
    """Signatures, read-only."""

    list_display = ("patient", "text", "signed_at")


@admin.register(ProcedureChart)
class ProcedureChartAdmin(_ReadOnly, admin.ModelAdmin[ProcedureChart]):
    """Charts, read-only (amend them at the desk)."""

    list_display = ("appointment", "signed_at", "amends")


@admin.register(OutcomeScore)
class OutcomeScoreAdmin(_ReadOnly, admin.ModelAdmin[OutcomeScore]):
    """Scores, read-only."""

    list_display = ("appointment", "scale", "value", "recorded_at")
