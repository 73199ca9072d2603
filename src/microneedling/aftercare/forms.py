"""The "How is your skin?" form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from microneedling.core.knowledge import Pack
from microneedling.core.triage import SymptomReport
from microneedling.patients.photos import photo_checked

SEVERITY = (("", "No"), ("mild", "Mild"), ("moderate", "Moderate"), ("severe", "Severe"))


class SkinReportForm(forms.Form):
    """One question per side effect (none, mild, moderate, severe), notes and a photo."""

    notes = forms.CharField(
        label="Anything else to tell us?", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    photo = forms.FileField(
        label="Photo (optional)",
        required=False,
        help_text="A JPEG or PNG up to 5 MB. Only your clinic sees it.",
    )

    #: One key per form shown: a second click (or a resent POST) finds the first report.
    submission = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args: Any, pack: Pack, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.codes = [s.code for s in pack.data.symptoms]
        for symptom in pack.data.symptoms:
            self.fields[f"symptom_{symptom.code}"] = forms.ChoiceField(
                label=symptom.name, choices=SEVERITY, required=False
            )
        # Symptoms first, then notes and photo.
        self.order_fields([f"symptom_{code}" for code in self.codes])

    def symptom_fields(self) -> list[forms.BoundField]:
        """The symptom questions, for the template."""
        return [self[f"symptom_{code}"] for code in self.codes]

    def clean_photo(self) -> UploadedFile[bytes] | None:
        """Only real JPEG or PNG images, and not too large."""
        return photo_checked(self.cleaned_data.get("photo"))

    def clean(self) -> dict[str, Any]:
        """At least one symptom, so the report can be triaged."""
        data = super().clean() or {}
        self.symptoms = [
            SymptomReport(code=code, severity=data[f"symptom_{code}"])
            for code in self.codes
            if data.get(f"symptom_{code}")
        ]
        if not self.symptoms and not self.errors:
            raise ValidationError("Choose at least one thing you notice (and how strong it is).")
        return data


class SatisfactionForm(forms.Form):
    """The patient's own score of a completed session, on the pack's satisfaction scale."""

    satisfaction = forms.TypedChoiceField(
        label="Your answer",
        widget=forms.RadioSelect,
        coerce=int,
        error_messages={"required": "Choose how satisfied you are."},
    )

    def __init__(self, *args: Any, levels: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["satisfaction"]
        if isinstance(field, forms.ChoiceField):
            field.choices = levels
