"""The patient's forms: signing up and the intake questionnaire.

The intake form asks the screening engine's questions in plain words, with the pack's help
text beside each; it turns the answers into the engine's :class:`Intake` and puts any
problem the engine finds back beside the field it concerns.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.utils import timezone

from microneedling.core.knowledge import Pack
from microneedling.core.screening import Intake
from microneedling.core.screening.intake import EARLIEST_DATE, LATEST_DATE
from microneedling.directory.models import Location
from microneedling.directory.policy import booking_rules

FITZPATRICK = (
    (1, "I: very fair, always burns, never tans"),
    (2, "II: fair, usually burns, tans a little"),
    (3, "III: medium, sometimes burns, tans evenly"),
    (4, "IV: olive, rarely burns, tans easily"),
    (5, "V: brown, very rarely burns, tans darkly"),
    (6, "VI: deeply pigmented, never burns"),
)
MEDICINE_STATES = (("no", "Not taking"), ("now", "Taking now"), ("stopped", "Stopped"))
#: How long a sign-in name (a patient's e-mail address) may be.
USERNAME_MAX_LENGTH: int = get_user_model()._meta.get_field("username").max_length or 150


class ClinicalDateField(forms.DateField):
    """A date a patient's record can hold (1900 to 2199, as the screening engine accepts):
    anything else is refused beside its own field, not as a puzzle about the whole form."""

    def validate(self, value: Any) -> None:
        """The parsed date, if any, inside the record's range."""
        super().validate(value)
        if value and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise ValidationError(
                f"Give a date between {EARLIEST_DATE.year} and {LATEST_DATE.year}.",
                code="out_of_range",
            )


class DateInput(forms.DateInput):
    """A native date picker."""

    input_type = "date"


