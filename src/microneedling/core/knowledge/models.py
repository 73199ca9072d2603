"""Schema of the knowledge pack.

Every clinical entry carries the ids of its sources and an evidence grade. Where sources
disagree, a :class:`Dispute` lists every position and names the default; engines read the
chosen position through a :class:`Policy`, so a clinic can choose another one on purpose.
"""

from __future__ import annotations

from math import ceil
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from microneedling.core.dates import Span

Grade = Literal["seed", "consensus", "single", "clinic-pages", "disputed"]
Outcome = Literal[
    "eligible", "eligible_with_precautions", "clinician_review", "deferred", "not_eligible"
]
Action = Literal["expected", "monitor", "contact_clinic", "urgent"]

#: Verdicts from best to worst; the worst reason decides the verdict.
OUTCOME_ORDER: tuple[Outcome, ...] = (
    "eligible",
    "eligible_with_precautions",
    "clinician_review",
    "deferred",
    "not_eligible",
)
#: Triage actions from least to most pressing.
ACTION_ORDER: tuple[Action, ...] = ("expected", "monitor", "contact_clinic", "urgent")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Model):
    """A span in the pack's files: ``{ months = 6 }``, ``{ days = 14 }``, ``{ weeks = 2 }``."""

    days: int = Field(default=0, ge=0)
    weeks: int = Field(default=0, ge=0)
    months: int = Field(default=0, ge=0)

    @property
    def span(self) -> Span:
        """The engine-side value of this duration."""
        return Span(days=self.days, weeks=self.weeks, months=self.months)


class Cited(_Model):
    """Anything clinical: it names its sources and the strength of the evidence."""

    id: str = Field(pattern=r"^[a-z0-9_.\-]+$")
    sources: tuple[str, ...] = Field(min_length=1)
    grade: Grade


class Source(_Model):
    """A document the pack cites: a seed file, a paper, a device label or clinic pages."""

    id: str
    #: ``clinic-practice`` is the product's own practice: a figure no source gives, named so
    #: that it is never mistaken for one a source states.
    kind: Literal["seed", "published", "labelling", "clinic-pages", "clinic-practice"]
    title: str
    file: str | None = None
    doi: str | None = None
    note: str | None = None
    #: A seed's sentences (numbered as :func:`~microneedling.core.knowledge.seeds.seed_sentences`
    #: splits it) that state nothing: headings, image captions, credits.
    not_statements: tuple[Annotated[int, Field(ge=1)], ...] = ()

    @model_validator(mode="after")
    def _seed_has_file(self) -> Source:
        if self.kind == "seed" and not self.file:
            raise ValueError(f"seed source {self.id} must name its file")
        if self.kind != "seed" and self.not_statements:
            raise ValueError(f"source {self.id} is not a seed: it has no sentences to skip")
        return self


class Code(_Model):
    """A code an intake may use (condition, medication, procedure, allergy)."""

    code: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    help: str = ""
    #: ``area`` codes can be confined to a treatment area; ``systemic`` ones affect the body.
    scope: Literal["area", "systemic"] = "systemic"
    #: Medication classes this code belongs to (ibuprofen → nsaid).
    classes: tuple[str, ...] = ()


class Area(Cited):
    """A treatment area; sub-areas (``face.periorbital``) name their parent."""

    code: str = Field(pattern=r"^[a-z_]+(\.[a-z_]+)?$")
    name: str
    parent: str | None = None
    depth_max_mm: float = Field(gt=0, le=3.0)
    thin_skin: bool = False
    procedure_minutes: tuple[int, int]
    note: str = ""


class DepthRange(_Model):
    """Needle depth in millimetres."""

    min: float = Field(gt=0, le=3.0)
    max: float = Field(gt=0, le=3.0)

    @model_validator(mode="after")
    def _ordered(self) -> DepthRange:
        if self.min > self.max:
            raise ValueError("depth min exceeds max")
        return self


class Gap(_Model):
    """Days between consecutive sessions: the window and the day aimed for."""

    min: int = Field(ge=1)
    target: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Gap:
        if not self.min <= self.target <= self.max:
            raise ValueError("gap must satisfy min <= target <= max")
        return self


class Maintenance(_Model):
    """How often a maintenance session falls due once the series is done."""

    every_days_min: int = Field(ge=1)
    every_days_max: int = Field(ge=1)


class SkinTypeAdjustment(_Model):
    """A protocol change for some Fitzpatrick types (e.g. more sessions in types IV–V)."""

    fitzpatrick: tuple[int, ...]
    sessions: int = Field(ge=1)
    sources: tuple[str, ...] = Field(min_length=1)


