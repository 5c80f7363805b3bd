"""Rulebooks in the UK/ADGM/DFSA style: "1.1.2" rules, "1.1 Title" sections, "Guidance" notes.

``_rule_line`` reads a line's rule number and what follows it, telling a rule apart from a
version in a changelog, a contents line or a question; ``_guidance`` finds a "Guidance" heading
and the rule or section it belongs to; ``_rule_key`` and ``_within`` order and nest numbers.
"""

import re
from dataclasses import dataclass

from ingestion.sources.regulation.headings import _OPENERS

# A level never starts at 0, so "1.2.0" (a version) is not a number of this kind; a number may
# carry a letter ("A2.1.3", "1.2.1B") and the appendix or part it sits in ("APP2.A2.1.1").
_RULE_NUMBER = re.compile(
    r"(?:APP ?|PART |[A-Z]{1,2})?[1-9]\d{0,2}[A-Z]{0,2}(?:\.[A-Z]{0,2}[1-9]\d{0,2}[A-Z]{0,2})*"
)
_FUSED_LABEL = re.compile(r"\(([0-9]{1,3}[a-z]?|[a-z]{1,6}|[A-Z]{1,6})\)")
_GUIDANCE = re.compile(
    r"^(?P<head>Guidance(?: [Nn]otes?)?(?: on [^.\n]{1,100}?)?|GUIDANCE(?: NOTES?)?)\s*:?"
    r"(?:\.(?P<note>\d{1,3}|\([0-9A-Za-z]{1,6}\))\.?(?:\s+(?P<rest>\S.*))?)?\s*$"
)
# What follows a version number in a changelog: "1.2.3 - 2024-01-01", "1.2.3 (2024-01-01)".
_VERSION_TAIL = re.compile(
    r"^(?:[-\u2013\u2014:=]|\(?v?\d|\(?(?:released|unreleased|yanked)\b)|\b\d{4}-\d\d-\d\d\b",
    re.IGNORECASE,
)
_RULE_STARTS = _OPENERS + "["
# Numbered lines that are not rules: a contents line "3.5.1 Stray cats ...... 14", a question.
_CONTENTS = re.compile(r"\.{4,}|(?:\. ){3,}|\u2026")
_QUESTION = re.compile(r"\?\s*$|^(?:Why|What|How|Which|Who|Does|Do|Is|Are|Can)\b")


@dataclass(frozen=True, slots=True)
class _RuleLine:
    """A line starting with a rulebook number, taken apart."""

    number: str  # "1.1.2", "A2.1.3", "APP2.A2.1.1"
    depth: int  # its levels: 1 chapter "1.", 2 section "1.1", 3 and more a rule "1.1.2"
    form: str  # "bare" (the number alone), "text", "label" ("1.1.2(1) ...") or "guidance"
    rest: str = ""  # the text after the number, label or guidance note
    label: str = ""  # "1" of "1.1.2.(1)": the rule's paragraph or point written with its number
    note: str = ""  # guidance: the note written with the marker ("1" of "Guidance.1.")
    title: str = ""  # guidance: the marker itself ("Guidance", "Guidance on CDD")


def _guidance(text: str, number: str, depth: int, label: str = "") -> _RuleLine | None:
    match = _GUIDANCE.match(text)
    if match is None:
        return None
    return _RuleLine(
        number,
        depth,
        "guidance",
        rest=match["rest"] or "",
        label=label,
        note=match["note"] or "",
        title=match["head"],
    )


def _rule_line(text: str) -> _RuleLine | None:
    """The number, levels and form of a line opening a rule, section, chapter or guidance."""
    match = _RULE_NUMBER.match(text)
    if match is None:
        return None
    number = match[0]
    depth = number.count(".") + 1
    tail = text[match.end() :]
    body = tail[1:] if tail.startswith(".") else tail
    stripped = body.lstrip()
    if not stripped:
        return _RuleLine(number, depth, "bare")
    label = _FUSED_LABEL.match(stripped)
    if label:
        after = stripped[label.end() :]
        if not after or after[0].isspace():
            return _RuleLine(number, depth, "label", rest=after.strip(), label=label[1])
        if after[0] == ".":
            return _guidance(after[1:].lstrip(), number, depth, label[1])
        return None
    guidance = _guidance(stripped, number, depth)
    if guidance is not None:
        return guidance
    if body[0].isspace():
        return _RuleLine(number, depth, "text", rest=stripped)
    return None


def _rule_key(number: str) -> tuple[tuple[str, int], ...]:
    """A rule number in document order: "1.2.10" after "1.2.9", "A1.1.1" after "16.2.3"."""
    return tuple(
        (letters, int(digits)) for letters, digits in re.findall(r"([A-Z ]*)(\d+)", number)
    )


def _within(number: str, section: str) -> bool:
    number = number.split("(", 1)[0]
    return number == section or number.startswith(f"{section}.")


def _section_title(text: str) -> bool:
    """ "Application" of "1.1 Application": short, and not a sentence."""
    return (
        0 < len(text) <= 150
        and text[-1] not in ".;:,"
        and (text[0].isupper() or text[0] in _OPENERS)
    )


def _chapter_title(text: str) -> bool:
    """ "INTRODUCTION" of "1. INTRODUCTION": capitals."""
    return (
        len(text) <= 150 and not re.search(r"[a-z]", text) and len(re.findall(r"[A-Z]", text)) >= 3
    )


def _rule_sentence(rest: str) -> bool:
    """Text after a number that reads as a rule, not as a heading or a release date."""
    return (
        bool(rest)
        and (rest[0].isupper() or rest[0] in _RULE_STARTS)
        and not _VERSION_TAIL.search(rest[:24])
        and not _CONTENTS.search(rest)
        and not _QUESTION.search(rest)
        and (len(rest) >= 60 or rest[-1] in ".:;")
    )
