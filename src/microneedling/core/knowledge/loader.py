"""Load the knowledge pack from its TOML files, validate it whole, and index it.

Validation happens in two steps: pydantic checks each entry's shape, then
:func:`_cross_check` checks that every reference (source ids, codes, areas, precautions,
disputes, seed statements) points at something that exists, and reports every problem at
once so a broken pack is fixed in one pass.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from microneedling.core.errors import PackError
from microneedling.core.knowledge.models import (
    ACTION_ORDER,
    Area,
    CareItem,
    Code,
    Dispute,
    Indication,
    PackData,
    Policy,
    Position,
    Precaution,
    ResultMilestone,
    Rule,
    Symptom,
)

#: Top-level keys of the pack files that hold a list of entries.
_LIST_KEYS = (
    "sources",
    "areas",
    "indications",
    "precautions",
    "rules",
    "holds",
    "care",
    "recovery",
    "results",
    "symptoms",
    "scales",
    "disputes",
    "visit",
    "facts",
    "seed_statements",
)
_CODE_KINDS = ("conditions", "medications", "procedures", "allergies")


@dataclass(frozen=True)
class Pack:
    """The validated pack with the look-ups the engines need."""

    data: PackData
    areas: dict[str, Area] = field(default_factory=dict)
    indications: dict[str, Indication] = field(default_factory=dict)
    precautions: dict[str, Precaution] = field(default_factory=dict)
    symptoms: dict[str, Symptom] = field(default_factory=dict)
    disputes: dict[str, Dispute] = field(default_factory=dict)
    codes: dict[str, dict[str, Code]] = field(default_factory=dict)
    medication_classes: frozenset[str] = frozenset()
    entry_ids: frozenset[str] = frozenset()

    @property
    def version(self) -> str:
        """The pack's version string."""
        return self.data.version

    def position(self, dispute_id: str, policy: Policy | None = None) -> Position:
        """The position a policy chose on a dispute, or the pack's default."""
        chosen = policy.positions.get(dispute_id) if policy else None
        return self.disputes[dispute_id].position(chosen)

    def policy_problems(self, policy: Policy) -> dict[str, str]:
        """Why a policy does not fit this pack, keyed ``positions.<dispute>`` or
        ``protocols.<concern>``; empty when every choice names something the pack holds."""
        problems: dict[str, str] = {}
        for dispute_id, position_id in policy.positions.items():
            dispute = self.disputes.get(dispute_id)
            if dispute is None:
                problems[f"positions.{dispute_id}"] = "the knowledge pack has no such dispute"
            elif position_id not in {p.id for p in dispute.positions}:
                problems[f"positions.{dispute_id}"] = f"{position_id!r} is not one of its positions"
        for code, protocol_id in policy.protocols.items():
            indication = self.indications.get(code)
            if indication is None:
                problems[f"protocols.{code}"] = "the knowledge pack has no such concern"
            elif protocol_id not in {p.id for p in indication.protocols}:
                problems[f"protocols.{code}"] = f"{protocol_id!r} is not one of its protocols"
        return problems

    def refused_concerns(
        self, indications: Iterable[str], policy: Policy | None = None
    ) -> dict[str, str]:
        """The concerns among ``indications`` that the chosen positions rule out, each with
        the position's summary as the reason.

        A position may name concerns (``params.indications``) that it forbids treating: under
        seed-004's literal reading of scars, a course for acne scars means the patient has
        scars, whatever the intake's conditions say."""
        wanted = set(indications)
        refused: dict[str, str] = {}
        for dispute in self.disputes.values():
            position = self.position(dispute.id, policy)
            for code in position.params.get("indications", ()):
                if code in wanted:
                    refused.setdefault(code, position.summary)
        return refused

    def treating_roles(self, policy: Policy | None = None) -> tuple[str, ...] | None:
        """The provider roles that may do the needling under the chosen position on who
        performs it (``dispute.who_performs``), or None when any provider may."""
        dispute = self.disputes.get("dispute.who_performs")
        if dispute is None:
            return None
        roles = self.position(dispute.id, policy).params.get("roles")
        return None if roles is None else tuple(roles)

    def care_items(self, policy: Policy | None = None) -> tuple[CareItem, ...]:
        """The pre-care and aftercare instructions as a clinic's policy has them.

        An instruction tied to a dispute (when makeup may go back on) takes its end
        (``hours``) and its wording (``message``) from the position the policy chose, or from
        the default position."""
        items = []
        for item in self.data.care:
            if item.dispute is None:
                items.append(item)
                continue
            params = self.position(item.dispute, policy).params
            update = {"to_hours": params["hours"], "message": params["message"]}
            items.append(item.model_copy(update=update))
        return tuple(items)

    def result_items(self, policy: Policy | None = None) -> tuple[ResultMilestone, ...]:
        """When results show, as a clinic's policy has it: a milestone tied to a dispute
        takes its days and wording from the chosen position, or from the default one."""
        items = []
        for item in self.data.results:
            if item.dispute is None:
                items.append(item)
                continue
            params = self.position(item.dispute, policy).params
            update = {key: params[key] for key in ("from_day", "to_day", "message")}
            items.append(item.model_copy(update=update))
        return tuple(items)

    def area_lineage(self, code: str) -> tuple[str, ...]:
        """The area and its ancestors (``face.periorbital`` → itself, ``face``)."""
        chain = [code]
        while (parent := self.areas[chain[-1]].parent) is not None:
            chain.append(parent)
        return tuple(chain)

    def areas_overlap(self, first: str, second: str) -> bool:
        """Whether two areas share skin: equal, or one lies inside the other."""
        return first in self.area_lineage(second) or second in self.area_lineage(first)

    def skin_shared(self, first: str, second: str) -> bool:
        """:meth:`areas_overlap` for codes read from stored rows, which may name an area the
        pack no longer has: such a code shares skin only with itself."""
        if first not in self.areas or second not in self.areas:
            return first == second
        return self.areas_overlap(first, second)

    @property
    def treatment_gap_days(self) -> int:
        """The fewest days any protocol allows between two treatments of the same skin:
        the least a patient's treatments from different courses or visits must be apart."""
        return min(p.gap.min for i in self.indications.values() for p in i.protocols)

    def medication_matches(self, code: str, wanted: Iterable[str]) -> bool:
        """Whether a medication code is one of ``wanted`` directly or through its classes."""
        wanted = set(wanted)
        if code in wanted:
            return True
        return bool(wanted.intersection(self.codes["medications"][code].classes))