class Protocol(Cited):
    """One position on how to run a course for an indication."""

    summary: str
    sessions: int = Field(ge=1, le=12)
    sessions_range: tuple[int, int]
    gap: Gap
    maintenance: Maintenance
    skin_type: tuple[SkinTypeAdjustment, ...] = ()
    default: bool = False


class Indication(Cited):
    """A concern microneedling treats, with its depth and the protocols the sources give."""

    code: str = Field(pattern=r"^[a-z_]+$")
    name: str
    description: str
    depth: DepthRange
    areas: tuple[str, ...] = Field(min_length=1)
    protocols: tuple[Protocol, ...] = Field(min_length=1)
    note: str = ""

    @model_validator(mode="after")
    def _one_default(self) -> Indication:
        if sum(p.default for p in self.protocols) != 1:
            raise ValueError(f"indication {self.code} needs exactly one default protocol")
        return self

    @property
    def default_protocol(self) -> Protocol:
        """The protocol used unless a clinic's policy picks another."""
        return next(p for p in self.protocols if p.default)


class Precaution(Cited):
    """Something the plan or the provider must honour; may change the plan (depth)."""

    message: str
    effect: Literal["none", "conservative_depth", "antiviral_prophylaxis"] = "none"
    #: Numbers the effect uses (conservative depth: ``depth_cap_mm``, ``keep_share``).
    params: dict[str, float] = Field(default_factory=dict)


class Rule(Cited):
    """A screening rule: what in the intake triggers it and what it decides."""

    when: Literal[
        "condition",
        "medication",
        "procedure",
        "allergy",
        "pregnant",
        "breastfeeding",
        "age",
        "fitzpatrick",
    ]
    #: Codes (or medication classes) that trigger the rule.
    codes: tuple[str, ...] = ()
    #: For conditions: which status triggers it.
    status: Literal["active", "history", "any"] = "any"
    #: ``area`` rules fire only when the entry's area overlaps a treatment area.
    scope: Literal["area", "systemic"] = "systemic"
    outcome: Outcome
    #: For ``deferred`` rules: how long after the entry's date treatment may happen.
    wait: Duration | None = None
    #: A dispute whose chosen position supplies ``wait`` (``params.wait``) or drops the rule.
    dispute: str | None = None
    age_below: int | None = None
    fitzpatrick: tuple[int, ...] = ()
    precautions: tuple[str, ...] = ()
    message: str


class Hold(Cited):
    """Stop a medication some days before the session and resume it after."""

    codes: tuple[str, ...] = Field(min_length=1)
    stop_before: Duration
    resume_after: Duration
    message: str


class CareItem(Cited):
    """One pre-care or aftercare instruction, timed in hours relative to the session."""

    phase: Literal["before", "day_of", "after"]
    from_hours: int
    to_hours: int | None = None
    message: str
    dispute: str | None = None

    @property
    def days_ahead(self) -> int:
        """Whole days before the session day it starts (a pre-care instruction's date on the
        care page, and the day its reminder goes out)."""
        return ceil(-self.from_hours / 24)


class RecoveryStage(Cited):
    """What healing normally looks like on some days after a session."""

    from_day: int = Field(ge=0)
    to_day: int = Field(ge=0)
    message: str


class ResultMilestone(Cited):
    """When results show and how long they last, in days after a session or the series."""

    anchor: Literal["each_session", "series_end"]
    from_day: int = Field(ge=0)
    to_day: int | None = None
    message: str
    dispute: str | None = None


class Stage(_Model):
    """A triage stage: from which day a symptom needs which action."""

    from_day: int = Field(ge=0)
    action: Action


class Symptom(Cited):
    """A side effect a patient may report, with the action it needs over the days."""

    code: str = Field(pattern=r"^[a-z_]+$")
    name: str
    frequency: Literal["common", "occasional", "rare", "very_rare", "not_expected"]
    stages: tuple[Stage, ...] = Field(min_length=1)
    #: Severity ``severe`` raises the action one step (never below this floor).
    severe_action: Action = "contact_clinic"
    #: Action for Fitzpatrick IV–VI once the symptom is past its expected window.
    dark_skin_action: Action | None = None
    red_flag: bool = False
    message: str
    advice: str
    #: A dispute whose chosen position may set a least action (``params.floor``) for it.
    dispute: str | None = None

    @model_validator(mode="after")
    def _stages_start_at_zero(self) -> Symptom:
        days = [s.from_day for s in self.stages]
        if days[0] != 0 or days != sorted(set(days)):
            raise ValueError(f"symptom {self.code}: stages must start at day 0 and increase")
        return self

    def action_on(self, day: int) -> Action:
        """The action for this symptom reported ``day`` days after the session."""
        action = self.stages[0].action
        for stage in self.stages:
            if day >= stage.from_day:
                action = stage.action
        return action


