"""Administration of consent texts (new versions are added, old ones kept); charts, consents
and scores are shown read-only, since they are changed only through the desk's services, and
every page of them is audited per patient, as the desk's reads are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse

from microneedling.audit.services import audit_patient_view, audit_patients_listed
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


@dataclass(frozen=True)
class _Shown:
    """One row of a clinical list, as the audit names it."""

    pk: int
    patient_id: int


class _ReadOnly:
    """Records written by the desk's services only, read in the admin under audit."""

    def patient_of(self, obj: Any) -> int:
        """The patient whose record ``obj`` is part of."""
        return int(obj.appointment.patient_id)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list, with one audit event per patient on the page shown."""
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        # A redirect (a bad filter, say) shows nobody; a page shows its rows, no more.
        context = getattr(response, "context_data", None) or {}
        listing = context.get("cl")
        if listing is not None:
            audit_patients_listed(
                actor=request.user,
                action="admin_list",
                rows=[_Shown(row.pk, self.patient_of(row)) for row in listing.result_list],
                what=self.model._meta.model_name,  # type: ignore[attr-defined]
                details={"via": "admin"},
            )
        return response  # type: ignore[no-any-return]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """One row, read-only, audited against its patient."""
        self._audit_one(request, object_id, "admin_view")
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc,no-any-return]

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A row's history names it too: audited as a read."""
        self._audit_one(request, object_id, "admin_view")
        return super().history_view(request, object_id, extra_context)  # type: ignore[misc,no-any-return]

    def _audit_one(self, request: HttpRequest, object_id: str, action: str) -> None:
        # Only a row this user may see is a read: a refused or missing one shows nothing.
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            return
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            return
        model = self.model._meta.model_name  # type: ignore[attr-defined]
        audit_patient_view(
            actor=request.user,
            patient_id=self.patient_of(obj),
            action=action,
            details={"via": "admin", model: obj.pk},
        )

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
    list_select_related = ("patient", "text")

    def patient_of(self, obj: Any) -> int:
        """The patient who signed."""
        return int(obj.patient_id)


@admin.register(ProcedureChart)
class ProcedureChartAdmin(_ReadOnly, admin.ModelAdmin[ProcedureChart]):
    """Charts, read-only (amend them at the desk)."""

    list_display = ("appointment", "signed_at", "amends")
    list_select_related = ("appointment",)


@admin.register(OutcomeScore)
class OutcomeScoreAdmin(_ReadOnly, admin.ModelAdmin[OutcomeScore]):
    """Scores, read-only."""

    list_display = ("appointment", "scale", "value", "recorded_at")
    list_select_related = ("appointment",)