def _read_files(folder: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {key: [] for key in _LIST_KEYS}
    merged["codes"] = {kind: [] for kind in _CODE_KINDS}
    for path in sorted(folder.glob("*.toml")):
        with path.open("rb") as handle:
            try:
                content = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise PackError(f"{path.name}: {error}") from error
        for key, value in content.items():
            if key == "version":
                merged["version"] = value
            elif key == "codes":
                for kind, entries in value.items():
                    if kind not in merged["codes"]:
                        raise PackError(f"{path.name}: unknown code kind {kind!r}")
                    merged["codes"][kind].extend(entries)
            elif key in merged:
                merged[key].extend(value)
            else:
                raise PackError(f"{path.name}: unknown top-level key {key!r}")
    return merged


def _entry_groups(data: PackData) -> tuple[tuple[Any, ...], ...]:
    """The pack's kinds of cited, graded entries (disputes and protocols aside)."""
    return (
        data.areas,
        data.indications,
        data.precautions,
        data.rules,
        data.holds,
        data.care,
        data.recovery,
        data.results,
        data.symptoms,
        data.scales,
        data.visit,
        data.facts,
    )


def _cited_entries(data: PackData) -> Iterable[tuple[str, tuple[str, ...]]]:
    for group in _entry_groups(data):
        for entry in group:
            yield entry.id, entry.sources
    for indication in data.indications:
        for protocol in indication.protocols:
            yield protocol.id, protocol.sources
            for adjustment in protocol.skin_type:
                yield f"{protocol.id} (skin type)", adjustment.sources
    for phase in data.visit:
        yield f"{phase.id} (minutes)", phase.minutes_sources
    for dispute in data.disputes:
        for position in dispute.positions:
            yield f"{dispute.id}.{position.id}", position.sources


def _graded_entries(data: PackData) -> Iterable[tuple[str, tuple[str, ...], str]]:
    protocols = tuple(p for indication in data.indications for p in indication.protocols)
    for group in (*_entry_groups(data), protocols):
        for entry in group:
            yield entry.id, entry.sources, entry.grade
    for dispute in data.disputes:
        for position in dispute.positions:
            yield f"{dispute.id}.{position.id}", position.sources, position.grade


#: Source kinds that count as published evidence for the ``consensus`` and ``single``
#: grades: papers, and drug or device labelling (the pack grades a label alone ``single``).
PUBLISHED_KINDS = frozenset({"published", "labelling"})


def _grade_problems(data: PackData) -> list[str]:
    """Each grade must be what the entry's own citations can support, as the pack defines
    the grades (docs/knowledge.md, shared/CLINICAL-NOTES.md): ``consensus`` needs two or more
    published sources, ``single`` at least one, ``seed`` a seed document and
    ``clinic-pages`` a clinic or vendor page. Otherwise a grade drifts from its citations."""
    kind = {source.id: source.kind for source in data.sources}
    problems: list[str] = []
    for entry_id, cited, grade in _graded_entries(data):
        kinds = [kind.get(source) for source in cited]
        published = sum(k in PUBLISHED_KINDS for k in kinds)
        if grade == "consensus" and published < 2:
            problems.append(
                f"{entry_id}: graded consensus but cites {published} published source(s); "
                "consensus needs two or more"
            )
        elif grade == "single" and published < 1:
            problems.append(f"{entry_id}: graded single but cites no published source")
        elif grade == "seed" and "seed" not in kinds:
            problems.append(f"{entry_id}: graded seed but cites no seed document")
        elif grade == "clinic-pages" and "clinic-pages" not in kinds:
            problems.append(f"{entry_id}: graded clinic-pages but cites no clinic pages")
    return problems


def _all_entry_ids(data: PackData) -> list[str]:
    ids = [entry_id for entry_id, _ in _cited_entries(data) if " " not in entry_id]
    ids += [dispute.id for dispute in data.disputes]
    return ids


def _cross_check(data: PackData) -> list[str]:
    problems: list[str] = []
    source_ids = {source.id for source in data.sources}
    for entry_id, cited in _cited_entries(data):
        problems += [f"{entry_id}: unknown source {s!r}" for s in cited if s not in source_ids]

    ids = _all_entry_ids(data)
    problems += [f"duplicate entry id {i!r}" for i, n in Counter(ids).items() if n > 1]
    known_ids = set(ids)

    area_codes = {area.code for area in data.areas}
    for area in data.areas:
        if area.parent is not None and area.parent not in area_codes:
            problems.append(f"{area.id}: unknown parent area {area.parent!r}")
        if area.procedure_minutes[0] > area.procedure_minutes[1]:
            problems.append(f"{area.id}: procedure minutes out of order")

    codes = {kind: {c.code for c in getattr(data.codes, kind)} for kind in _CODE_KINDS}
    classes = {cls for c in data.codes.medications for cls in c.classes}
    disputes = {dispute.id for dispute in data.disputes}
    precautions = {precaution.id for precaution in data.precautions}
    kind_of = {
        "condition": "conditions",
        "medication": "medications",
        "procedure": "procedures",
        "allergy": "allergies",
    }
    positions = {d.id: d.positions for d in data.disputes}
    for rule in data.rules:
        vocabulary = codes.get(kind_of.get(rule.when, ""), set())
        if rule.when == "medication":
            vocabulary = vocabulary | classes
        problems += [f"{rule.id}: unknown code {c!r}" for c in rule.codes if c not in vocabulary]
        for position in positions.get(rule.dispute or "", ()):
            problems += [
                f"{rule.id}: position {position.id} names unknown code {c!r}"
                for c in position.params.get("codes", ())
                if c not in vocabulary
            ]
            if position.params.get("scope", "area") not in ("area", "systemic"):
                problems.append(f"{rule.id}: position {position.id} names an unknown scope")
        if rule.when in kind_of and not rule.codes:
            problems.append(f"{rule.id}: a {rule.when} rule needs codes")
        if (
            rule.outcome == "deferred"
            and rule.when in {"medication", "procedure"}
            and not (rule.wait or rule.dispute)
        ):
            problems.append(f"{rule.id}: a deferring {rule.when} rule needs a wait")
        problems += [
            f"{rule.id}: unknown precaution {p!r}" for p in rule.precautions if p not in precautions
        ]
    for hold in data.holds:
        problems += [
            f"{hold.id}: unknown medication {c!r}"
            for c in hold.codes
            if c not in codes["medications"] | classes
        ]
    disputed: list[Rule | CareItem | ResultMilestone | Symptom] = [
        *data.rules,
        *data.care,
        *data.results,
        *data.symptoms,
    ]
    for item in disputed:
        if item.dispute is not None and item.dispute not in disputes:
            problems.append(f"{item.id}: unknown dispute {item.dispute!r}")
    protocol_owner = {p.id: i.code for i in data.indications for p in i.protocols}
    for dispute in data.disputes:
        for position in dispute.positions:
            named = position.params.get("protocols", ())
            problems += [
                f"{dispute.id}.{position.id}: unknown protocol {p!r}"
                for p in named
                if p not in protocol_owner
            ]
            owners = [protocol_owner[p] for p in named if p in protocol_owner]
            problems += [
                f"{dispute.id}.{position.id}: two protocols for {code}"
                for code, n in Counter(owners).items()
                if n > 1
            ]
        problems += [
            f"{dispute.id}.{p.id}: floor {p.params['floor']!r} is not an action"
            for p in dispute.positions
            if "floor" in p.params and p.params["floor"] not in ACTION_ORDER
        ]
    indication_codes = {indication.code for indication in data.indications}
    for dispute in data.disputes:
        for position in dispute.positions:
            problems += [
                f"{dispute.id}.{position.id}: unknown indication {code!r}"
                for code in position.params.get("indications", ())
                if code not in indication_codes
            ]
    problems += _disputed_care_problems(data)
    problems += _disputed_result_problems(data)
    for indication in data.indications:
        problems += [
            f"{indication.id}: unknown area {a!r}" for a in indication.areas if a not in area_codes
        ]
    indication_codes = {indication.code for indication in data.indications}
    for scale in data.scales:
        problems += [
            f"{scale.id}: unknown indication {i!r}"
            for i in scale.indications
            if i not in indication_codes
        ]

    problems += [
        f"{rule.id}: graded disputed but names no dispute"
        for rule in data.rules
        if rule.grade == "disputed" and rule.dispute is None
    ]
    problems += _seed_statement_problems(data, known_ids)
    problems += _grade_problems(data)
    problems += _inert_dispute_problems(data)
    return problems


#: Position params that code reads without an entry naming the dispute: the course planner
#: (``protocols``) and the diary (``roles``).
_ENGINE_PARAMS = frozenset({"protocols", "roles"})


def _inert_dispute_problems(data: PackData) -> list[str]:
    """A clinic's choice of position must change something: each dispute is named by a
    rule, care item, result or symptom, or its positions give what an engine reads directly.
    Otherwise the policy form offers a choice that changes nothing (as downtime once did)."""
    items: list[Rule | CareItem | ResultMilestone | Symptom] = [
        *data.rules,
        *data.care,
        *data.results,
        *data.symptoms,
    ]
    named = {item.dispute for item in items if item.dispute is not None}
    return [
        f"{dispute.id}: no entry names it and no position gives what an engine reads, "
        "so choosing a position would change nothing"
        for dispute in data.disputes
        if dispute.id not in named
        and not any(_ENGINE_PARAMS.intersection(p.params) for p in dispute.positions)
    ]


def _disputed_care_problems(data: PackData) -> list[str]:
    """A care item tied to a dispute is timed and worded by the chosen position, so every
    position must give both, and the item itself must say what the default says."""
    problems: list[str] = []
    disputes = {dispute.id: dispute for dispute in data.disputes}
    for item in data.care:
        dispute = disputes.get(item.dispute or "")
        if dispute is None:
            continue
        for position in dispute.positions:
            where = f"{item.id}: position {position.id} of {dispute.id}"
            hours = position.params.get("hours")
            if not isinstance(hours, int) or isinstance(hours, bool):
                problems.append(f"{where} needs hours")
            if not isinstance(position.params.get("message"), str):
                problems.append(f"{where} needs a message")
        default = dispute.position().params
        if (item.to_hours, item.message) != (default.get("hours"), default.get("message")):
            problems.append(f"{item.id}: its hours and message differ from {dispute.id}'s default")
    return problems


def _disputed_result_problems(data: PackData) -> list[str]:
    """A result milestone tied to a dispute takes its days and wording from the chosen
    position: every position gives them, and the milestone says what the default says."""
    problems: list[str] = []
    disputes = {dispute.id: dispute for dispute in data.disputes}
    for item in data.results:
        dispute = disputes.get(item.dispute or "")
        if dispute is None:
            continue
        for position in dispute.positions:
            params = position.params
            first, last = params.get("from_day"), params.get("to_day")
            if not (isinstance(first, int) and isinstance(last, int) and 0 <= first <= last):
                problems.append(f"{item.id}: position {position.id} needs from_day <= to_day")
            if not isinstance(params.get("message"), str):
                problems.append(f"{item.id}: position {position.id} needs a message")
        default = dispute.position().params
        mine = (item.from_day, item.to_day, item.message)
        if mine != (default.get("from_day"), default.get("to_day"), default.get("message")):
            problems.append(f"{item.id}: its days and message differ from {dispute.id}'s default")
    return problems


def _seed_statement_problems(data: PackData, known_ids: set[str]) -> list[str]:
    """Each statement of a seed maps to entries that exist, and a clinical one to at least
    one entry citing that very seed (so a fact cannot drift away from where it came from)."""
    problems: list[str] = []
    seed_of_file = {source.file: source.id for source in data.sources if source.kind == "seed"}
    cites: dict[str, set[str]] = {}
    for entry_id, cited in _cited_entries(data):
        cites.setdefault(entry_id, set()).update(cited)
    for dispute in data.disputes:  # a dispute cites what any of its positions cites
        cites[dispute.id] = {s for position in dispute.positions for s in position.sources}
    for statement in data.seed_statements:
        seed = seed_of_file.get(statement.file)
        if seed is None:
            problems.append(f"seed statement {statement.id}: unknown seed file {statement.file}")
        problems += [
            f"seed statement {statement.id}: unknown entry {e!r}"
            for e in statement.entries
            if e not in known_ids
        ]
        if (
            seed is not None
            and statement.clinical
            and not any(seed in cites.get(e, set()) for e in statement.entries)
        ):
            problems.append(
                f"seed statement {statement.id}: none of its entries cites {seed} "
                f"({statement.file})"
            )
    covered = {statement.file for statement in data.seed_statements}
    problems += [f"seed file {f} has no statements mapped" for f in set(seed_of_file) - covered]
    return problems


def build_pack(raw: dict[str, Any]) -> Pack:
    """Validate raw pack content (as read from the files) and index it."""
    try:
        data = PackData.model_validate(raw)
    except ValidationError as error:
        lines = [f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()]
        raise PackError("knowledge pack is invalid:\n" + "\n".join(lines)) from error
    problems = _cross_check(data)
    if problems:
        raise PackError("knowledge pack is invalid:\n" + "\n".join(problems))
    codes = {kind: {code.code: code for code in getattr(data.codes, kind)} for kind in _CODE_KINDS}
    return Pack(
        data=data,
        areas={area.code: area for area in data.areas},
        indications={indication.code: indication for indication in data.indications},
        precautions={precaution.id: precaution for precaution in data.precautions},
        symptoms={symptom.code: symptom for symptom in data.symptoms},
        disputes={dispute.id: dispute for dispute in data.disputes},
        codes=codes,
        medication_classes=frozenset(c for m in data.codes.medications for c in m.classes),
        entry_ids=frozenset(_all_entry_ids(data)),
    )


def read_pack(folder: Path) -> Pack:
    """Read, validate and index the pack files in ``folder``."""
    return build_pack(_read_files(folder))


@lru_cache(maxsize=1)
def load_pack() -> Pack:
    """The pack shipped with the product, read once per process."""
    folder = Path(str(resources.files("microneedling.core.knowledge") / "data"))
    return read_pack(folder)