class ScaleLevel(_Model):
    """A point on an outcome scale."""

    value: int
    label: str


class Scale(Cited):
    """An outcome scale used to score progress over a course."""

    code: str = Field(pattern=r"^[a-z_]+$")
    name: str
    rater: Literal["clinician", "patient"]
    measures: str
    levels: tuple[ScaleLevel, ...] = ()
    range: tuple[int, int] | None = None
    indications: tuple[str, ...] = ()


class Position(_Model):
    """One side of a dispute."""

    id: str
    summary: str
    sources: tuple[str, ...] = Field(min_length=1)
    grade: Grade
    params: dict[str, Any] = Field(default_factory=dict)


class Dispute(_Model):
    """A question the sources answer differently; every position is kept."""

    id: str = Field(pattern=r"^[a-z0-9_.\-]+$")
    question: str
    positions: tuple[Position, ...] = Field(min_length=2)
    default: str
    why_default: str

    @model_validator(mode="after")
    def _default_exists(self) -> Dispute:
        if self.default not in {p.id for p in self.positions}:
            raise ValueError(f"dispute {self.id}: default {self.default} is not a position")
        return self

    def position(self, position_id: str | None = None) -> Position:
        """The named position, or the default one."""
        wanted = position_id or self.default
        for position in self.positions:
            if position.id == wanted:
                return position
        raise KeyError(f"dispute {self.id} has no position {wanted}")


class VisitPhase(Cited):
    """A phase of a visit and the resources it holds (used by scheduling).

    ``minutes`` is the typical span patients are told; the diary books each clinic's own
    service phase minutes (a clinic setting), so these figures never change a booking."""

    code: str
    name: str
    minutes: tuple[int, int]
    #: What the ``minutes`` figure rests on: a source that gives it, or ``clinic-practice``
    #: where no source gives a figure (the phase's ``sources`` back only what it is).
    minutes_sources: tuple[str, ...] = Field(min_length=1)
    resources: tuple[Literal["provider", "room", "device"], ...]
    message: str


class Fact(Cited):
    """A general statement about the treatment, for patient pages and staff."""

    topic: Literal[
        "about",
        "how_it_works",
        "candidates",
        "procedure",
        "results",
        "claims",
        "setting",
        "combination",
        "coding",
        "safety",
        "skin_type",
    ]
    message: str
    params: dict[str, Any] = Field(default_factory=dict)


class SeedStatement(_Model):
    """One statement of a seed document and the pack entries that represent it."""

    id: str
    file: str
    #: The seed's sentences this statement rests on, numbered as
    #: :func:`~microneedling.core.knowledge.seeds.seed_sentences` splits the file. Every
    #: sentence must be claimed by a statement or listed as one of the seed's
    #: ``not_statements``, so a statement dropped from the pack leaves its sentence unclaimed.
    sentences: tuple[Annotated[int, Field(ge=1)], ...] = Field(min_length=1)
    says: str
    clinical: bool = True
    entries: tuple[str, ...] = ()
    feature: str = ""

    @model_validator(mode="after")
    def _mapped(self) -> SeedStatement:
        if self.clinical and not self.entries:
            raise ValueError(f"seed statement {self.id} is clinical but maps to no entry")
        if not self.clinical and not (self.entries or self.feature):
            raise ValueError(f"seed statement {self.id} names neither an entry nor a feature")
        return self


class Codes(_Model):
    """The vocabularies an intake and a side-effect report may use."""

    conditions: tuple[Code, ...]
    medications: tuple[Code, ...]
    procedures: tuple[Code, ...]
    allergies: tuple[Code, ...]


class Policy(_Model):
    """A clinic's chosen positions on disputes and protocols (default: the pack's defaults)."""

    positions: dict[str, str] = Field(default_factory=dict)
    protocols: dict[str, str] = Field(default_factory=dict)


class PackData(_Model):
    """The whole knowledge pack as read from its files, validated field by field."""

    version: str
    sources: tuple[Source, ...]
    codes: Codes
    areas: tuple[Area, ...]
    indications: tuple[Indication, ...]
    precautions: tuple[Precaution, ...]
    rules: tuple[Rule, ...]
    holds: tuple[Hold, ...]
    care: tuple[CareItem, ...]
    recovery: tuple[RecoveryStage, ...]
    results: tuple[ResultMilestone, ...]
    symptoms: tuple[Symptom, ...]
    scales: tuple[Scale, ...]
    disputes: tuple[Dispute, ...]
    visit: tuple[VisitPhase, ...]
    facts: tuple[Fact, ...]
    seed_statements: tuple[SeedStatement, ...]
