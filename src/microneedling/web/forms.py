"""Forms of the public pages."""

from __future__ import annotations

from django import forms


class LocationSearchForm(forms.Form):
    """A ZIP code or a city name."""

    q = forms.CharField(
        label="ZIP code or city",
        max_length=80,
        help_text="For example 78209 or San Antonio.",
        widget=forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "search"}),
    )

    def clean_q(self) -> str:
        """Trim the query; an empty one is not a search."""
        value: str = self.cleaned_data["q"].strip()
        if not value:
            raise forms.ValidationError("Enter a ZIP code or a city.")
        return value