class SignUpForm(forms.Form):
    """A new patient: who they are, how to sign in, and which clinic they will visit."""

    first_name = forms.CharField(
        max_length=120, widget=forms.TextInput(attrs={"autocomplete": "given-name"})
    )
    last_name = forms.CharField(
        max_length=120, widget=forms.TextInput(attrs={"autocomplete": "family-name"})
    )
    email = forms.EmailField(
        label="E-mail address",
        # The address becomes the sign-in name: no longer than that column holds, or the
        # database would refuse the account (PostgreSQL) after the form said yes.
        max_length=USERNAME_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    birth_date = ClinicalDateField(
        label="Date of birth", widget=DateInput(attrs={"autocomplete": "bday"})
    )
    location = forms.ModelChoiceField(
        label="Your clinic",
        queryset=Location.objects.exclude(status=Location.Status.CLOSED).order_by("name"),
        empty_label="Choose a location",
        help_text="You can change it later; closed locations are not listed.",
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not only digits, not a common password.",
    )

    def clean_email(self) -> str:
        """The address in lower case (it is the user name).

        Whether it has an account is deliberately not checked here: saying so would tell
        anyone who is a patient. ``patient_sign_up`` answers the same either way and mails
        the account's holder instead."""
        email: str = self.cleaned_data["email"].lower()
        return email

    def clean_birth_date(self) -> date:
        """A birth date in the past."""
        born: date = self.cleaned_data["birth_date"]
        if born >= timezone.localdate():
            raise ValidationError("The date of birth must be in the past.")
        return born

    def clean(self) -> dict[str, Any]:
        """Check the password against the site's rules (with the person's details)."""
        data = super().clean() or {}
        password = data.get("password")
        if password:
            user = get_user_model()(
                username=data.get("email", ""),
                email=data.get("email", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
            )
            try:
                password_validation.validate_password(password, user)
            except ValidationError as error:
                self.add_error("password", error)
        return data


class IntakeForm(forms.Form):
    """The screening questions (see the module docstring)."""

    planned_date = ClinicalDateField(
        label="When would you like your first session?",
        widget=DateInput,
        help_text="Waiting periods and medicine pauses are counted from this day.",
    )
    treatment_areas = forms.MultipleChoiceField(
        label="Which areas would you like treated?", widget=forms.CheckboxSelectMultiple
    )
    birth_date = ClinicalDateField(label="Date of birth", widget=DateInput)
    fitzpatrick_type = forms.TypedChoiceField(
        label="Which describes your skin best?",
        choices=FITZPATRICK,
        coerce=int,
        widget=forms.RadioSelect,
        help_text="This is the Fitzpatrick skin type: it guides how deep the needles may go.",
    )
    pregnant = forms.BooleanField(label="I am pregnant", required=False)
    breastfeeding = forms.BooleanField(label="I am breastfeeding", required=False)
    conditions_now = forms.MultipleChoiceField(
        label="Do you have any of these now?",
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    conditions_past = forms.MultipleChoiceField(
        label="Have you had any of these in the past?",
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="For example cold sores that come back, or raised (keloid) scars.",
    )
    allergies = forms.MultipleChoiceField(
        label="Are you allergic to any of these?",
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    def __init__(self, *args: Any, pack: Pack, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pack = pack
        conditions = [(c.code, c.name) for c in pack.codes["conditions"].values()]
        choices = {
            "treatment_areas": [(a.code, a.name) for a in pack.data.areas],
            "conditions_now": conditions,
            "conditions_past": conditions,
            "allergies": [(c.code, c.name) for c in pack.codes["allergies"].values()],
        }
        for name, options in choices.items():
            field = self.fields[name]
            if isinstance(field, forms.ChoiceField):  # always: declared above
                field.choices = options
        # One question per medicine and per earlier treatment, with its own date beside it.
        for code in pack.codes["medications"].values():
            self.fields[f"medicine_{code.code}"] = forms.ChoiceField(
                label=code.name,
                choices=MEDICINE_STATES,
                initial="no",
                widget=forms.Select,
                help_text=code.help,
            )
            self.fields[f"medicine_{code.code}_last_dose"] = ClinicalDateField(
                label=f"{code.name}: last dose", required=False, widget=DateInput
            )
        for code in pack.codes["procedures"].values():
            self.fields[f"procedure_{code.code}"] = ClinicalDateField(
                label=f"{code.name}: when was the last one?",
                required=False,
                widget=DateInput,
                help_text="Leave empty if you never had it.",
            )

    def medicine_fields(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        """Each medicine's question with its date field, for the template."""
        return [
            (self[f"medicine_{code}"], self[f"medicine_{code}_last_dose"])
            for code in self.pack.codes["medications"]
        ]

    def procedure_fields(self) -> list[forms.BoundField]:
        """Each earlier treatment's date field, for the template."""
        return [self[f"procedure_{code}"] for code in self.pack.codes["procedures"]]

    def clean_planned_date(self) -> date:
        """The first session cannot be in the past."""
        planned: date = self.cleaned_data["planned_date"]
        if planned < timezone.localdate():
            raise ValidationError("Choose today or a later day.")
        return planned

    def clean(self) -> dict[str, Any]:
        """A stopped medicine needs its last dose; then the engine's own checks."""
        data = super().clean() or {}
        for code in self.pack.codes["medications"]:
            state = data.get(f"medicine_{code}")
            if state == "stopped" and not data.get(f"medicine_{code}_last_dose"):
                self.add_error(f"medicine_{code}_last_dose", "Give the date of the last dose.")
        if not self.errors:
            try:
                self.intake = self.to_intake(data)
            except ValueError as error:
                self.add_error(None, _plain(error))
        return data

    def to_intake(self, data: dict[str, Any]) -> Intake:
        """The answers as the screening engine's intake (raises ValueError if impossible)."""
        conditions: list[dict[str, Any]] = [
            {"code": code, "status": "active"} for code in data.get("conditions_now", [])
        ]
        conditions += [
            {"code": code, "status": "history"} for code in data.get("conditions_past", [])
        ]
        medications = []
        for code in self.pack.codes["medications"]:
            state = data.get(f"medicine_{code}")
            if state == "now":
                medications.append({"code": code, "last_dose": None})
            elif state == "stopped":
                medications.append({"code": code, "last_dose": data[f"medicine_{code}_last_dose"]})
        procedures = [
            {"code": code, "date": data[f"procedure_{code}"]}
            for code in self.pack.codes["procedures"]
            if data.get(f"procedure_{code}")
        ]
        return Intake.model_validate(
            {
                "planned_date": data["planned_date"],
                "birth_date": data["birth_date"],
                "fitzpatrick_type": data["fitzpatrick_type"],
                "treatment_areas": data["treatment_areas"],
                "pregnant": data.get("pregnant", False),
                "breastfeeding": data.get("breastfeeding", False),
                "conditions": conditions,
                "medications": medications,
                "procedures": procedures,
                "allergies": data.get("allergies", []),
            }
        )


def _plain(error: ValueError) -> str:
    """The engine's message for a person: dates after the planned day are the usual cause."""
    text = str(error)
    if "after planned_date" in text:
        return "A date you gave is after the day of your first session; check the dates."
    if "birth_date must be before" in text:
        return "The date of birth must be before the first session."
    return "Some answers do not fit together; check the dates."


WEEKDAY_CHOICES = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]
#: Parts of the day a patient may prefer, as local (from, to) readings.
TIMES_OF_DAY = {
    "any": (),
    "morning": (("07:00", "12:00"),),
    "afternoon": (("12:00", "17:00"),),
    "evening": (("17:00", "21:00"),),
}


class CoursePlanForm(forms.Form):
    """What the patient wants treated, where, from when, and what suits them best."""

    location = forms.ModelChoiceField(label="Location", queryset=Location.objects.none())
    indications = forms.MultipleChoiceField(
        label="What would you like to improve?", widget=forms.CheckboxSelectMultiple
    )
    areas = forms.MultipleChoiceField(label="Areas", widget=forms.CheckboxSelectMultiple)
    first_session = forms.DateField(
        label="First session on or after", widget=DateInput, help_text="We look up to six days on."
    )
    weekdays = forms.TypedMultipleChoiceField(
        label="Days that suit you (optional)",
        choices=WEEKDAY_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    time_of_day = forms.ChoiceField(
        label="Time of day",
        choices=[(key, key.capitalize() if key != "any" else "Any time") for key in TIMES_OF_DAY],
        initial="any",
    )
    #: One key per filled-in form, carried from the first view to "Book all": a second click
    #: (or a resent POST) answers with the course the first one booked.
    submission = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args: Any, pack: Pack, organization_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization_id = organization_id
        location = self.fields["location"]
        if isinstance(location, forms.ModelChoiceField):
            location.queryset = Location.objects.filter(organization_id=organization_id).exclude(
                status=Location.Status.CLOSED
            )
        for name, options in (
            ("indications", [(i.code, i.name) for i in pack.data.indications]),
            ("areas", [(a.code, a.name) for a in pack.data.areas]),
        ):
            field = self.fields[name]
            if isinstance(field, forms.ChoiceField):
                field.choices = options

    def clean_first_session(self) -> date:
        """From tomorrow (a course is booked with notice) to the clinic's furthest day."""
        first: date = self.cleaned_data["first_session"]
        if first <= timezone.localdate():
            raise ValidationError("Choose a day from tomorrow on.")
        last = timezone.localdate(booking_rules(self.organization_id).window(timezone.now())[1])
        if first > last:
            raise ValidationError(f"We book up to {last.day} {last:%B %Y}; choose a day by then.")
        return first


class MoveForm(forms.Form):
    """A new start for one session, from the starts that are free inside its window."""

    starts_at = forms.ChoiceField(label="New time")

    def __init__(self, *args: Any, options: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["starts_at"]
        if isinstance(field, forms.ChoiceField):
            field.choices = options


class ConsentForm(forms.Form):
    """Agreeing to the consent text: a tick and the patient's full name as a signature."""

    agree = forms.BooleanField(label="I have read this and I agree")
    signature = forms.CharField(
        label="Your full name, as your signature",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
