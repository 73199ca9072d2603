"""The clinic-policy form of the admin: the booking numbers, and one choice per dispute and
per concern with several protocols, built from the knowledge pack so every option is real."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms

from microneedling.core.knowledge import Pack
from microneedling.directory.models import ClinicPolicy

NUMBER_FIELDS = ("organization", "slot_grid_minutes", "min_notice_hours", "booking_horizon_days")
MESSAGE_FIELDS = ("reminder_hours", "quiet_from", "quiet_until")


def _name(kind: str, key: str) -> str:
    # Pack ids hold dots (``dispute.makeup_after``); form field names stay plain.
    return f"{kind}__{key.replace('.', '__')}"


class ClinicPolicyFormBase(forms.ModelForm[ClinicPolicy]):
    """The numbers as model fields; subclasses made by :func:`policy_form` add the choices."""

    choice_fields: ClassVar[dict[str, tuple[str, str]]] = {}  # field name → (kind, pack id)

    reason = forms.CharField(
        label="Why the change",
        max_length=300,
        help_text="Kept in the audit trail with who changed what.",
    )

    class Meta:
        model = ClinicPolicy
        fields = NUMBER_FIELDS + MESSAGE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = {"positions": self.instance.positions, "protocols": self.instance.protocols}
        for name, (kind, key) in self.choice_fields.items():
            self.fields[name].initial = stored[kind].get(key, "")

    def clean(self) -> dict[str, Any]:
        # The choices go into the model before its own validation (ClinicPolicy.clean, which
        # the model form runs after this) checks them against the pack.
        data = super().clean() or {}
        positions: dict[str, str] = {}
        protocols: dict[str, str] = {}
        for name, (kind, key) in self.choice_fields.items():
            chosen = data.get(name)
            if chosen:
                (positions if kind == "positions" else protocols)[key] = chosen
        self.instance.positions, self.instance.protocols = positions, protocols
        return data

    def choices_changed(self) -> dict[str, Any]:
        """What this save changes, as ``{field or pack id: new value}`` for the audit trail."""
        changed: dict[str, Any] = {}
        for name in self.changed_data:
            if name == "reason":
                continue
            value = self.cleaned_data.get(name)
            if name in self.choice_fields:
                # An empty choice is the one that means "follow the pack".
                changed[self.choice_fields[name][1]] = value or "pack default"
                continue
            # A number or list is recorded as chosen, 0 and [] included: they are values
            # (no notice, no reminders), not an absence.
            changed[name] = getattr(value, "pk", value)
        return changed


def policy_form(pack: Pack) -> type[ClinicPolicyFormBase]:
    """A form class with a choice per dispute and per concern that has several protocols."""
    attrs: dict[str, Any] = {}
    choice_fields: dict[str, tuple[str, str]] = {}
    for dispute in pack.data.disputes:
        default = dispute.position()
        name = _name("positions", dispute.id)
        attrs[name] = forms.ChoiceField(
            label=dispute.question,
            required=False,
            choices=[("", f"The pack's default: {default.summary}")]
            + [(p.id, f"{p.summary} (evidence {p.grade})") for p in dispute.positions],
            help_text=f"Why the default: {dispute.why_default}",
        )
        choice_fields[name] = ("positions", dispute.id)
    for indication in pack.data.indications:
        if len(indication.protocols) < 2:
            continue
        name = _name("protocols", indication.code)
        attrs[name] = forms.ChoiceField(
            label=f"Protocol for {indication.name.lower()}",
            required=False,
            choices=[("", f"The pack's default: {indication.default_protocol.summary}")]
            + [(p.id, p.summary) for p in indication.protocols],
            help_text="Left at the default, the protocol the session-spacing choice names "
            "for this concern applies, if it names one.",
        )
        choice_fields[name] = ("protocols", indication.code)
    attrs["choice_fields"] = choice_fields
    return type("ClinicPolicyForm", (ClinicPolicyFormBase,), attrs)
