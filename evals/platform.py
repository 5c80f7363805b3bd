"""Golden sets the platform holds: built from an asset's real consultations, or submitted by its
expert as JSON and approved by an admin. Runs of these sets (scope ``platform`` and
``approved``) count in the public quality score; an expert's own ``vouch eval`` runs do not.

The platform-held set of an asset has one item per reference: a client's question whose answer
stood (accepted, approved, or undisputed past its window: the answer given is the reference) or
was corrected (the expert's verified answer is the reference). Each item expects:

* the reference's sources: a unit per citation, with the citation's path and its narrowing
  (lines, section, page, symbol) as the locator gives them; a citation of a verified answer
  becomes a ``text`` unit of the answer it quotes;
* the reference's key facts: every number it states (at most ``MAX_FACTS``, in order), compared
  as ``evals.facts`` compares them (``20 000 000`` is ``20,000,000``).

A re-asked answer is right when it cites one of those sources and states every key fact
(``evals.runner.answer_right``). A reference none of whose citations gives a usable unit is
left out: nothing measurable would say whether a new answer agrees with it.
"""

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from evals import facts
from evals.errors import GoldenSetError
from evals.golden import ExpectedUnit, GoldenItem, GoldenSet, parse_golden

MAX_FACTS = 5
# What a re-ask costs grows with the set: the newest references are kept.
MAX_PLATFORM_ITEMS = 200
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*%?")
_NARROWING = ("lines", "section", "page", "symbol")


@dataclass(frozen=True, slots=True)
class Reference:
    """A question with the answer that stands for it and that answer's citations."""

    id: str  # the consultation's id
    question: str
    answer: str
    citations: Sequence[Mapping[str, Any]]  # {"text", "locator"}
    kind: str  # "accepted" or "corrected"
    extra_units: Sequence[ExpectedUnit] = field(default_factory=tuple)


def key_facts(text: str) -> list[str]:
    """The numbers ``text`` states, each once, in order (at most ``MAX_FACTS``)."""
    found: list[str] = []
    for number in _NUMBER.findall(facts.normalise(text)):
        if number not in found:
            found.append(number)
    return found[:MAX_FACTS]


def citation_unit(citation: Mapping[str, Any]) -> ExpectedUnit | None:
    """The unit a citation points at, or None when its locator names no place we can match."""
    locator = citation.get("locator")
    if not isinstance(locator, Mapping):
        return None
    try:
        if locator.get("path"):
            data = {"path": str(locator["path"])}
            data |= {n: locator[n] for n in _NARROWING if locator.get(n) is not None}
            if isinstance(data.get("page"), str):
                data.pop("page")  # a page range "3-4": the path alone still places it
            return ExpectedUnit.model_validate(data)
        text = str(citation.get("text") or "").strip()
        return ExpectedUnit(text=text) if text else None
    except ValidationError:
        return None


def reference_item(reference: Reference) -> GoldenItem | None:
    """The golden item that re-asks ``reference``; None when it gives no usable unit."""
    units: list[ExpectedUnit] = list(reference.extra_units)
    for citation in reference.citations:
        unit = citation_unit(citation)
        if unit is not None and unit not in units:
            units.append(unit)
    if not units or not reference.question.strip():
        return None
    return GoldenItem(
        id=reference.id,
        question=reference.question,
        expected=tuple(units),
        answer=reference.answer,
        facts=tuple((f,) for f in key_facts(reference.answer)),
        tags=(reference.kind,),
    )


def _fingerprint(items: Sequence[GoldenItem]) -> str:
    lines = [json.dumps(i.model_dump(mode="json"), sort_keys=True) for i in items]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def platform_set(references: Sequence[Reference], *, name: str) -> GoldenSet:
    """The platform-held set of the references (newest first; the first of a repeated
    question kept), at most ``MAX_PLATFORM_ITEMS`` items."""
    items: list[GoldenItem] = []
    asked: set[str] = set()
    for reference in references:
        question = " ".join(reference.question.split()).casefold()
        if question in asked:
            continue
        item = reference_item(reference)
        if item is None:
            continue
        asked.add(question)
        items.append(item)
        if len(items) == MAX_PLATFORM_ITEMS:
            break
    return GoldenSet(
        name=name,
        sha256=_fingerprint(items),
        source=name,
        items=items,
        lines=list(range(1, len(items) + 1)),
    )


def golden_from_json(items: Sequence[Any], *, name: str) -> GoldenSet:
    """A golden set sent as a JSON list of items (each as one line of a JSONL golden set, see
    ``evals.golden``); every bad item is reported as ``name:<n>`` (1-based)."""
    text = "\n".join(json.dumps(item, ensure_ascii=False) for item in items)
    if not items:
        raise GoldenSetError([f"{name}: no items"])
    parsed, lines = parse_golden(text, source=name)
    return GoldenSet(name=name, sha256=_fingerprint(parsed), source=name, items=parsed, lines=lines)


def stored_golden(name: str, questions: Sequence[Mapping[str, Any]]) -> GoldenSet:
    """A golden set stored as JSON (``golden_set.questions``), checked again as it is loaded."""
    return golden_from_json(list(questions), name=name)
