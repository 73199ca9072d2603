"""The seed documents as numbered sentences, and whether the pack accounts for every one.

A seed statement names the sentences of its seed it rests on; a seed source lists the
sentences that state nothing (headings, captions). :func:`seed_coverage_problems` checks both
against the seed texts, so dropping a statement from the pack, or pointing one at the wrong
sentence, is reported. The texts live outside the package (``shared/seeds/``), so the caller
reads them and passes them in: this module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from microneedling.core.knowledge.models import PackData

#: A sentence ends at ``.``, ``!`` or ``?`` followed by white space.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=\S)")
#: A full stop that ends one of these does not end the sentence ("Dr. Petr", "U.S. Dermatology").
_ABBREVIATION = re.compile(r"(?:^|\s)(?:Dr|Mr|Mrs|Ms|St|U\.S)\.$")


def seed_sentences(text: str) -> list[str]:
    """The sentences of a seed document in order (number ``n`` is ``result[n - 1]``).

    Every non-blank line is at least one sentence (a heading, a list item, a link), and a
    line holding several sentences is split after their closing punctuation.
    """
    sentences: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        parts: list[str] = []
        for piece in _BOUNDARY.split(line):
            if parts and _ABBREVIATION.search(parts[-1]):
                parts[-1] = f"{parts[-1]} {piece}"
            else:
                parts.append(piece)
        sentences += parts
    return sentences


def seed_coverage_problems(data: PackData, texts: Mapping[str, str]) -> list[str]:
    """Every sentence of every seed in ``texts`` (file name → text) that no statement claims
    and that is not listed as stating nothing, and every sentence number that is out of range
    or listed both ways."""
    problems: list[str] = []
    for source in (s for s in data.sources if s.kind == "seed"):
        file = source.file or ""
        if file not in texts:
            problems.append(f"seed file {file}: no text given")
            continue
        count = len(seed_sentences(texts[file]))
        claimed = {n for s in data.seed_statements if s.file == file for n in s.sentences}
        skipped = set(source.not_statements)
        problems += [
            f"{file} sentence {n}: out of range (the file has {count})"
            for n in sorted((claimed | skipped) - set(range(1, count + 1)))
        ]
        problems += [
            f"{file} sentence {n}: claimed by a statement and listed as stating nothing"
            for n in sorted(claimed & skipped)
        ]
        problems += [
            f"{file} sentence {n}: no seed statement represents it"
            for n in range(1, count + 1)
            if n not in claimed | skipped
        ]
    return problems
