"""The desk's forms: the procedure chart and an outcome score."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q

from microneedling.charting.models import ProcedureChart
from microneedling.core.knowledge import Pack
from microneedling.directory.models import CartridgeLot, Device
from microneedling.patients.photos import photo_checked
from microneedling.scheduling.models import Appointment

PRODUCT_ROWS = 3


class ChartForm(forms.Form):
    """What was used and done; one depth and pass count per treated area."""

    device = forms.ModelChoiceField(label="Pen", queryset=Device.objects.none())
    cartridge_lot = forms.ModelChoiceField(
        label="Cartridge lot", queryset=CartridgeLot.objects.none()
    )
    numbing_product = forms.CharField(label="Numbing product", max_length=120)
    numbing_minutes = forms.IntegerField(label="Numbing minutes", min_value=0, max_value=90)
    endpoint = forms.ChoiceField(
        label="Endpoint reached",
        choices=[
            ("pinpoint_bleeding", "Pinpoint bleeding"),
            ("uniform_erythema", "Even redness (erythema)"),
            ("stopped_early", "Stopped before the endpoint"),
        ],
    )
    immediate_reaction = forms.CharField(label="Immediate reaction", max_length=300, required=False)
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, appointment: Appointment, pack: Pack, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        location = appointment.location
        # A pen retired since the session is still the one the chart being corrected names:
        # offered again, so that the correction does not have to name another pen.
        in_use = Q(active=True) | Q(pk=self.initial.get("device"))
        for name, queryset in (
            ("device", Device.objects.filter(in_use, location=location).order_by("name")),
            (
                "cartridge_lot",
                CartridgeLot.objects.filter(location=location).order_by("expires_on"),
            ),
        ):
            field = self.fields[name]
            if isinstance(field, forms.ModelChoiceField):
                field.queryset = queryset
        self.area_codes = list(appointment.service.areas) or ["face"]
        for code in self.area_codes:
            area = pack.areas[code]
            self.fields[f"depth_{code}"] = forms.DecimalField(
                label=f"{area.name}: needle depth (mm)",
                min_value=0.1,
                max_value=area.depth_max_mm,
                decimal_places=2,
                help_text=f"At most {area.depth_max_mm} mm here.",
            )
            self.fields[f"passes_{code}"] = forms.IntegerField(
                label=f"{area.name}: passes", min_value=1, max_value=8
            )
        for row in range(PRODUCT_ROWS):
            self.fields[f"product_{row}"] = forms.CharField(
                label=f"Product applied {row + 1}", max_length=120, required=False
            )
            self.fields[f"product_{row}_sterile"] = forms.BooleanField(
                label="Sterile, made for use after needling", required=False
            )

    @staticmethod
    def initial_from(chart: ProcedureChart) -> dict[str, Any]:
        """The form filled in as ``chart`` has it: a draft to correct, or a signed chart to
        amend, starts from what it says rather than from blank."""
        initial: dict[str, Any] = {
            "device": chart.device_id,
            "cartridge_lot": chart.cartridge_lot_id,
            "numbing_product": chart.numbing_product,
            "numbing_minutes": chart.numbing_minutes,
            "endpoint": chart.endpoint,
            "immediate_reaction": chart.immediate_reaction,
            "notes": chart.notes,
        }
        for row in chart.areas:
            initial[f"depth_{row['area']}"] = row["depth_mm"]
            initial[f"passes_{row['area']}"] = row["passes"]
        for index, product in enumerate(chart.products[:PRODUCT_ROWS]):
            initial[f"product_{index}"] = product["product"]
            initial[f"product_{index}_sterile"] = bool(product.get("sterile"))
        return initial

    def chart_data(self) -> dict[str, Any]:
        """The cleaned answers in the shape the charting service takes."""
        data = self.cleaned_data
        return {
            "device": data["device"],
            "cartridge_lot": data["cartridge_lot"],
            "numbing_product": data["numbing_product"],
            "numbing_minutes": data["numbing_minutes"],
            "endpoint": data["endpoint"],
            "immediate_reaction": data["immediate_reaction"],
            "notes": data["notes"],
            "areas": [
                {
                    "area": code,
                    "depth_mm": float(data[f"depth_{code}"]),
                    "passes": data[f"passes_{code}"],
                }
                for code in self.area_codes
            ],
            "products": [
                {"product": data[f"product_{row}"], "sterile": data[f"product_{row}_sterile"]}
                for row in range(PRODUCT_ROWS)
                if data[f"product_{row}"]
            ],
        }


class ScoreForm(forms.Form):
    """One score on one of the pack's scales."""

    scale = forms.ChoiceField(label="Scale")
    value = forms.IntegerField(label="Score")
    notes = forms.CharField(label="Note", max_length=300, required=False)

    def __init__(self, *args: Any, pack: Pack, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["scale"]
        if isinstance(field, forms.ChoiceField):
            # The patient's own scales are theirs to answer, in the portal.
            field.choices = [(s.code, s.name) for s in pack.data.scales if s.rater == "clinician"]
        self.scales = {s.code: s for s in pack.data.scales}


class PhotoForm(forms.Form):
    """A before or after photo of the session."""

    kind = forms.ChoiceField(label="Photo", choices=[("before", "Before"), ("after", "After")])
    file = forms.FileField(label="Image", help_text="A JPEG or PNG up to 5 MB.")

    def clean_file(self) -> UploadedFile[bytes] | None:
        """Only real JPEG or PNG images, and not too large."""
        return photo_checked(self.cleaned_data.get("file"))


class ScreeningDecisionForm(forms.Form):
    """A provider's decision on a screening that needed review, with the reason the patient
    will read."""

    decision = forms.ChoiceField(
        label="Decision",
        widget=forms.RadioSelect,
        choices=[
            ("approve", "Approve: the patient may book"),
            ("decline", "Decline: a consultation first"),
        ],
        error_messages={"required": "Choose approve or decline."},
    )
    reason = forms.CharField(
        label="Reason (the patient reads it)",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Give the reason the patient will read."},
    )


class ReportHandledForm(forms.Form):
    """What the clinic did about a skin report."""

    note = forms.CharField(
        label="What was done",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "required": "Say what was done (for example: called the patient, booked a review)."
        },
    )
