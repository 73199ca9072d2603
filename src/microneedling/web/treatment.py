"""The treatment pages' content, assembled from the knowledge pack (never written in a view).

Every sentence a patient reads about the treatment comes from a pack entry, so it carries the
entry's sources and changes when the pack does. Claims the pack marks as disputed (the
seed's collagen percentage) are left out.

The page is the chain's, not one clinic's: where the sources differ it gives the pack's
default positions and says so, naming the questions a clinic may answer differently (each
patient's own care page follows their clinic's choices).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from microneedling.core.knowledge import Pack, load_pack
from microneedling.core.knowledge.models import CareItem, Fact, RecoveryStage, ResultMilestone

#: Fact topics never shown to patients: unverified claims and billing codes.
HIDDEN_TOPICS = frozenset({"claims", "coding"})

FREQUENCY_WORDS = {
    "common": "Common",
    "occasional": "Sometimes",
    "rare": "Rare",
    "very_rare": "Very rare",
    "not_expected": "Not expected",
}


@dataclass(frozen=True)
class Line:
    """One statement with the pack entry it comes from (shown as a source note)."""

    text: str
    entry: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Concern:
    """A skin concern the treatment helps, with its usual course."""

    code: str
    name: str
    description: str
    sessions: int
    sessions_range: tuple[int, int]
    gap_weeks: tuple[int, int]
    areas: tuple[str, ...]


@dataclass(frozen=True)
class SideEffect:
    """A side effect, how often it happens and what it means."""

    name: str
    frequency: str
    message: str
    red_flag: bool


@dataclass(frozen=True)
class Question:
    """A frequently asked question answered from pack entries."""

    question: str
    answers: tuple[Line, ...]


@dataclass(frozen=True)
class TreatmentPage:
    """Everything the treatment page shows, in reading order."""

    about: tuple[Line, ...]
    how_it_works: tuple[Line, ...]
    concerns: tuple[Concern, ...]
    candidates: tuple[Line, ...]
    areas: tuple[tuple[str, str], ...]
    visit: tuple[tuple[str, tuple[int, int], str], ...]
    on_the_day: tuple[Line, ...]
    recovery: tuple[tuple[str, Line], ...]
    results: tuple[Line, ...]
    side_effects: tuple[SideEffect, ...]
    before: tuple[Line, ...]
    after: tuple[Line, ...]
    faq: tuple[Question, ...]
    #: The questions the sources answer differently; the page gives each one's default.
    defaults_for: tuple[str, ...] = ()


def _line(entry_id: str, text: str, sources: tuple[str, ...]) -> Line:
    return Line(text=text, entry=entry_id, sources=sources)


def _facts(pack: Pack, *topics: str) -> tuple[Line, ...]:
    return tuple(
        _line(f.id, f.message, f.sources)
        for f in pack.data.facts
        if f.topic in topics and f.topic not in HIDDEN_TOPICS
    )


def _days(first: int, last: int) -> str:
    if first == last:
        return "The day itself" if first == 0 else f"Day {first}"
    return f"Days {first}–{last}"


@lru_cache(maxsize=1)
def treatment_page() -> TreatmentPage:
    """The treatment page for the loaded pack (built once per process, like the pack)."""
    pack = load_pack()
    data = pack.data
    concerns = []
    for indication in data.indications:
        protocol = next((p for p in indication.protocols if p.default), indication.protocols[0])
        concerns.append(
            Concern(
                code=indication.code,
                name=indication.name,
                description=indication.description,
                sessions=protocol.sessions,
                sessions_range=protocol.sessions_range,
                gap_weeks=(protocol.gap.min // 7, protocol.gap.max // 7),
                areas=tuple(pack.areas[a].name for a in indication.areas if a in pack.areas),
            )
        )
    care = {
        phase: [c for c in data.care if c.phase == phase] for phase in ("before", "day_of", "after")
    }
    page = TreatmentPage(
        about=_facts(pack, "about"),
        how_it_works=_facts(pack, "how_it_works"),
        concerns=tuple(concerns),
        candidates=_facts(pack, "candidates", "skin_type", "setting"),
        areas=tuple((a.name, a.note) for a in data.areas if a.parent is None),
        visit=tuple((v.name, v.minutes, v.message) for v in data.visit),
        on_the_day=_facts(pack, "procedure")
        + tuple(_line(c.id, c.message, c.sources) for c in care["day_of"]),
        recovery=tuple(
            (_days(r.from_day, r.to_day), _line(r.id, r.message, r.sources)) for r in data.recovery
        ),
        results=tuple(_line(r.id, r.message, r.sources) for r in data.results)
        + _facts(pack, "results"),
        side_effects=tuple(
            SideEffect(
                name=s.name,
                frequency=FREQUENCY_WORDS[s.frequency],
                message=s.message,
                red_flag=s.red_flag,
            )
            for s in data.symptoms
        ),
        before=tuple(_line(c.id, c.message, c.sources) for c in care["before"]),
        after=tuple(_line(c.id, c.message, c.sources) for c in care["after"]),
        faq=_faq(pack),
        defaults_for=tuple(dispute.question for dispute in data.disputes),
    )
    return page


def _by_id(pack: Pack, *ids: str) -> tuple[Line, ...]:
    entries: dict[str, Fact | CareItem | RecoveryStage | ResultMilestone] = {
        **{f.id: f for f in pack.data.facts},
        **{c.id: c for c in pack.data.care},
        **{r.id: r for r in pack.data.recovery},
        **{r.id: r for r in pack.data.results},
    }
    return tuple(_line(i, entries[i].message, entries[i].sources) for i in ids if i in entries)


def _faq(pack: Pack) -> tuple[Question, ...]:
    """Questions patients ask, each answered by the pack entries that settle it."""
    asked = (
        ("Does it hurt?", ("fact.comfort", "care.day_of.sensation")),
        ("How long does a visit take?", ("fact.duration", "care.before.time")),
        (
            "How much downtime is there?",
            ("care.after.downtime", "recovery.day1", "recovery.days2_4"),
        ),
        ("When will I see results?", ("results.visible", "results.collagen_building")),
        ("Can I wear makeup afterwards?", ("care.after.makeup",)),
        ("Is it safe for darker skin?", ("fact.candidates_all_skin_types", "fact.skin_of_colour")),
        ("Can I do it at home instead?", ("fact.professional_setting",)),
        ("Can it be combined with other treatments?", ("fact.combination",)),
        ("How long do results last?", ("results.durability", "fact.maintenance_reviews")),
    )
    answered = ((question, _by_id(pack, *ids)) for question, ids in asked)
    return tuple(Question(question, lines) for question, lines in answered if lines)
