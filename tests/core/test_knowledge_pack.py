"""The knowledge pack: it loads, its references hold, and it covers what the product needs."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from microneedling.core.errors import PackError
from microneedling.core.knowledge import Pack
from microneedling.core.knowledge.docs import render_knowledge_doc
from microneedling.core.knowledge.loader import _read_files, build_pack
from microneedling.core.knowledge.models import Policy
from microneedling.core.knowledge.seeds import seed_coverage_problems, seed_sentences

DATA = Path(__file__).parents[2] / "src/microneedling/core/knowledge/data"
SEEDS = Path(__file__).parents[3] / "shared/seeds"
REQUIRED_CODES = {
    "conditions": [
        "active_infection",
        "herpes_simplex",
        "open_wound",
        "psoriasis",
        "eczema",
        "rosacea",
        "active_acne",
        "keloid_scarring",
        "skin_cancer",
        "bleeding_disorder",
        "diabetes",
        "immunosuppression",
        "sunburn",
    ],
    "medications": [
        "isotretinoin",
        "topical_retinoid",
        "ibuprofen",
        "nsaid",
        "aspirin",
        "anticoagulant",
    ],
    "procedures": [
        "radiation_therapy",
        "botox",
        "dermal_filler",
        "chemical_peel",
        "laser_resurfacing",
    ],
    "allergies": ["stainless_steel", "nickel", "topical_anesthetic"],
}
REQUIRED_INDICATIONS = [
    "fine_lines",
    "wrinkles",
    "photo_ageing",
    "acne_scars",
    "other_scars",
    "stretch_marks",
    "hyperpigmentation",
    "melasma",
    "enlarged_pores",
    "texture_tone",
    "reduced_elasticity",
    "prevention",
]
REQUIRED_AREAS = [
    "face",
    "neck",
    "chest",
    "back",
    "legs",
    "arms",
    "abdomen",
    "hands",
    "face.periorbital",
    "face.forehead",
    "face.nose",
]


def raw_pack() -> dict:
    return copy.deepcopy(_read_files(DATA))


def test_shipped_pack_validates(pack: Pack) -> None:
    assert pack.version
    assert len(pack.entry_ids) > 150


def test_entry_citing_an_unknown_source_fails_validation() -> None:
    raw = raw_pack()
    raw["rules"][0]["sources"] = ["no-such-source"]
    with pytest.raises(PackError, match="unknown source 'no-such-source'"):
        build_pack(raw)


def test_protocol_citing_an_unknown_source_fails_validation() -> None:
    raw = raw_pack()
    raw["indications"][0]["protocols"][0]["sources"] = ["invented-2031"]
    with pytest.raises(PackError, match="invented-2031"):
        build_pack(raw)


def test_duplicate_entry_ids_fail_validation() -> None:
    raw = raw_pack()
    raw["facts"].append(dict(raw["facts"][0]))
    with pytest.raises(PackError, match="duplicate entry id"):
        build_pack(raw)


def test_rule_with_unknown_code_fails_validation() -> None:
    raw = raw_pack()
    raw["rules"].append({**raw["rules"][-1], "id": "rule.extra", "codes": ["unobtainium"]})
    with pytest.raises(PackError, match="unknown code 'unobtainium'"):
        build_pack(raw)


def test_entry_without_grade_fails_validation() -> None:
    raw = raw_pack()
    del raw["symptoms"][0]["grade"]
    with pytest.raises(PackError, match="grade"):
        build_pack(raw)


def test_seed_statement_mapped_to_missing_entry_fails_validation() -> None:
    raw = raw_pack()
    raw["seed_statements"][0]["entries"] = ["fact.does_not_exist"]
    with pytest.raises(PackError, match=r"fact\.does_not_exist"):
        build_pack(raw)


def test_clinical_seed_statement_whose_entries_do_not_cite_its_seed_fails_validation() -> None:
    raw = raw_pack()
    statement = next(
        s for s in raw["seed_statements"] if s.get("clinical", True) and s["file"].startswith("004")
    )
    # fact.device is a real entry, but it does not cite seed-000: the mapping is refused.
    statement["file"] = "000_80433835afedf8e8.txt"
    statement["entries"] = ["fact.device"]
    with pytest.raises(PackError, match=rf"{statement['id']}: none of its entries cites seed-000"):
        build_pack(raw)


def test_a_statement_carried_by_a_dispute_counts_every_position_s_sources(pack: Pack) -> None:
    raw = raw_pack()
    statement = next(s for s in raw["seed_statements"] if s["id"] == "004.39")
    statement["entries"] = ["dispute.radiation_wait"]  # only its "recent" position cites seed-004
    assert build_pack(raw).data.seed_statements


def test_rule_graded_disputed_without_a_dispute_fails_validation() -> None:
    raw = raw_pack()
    rule = next(r for r in raw["rules"] if r["id"] == "rule.procedure.radiation")
    del rule["dispute"]
    with pytest.raises(PackError, match=r"rule\.procedure\.radiation: graded disputed"):
        build_pack(raw)


def test_an_entry_graded_consensus_on_a_seed_and_one_paper_fails_validation() -> None:
    # The pack's definition: consensus means two or more published sources agree.
    raw = raw_pack()
    symptom = next(s for s in raw["symptoms"] if s["id"] == "symptom.swelling")
    symptom.update(sources=["seed-002", "chu2021"], grade="consensus")
    with pytest.raises(
        PackError, match=re.escape("symptom.swelling: graded consensus but cites 1")
    ):
        build_pack(raw)


def test_a_dispute_position_graded_consensus_needs_two_published_sources() -> None:
    raw = raw_pack()
    dispute = next(d for d in raw["disputes"] if d["id"] == "dispute.downtime")
    dispute["positions"][0].update(sources=["seed-001", "chu2021"], grade="consensus")
    with pytest.raises(
        PackError, match=re.escape("dispute.downtime.one_to_two_days: graded consensus")
    ):
        build_pack(raw)


def test_an_entry_graded_seed_must_cite_a_seed_document() -> None:
    raw = raw_pack()
    raw["facts"][0].update(sources=["chu2021"], grade="seed")
    with pytest.raises(PackError, match="graded seed but cites no seed"):
        build_pack(raw)


def test_dispute_default_must_be_one_of_its_positions() -> None:
    raw = raw_pack()
    raw["disputes"][0]["default"] = "nobody_said_this"
    with pytest.raises(PackError, match="nobody_said_this"):
        build_pack(raw)


@pytest.mark.parametrize(
    ("position", "hours", "words"),
    [
        (None, 24, "first day"),
        ("avoid_during_downtime", 48, "first two days"),
        ("may_camouflage", 0, "hide redness"),
    ],
)
def test_the_makeup_instruction_follows_the_position_the_clinic_chose(
    pack: Pack, position: str | None, hours: int, words: str
) -> None:
    policy = Policy(positions={"dispute.makeup_after": position}) if position else None
    makeup = next(c for c in pack.care_items(policy) if c.id == "care.after.makeup")
    assert makeup.to_hours == hours
    assert words in makeup.message
    assert makeup.sources == next(c for c in pack.data.care if c.id == makeup.id).sources


@pytest.mark.parametrize(
    ("position", "hours", "words"),
    [
        (None, 168, "up to a week"),
        ("one_to_two_days", 48, "a day or two"),
        ("two_to_four_days", 96, "two to four days"),
        ("a_few_days", 72, "a few days"),
    ],
)
def test_the_downtime_patients_are_told_follows_the_position_the_clinic_chose(
    pack: Pack, position: str | None, hours: int, words: str
) -> None:
    policy = Policy(positions={"dispute.downtime": position}) if position else None
    downtime = next(c for c in pack.care_items(policy) if c.id == "care.after.downtime")
    assert downtime.to_hours == hours
    assert words in downtime.message


def test_only_the_strict_scar_position_rules_out_the_scar_concerns(pack: Pack) -> None:
    asked = ["acne_scars", "other_scars", "stretch_marks", "fine_lines"]
    assert pack.refused_concerns(asked) == {}
    strict = Policy(positions={"dispute.scars_indication_or_contraindication": "avoid_with_scars"})
    assert set(pack.refused_concerns(asked, strict)) == {"acne_scars", "other_scars"}


def test_a_position_ruling_out_an_unknown_concern_fails_validation() -> None:
    raw = raw_pack()
    dispute = next(d for d in raw["disputes"] if d["id"] == "dispute.downtime")
    dispute["positions"][0].setdefault("params", {})["indications"] = ["freckles"]
    with pytest.raises(PackError, match="unknown indication 'freckles'"):
        build_pack(raw)


def test_who_performs_is_a_dispute_defaulting_to_the_product_s_trained_provider(
    pack: Pack,
) -> None:
    dispute = pack.disputes["dispute.who_performs"]
    assert dispute.default == "trained_provider"
    assert dispute.position("doctor_or_np").sources == ("seed-004",)
    assert pack.treating_roles() is None  # by default any provider may treat
    strict = Policy(positions={"dispute.who_performs": "doctor_or_np"})
    assert pack.treating_roles(strict) == ("physician", "nurse_practitioner")
    doc = render_knowledge_doc(pack)
    assert "`dispute.who_performs`" in doc
    assert "**doctor_or_np** (seed-004)" in doc


def test_a_dispute_whose_choice_would_change_nothing_fails_validation() -> None:
    raw = raw_pack()
    downtime = next(c for c in raw["care"] if c["id"] == "care.after.downtime")
    del downtime["dispute"]  # as before: a downtime position nobody reads
    with pytest.raises(PackError, match=re.escape("dispute.downtime: no entry names it")):
        build_pack(raw)


def test_a_care_position_without_hours_fails_validation() -> None:
    raw = raw_pack()
    dispute = next(d for d in raw["disputes"] if d["id"] == "dispute.makeup_after")
    del dispute["positions"][0]["params"]["hours"]
    with pytest.raises(PackError, match=r"care\.after\.makeup: position \w+ of .* needs hours"):
        build_pack(raw)


def test_a_care_item_that_contradicts_its_default_position_fails_validation() -> None:
    raw = raw_pack()
    makeup = next(c for c in raw["care"] if c["id"] == "care.after.makeup")
    makeup["to_hours"] = 48
    with pytest.raises(PackError, match=r"differ from dispute\.makeup_after's default"):
        build_pack(raw)


def test_a_results_position_without_its_days_fails_validation() -> None:
    raw = raw_pack()
    dispute = next(d for d in raw["disputes"] if d["id"] == "dispute.results_onset")
    del dispute["positions"][0]["params"]["to_day"]
    with pytest.raises(PackError, match=r"results\.visible: position two_weeks needs from_day"):
        build_pack(raw)


@pytest.mark.parametrize(("kind", "codes"), REQUIRED_CODES.items())
def test_pack_accepts_every_code_the_intake_needs(pack: Pack, kind: str, codes: list) -> None:
    assert set(codes) <= set(pack.codes[kind])


def test_pack_has_every_indication_with_a_default_protocol(pack: Pack) -> None:
    for code in REQUIRED_INDICATIONS:
        assert pack.indications[code].default_protocol.sessions >= 1


def test_pack_has_every_area_and_thin_skin_is_shallower(pack: Pack) -> None:
    assert set(REQUIRED_AREAS) <= set(pack.areas)
    for area in pack.areas.values():
        if area.parent and area.thin_skin:
            assert area.depth_max_mm < pack.areas[area.parent].depth_max_mm


def seeds_folder() -> Path:
    """The shared seeds beside the checkout; CI must have them, a laptop may not."""
    if not SEEDS.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SEEDS} is missing: CI runs with shared/ beside the clone")
        pytest.skip("shared seeds are not beside this checkout")
    return SEEDS


def test_every_seed_file_is_a_source_and_has_mapped_statements(pack: Pack) -> None:
    seed_files = {s.file for s in pack.data.sources if s.kind == "seed"}
    assert seed_files == {p.name for p in seeds_folder().glob("*.txt")}
    mapped = {s.file for s in pack.data.seed_statements}
    assert mapped == seed_files


def _seed_texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in seeds_folder().glob("*.txt")}


def test_every_seed_sentence_is_represented_or_marked_as_stating_nothing(pack: Pack) -> None:
    assert seed_coverage_problems(pack.data, _seed_texts()) == []


@pytest.mark.parametrize(
    ("dropped", "sentence"),
    [
        ("004.36", "004_9b38e9b353877dd0.txt sentence 44"),  # avoid it during pregnancy
        ("000.23", "000_80433835afedf8e8.txt sentence 24"),  # improves for up to six months
        ("002.32", "002_273f39835b42aa2f.txt sentence 38"),  # three to six sessions
    ],
)
def test_a_dropped_seed_statement_leaves_its_sentence_unrepresented(
    dropped: str, sentence: str
) -> None:
    raw = raw_pack()
    raw["seed_statements"] = [s for s in raw["seed_statements"] if s["id"] != dropped]
    problems = seed_coverage_problems(build_pack(raw).data, _seed_texts())
    assert problems == [f"{sentence}: no seed statement represents it"]


def test_a_statement_pointing_past_the_end_of_its_seed_is_reported() -> None:
    raw = raw_pack()
    raw["seed_statements"][0]["sentences"] = [1, 999]
    problems = seed_coverage_problems(build_pack(raw).data, _seed_texts())
    assert any("sentence 999: out of range" in p for p in problems)


def test_a_sentence_cannot_be_both_a_statement_and_stating_nothing() -> None:
    raw = raw_pack()
    seed = next(s for s in raw["sources"] if s.get("file", "").startswith("004"))
    seed["not_statements"] = [*seed["not_statements"], 44]
    problems = seed_coverage_problems(build_pack(raw).data, _seed_texts())
    assert problems == [
        "004_9b38e9b353877dd0.txt sentence 44: claimed by a statement and listed as stating nothing"
    ]


def test_seed_sentences_split_after_closing_punctuation_but_not_after_titles() -> None:
    text = "Dr. Petr sees patients at U.S. Dermatology. It is quick!\n\n  • Acne scars\nWhy?"
    assert seed_sentences(text) == [
        "Dr. Petr sees patients at U.S. Dermatology.",
        "It is quick!",
        "• Acne scars",
        "Why?",
    ]


def test_the_stated_visit_length_covers_every_phase_the_diary_books(pack: Pack) -> None:
    """Patients are told to allow at least two hours (seed-004); the phases a visit books
    must fit inside that, and the needling minutes must be the ones the facts give."""
    duration = next(f for f in pack.data.facts if f.id == "fact.duration")
    phases = {phase.code: phase for phase in pack.data.visit}
    assert tuple(duration.params["procedure_minutes"]) == tuple(phases["procedure"].minutes)
    longest = sum(phase.minutes[1] for phase in pack.data.visit)
    assert longest <= duration.params["office_minutes_min"] == 120
    assert "at least two hours" in duration.message


def test_visit_minutes_no_source_gives_are_marked_as_the_clinic_s_own_practice(
    pack: Pack,
) -> None:
    phases = {phase.code: phase for phase in pack.data.visit}
    # Seed-003 leaves the cream "a few minutes"; no source gives 20–45 minutes of numbing.
    assert phases["numbing"].minutes == (20, 45)
    assert phases["numbing"].minutes_sources == ("clinic-practice",)
    # The needling's 15–30 minutes is the seeds' own figure (000, 001, 004).
    assert set(phases["procedure"].minutes_sources) == {"seed-000", "seed-001", "seed-004"}
    kinds = {source.id: source.kind for source in pack.data.sources}
    assert kinds["clinic-practice"] == "clinic-practice"
    doc = render_knowledge_doc(pack)
    assert "| `numbing` | 20–45 | clinic-practice |" in doc


def test_seed_003_s_few_minutes_of_numbing_reaches_patients_beside_the_clinic_s_practice(
    pack: Pack,
) -> None:
    wait = next(f for f in pack.data.facts if f.id == "fact.numbing_wait")
    assert {"seed-003", "clinic-practice"} <= set(wait.sources)
    assert "a few minutes" in wait.message
    assert "20 to 45 minutes" in wait.message
    statement = next(s for s in pack.data.seed_statements if s.id == "003.03")
    assert "fact.numbing_wait" in statement.entries


def test_visit_minutes_resting_on_an_unknown_source_fail_validation() -> None:
    raw = raw_pack()
    raw["visit"][1]["minutes_sources"] = ["nurses-say-so"]
    with pytest.raises(PackError, match="nurses-say-so"):
        build_pack(raw)


def test_seed_001_body_areas_are_treatable_for_stretch_marks_and_acne_scars(pack: Pack) -> None:
    # Seed 001: stretch marks and acne scars on the chest, back, neck and legs.
    for indication in ("stretch_marks", "acne_scars"):
        assert {"chest", "back", "neck", "legs"} <= set(pack.indications[indication].areas)


def test_each_recorded_conflict_has_a_dispute(pack: Pack) -> None:
    for dispute in (
        "dispute.session_spacing",
        "dispute.makeup_after",
        "dispute.scars_indication_or_contraindication",
        "dispute.results_onset",
        "dispute.isotretinoin_wait",
        "dispute.radiation_wait",
        "dispute.inflammatory_skin_disease",
    ):
        assert len(pack.disputes[dispute].positions) >= 2


def _words(text: str) -> list[str]:
    """Lower-case words without punctuation, so "tiny," and "tiny" compare equal."""
    return re.findall(r"[a-z0-9]+", text.lower().replace("-", " "))


def _runs(words: list[str], n: int = 8) -> set[str]:
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _strings(value: object) -> Iterator[str]:
    """Every string anywhere in a pack file's content (messages, summaries, names...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def test_pack_and_pages_do_not_copy_seed_sentences() -> None:
    """Facts carry over, sentences do not: no 8-word run of a seed appears in any text of
    the pack (every file, every field) or in any page or message template."""
    seed_runs: set[str] = set()
    for path in seeds_folder().glob("*.txt"):
        seed_runs |= _runs(_words(path.read_text(encoding="utf-8")))
    texts = list(_strings(_read_files(DATA)))
    templates = Path(__file__).parents[2] / "src/microneedling"
    texts += [p.read_text(encoding="utf-8") for p in templates.rglob("templates/**/*.*")]
    assert len(texts) > 500  # the walk really reached the pack and the templates
    copied = [(text[:80], sorted(_runs(_words(text)) & seed_runs)) for text in texts]
    assert [c for c in copied if c[1]] == []


def test_the_copy_check_sees_through_punctuation_and_case() -> None:
    seed = "Microneedling uses tiny, sterile needles to make tiny controlled punctures in the skin."
    copy_ = "It USES tiny sterile needles -- to make tiny controlled punctures; in the skin!"
    assert _runs(_words(seed)) & _runs(_words(copy_))


def test_knowledge_doc_is_generated_from_the_current_pack(pack: Pack) -> None:
    doc = Path(__file__).parents[2] / "docs/knowledge.md"
    assert doc.read_text(encoding="utf-8") == render_knowledge_doc(pack), (
        "docs/knowledge.md is stale: run `make docs`"
    )
