"""Paragraph and point labels: "1.", "(1)", "(a)", "(i)", "(A)", and where each one goes.

A label is read as every kind it may be ("(i)" is a letter or a roman numeral) and placed by
``_place`` at the level whose last label it follows, opens a deeper level when it is the first
of a new kind, or is a short jump forward in an excerpt that leaves numbers out.
"""

import re
from dataclasses import dataclass

from ingestion.sources.regulation.tree import _Node

_LABEL = re.compile(
    r"^(?:\((?P<paren>\d{1,3}[a-z]?|[a-z]{1,6}|[A-Z]{1,6})\)|(?P<dot>\d{1,3}[a-z]?)\."
    r"|(?P<half>\d{1,3}|[a-z])\))(?:\s+(?P<rest>.*)|$)"
)
_LABEL_PREFIX = re.compile(r"^(?:\([0-9A-Za-z]{1,6}\)|\d{1,3}[a-z]?\.)\s*")
_NUMERIC = frozenset({"num.", "(num)", "num)"})
_ROMANS = (
    (1000, "m"),
    (900, "cm"),
    (500, "d"),
    (400, "cd"),
    (100, "c"),
    (90, "xc"),
    (50, "l"),
    (40, "xl"),
    (10, "x"),
    (9, "ix"),
    (5, "v"),
    (4, "iv"),
    (1, "i"),
)


def _roman(text: str) -> int:
    """The value of a roman numeral in either case, 0 when it is not one."""
    low = text.lower()
    if not low or any(ch not in "ivxlcdm" for ch in low):
        return 0
    rest, value, written = low, 0, []
    for number, symbol in _ROMANS:
        while rest.startswith(symbol):
            rest, value = rest[len(symbol) :], value + number
            written.append(symbol)
    return value if not rest and "".join(written) == low else 0


def _ordinal(label: str, kind: str) -> tuple[int, str]:
    """The position of a label in its sequence (1 for "1", "a", "i"); 0 when it has none."""
    if kind in _NUMERIC:
        match = re.fullmatch(r"(\d+)([a-z]*)", label)
        return (int(match[1]), match[2]) if match else (0, "")
    if kind in ("(i)", "(I)"):
        return _roman(label), ""
    low = label.lower()
    if low.isalpha() and len(set(low)) == 1:  # a..z, then aa, bb
        return (len(low) - 1) * 26 + ord(low[0]) - ord("a") + 1, ""
    return 0, ""


def _candidates(match: re.Match[str]) -> list[tuple[str, str]]:
    """The (kind, label) readings of a label; "(i)" may be a letter or a roman numeral."""
    if match["dot"]:
        return [("num.", match["dot"])]
    if match["half"]:
        half = match["half"]
        return [("num)" if half.isdigit() else "alpha)", half)]
    paren = match["paren"]
    if paren[0].isdigit():
        return [("(num)", paren)]
    alpha, roman = ("(a)", "(i)") if paren.islower() else ("(A)", "(I)")
    found = []
    if _ordinal(paren, alpha)[0]:
        found.append((alpha, paren))
    if _roman(paren):
        found.append((roman, paren))
    return found


def _follows(previous: str, label: str, kind: str) -> bool:
    (number, suffix), (last, last_suffix) = _ordinal(label, kind), _ordinal(previous, kind)
    return (number == last + 1 and not suffix) or (number == last and suffix > last_suffix)


def _is_first(label: str, kind: str) -> bool:
    return _ordinal(label, kind) == (1, "")


def _skips_to(previous: str, label: str, kind: str) -> bool:
    """An excerpt may leave numbers out ("(2)" then "(7)"): a short jump forward is a sibling."""
    number, last = _ordinal(label, kind)[0], _ordinal(previous, kind)[0]
    return last < number <= last + (50 if kind in _NUMERIC else 6)


@dataclass
class _Level:
    kind: str
    label: str
    node: _Node


def _place(levels: list[_Level], candidates: list[tuple[str, str]]) -> tuple[int, str, str] | None:
    """Where a label goes: the depth of its level (len(levels) opens a deeper one), or None."""
    if not candidates:
        return None
    if not levels:
        kind, label = next(((k, lab) for k, lab in candidates if _is_first(lab, k)), candidates[0])
        return 0, kind, label
    for depth in range(len(levels) - 1, -1, -1):
        for kind, label in candidates:
            if levels[depth].kind == kind and _follows(levels[depth].label, label, kind):
                return depth, kind, label
    open_kinds = {level.kind for level in levels}
    for kind, label in candidates:
        if kind not in open_kinds and _is_first(label, kind):
            return len(levels), kind, label
    for depth in range(len(levels) - 1, -1, -1):
        for kind, label in candidates:
            if levels[depth].kind == kind and _skips_to(levels[depth].label, label, kind):
                return depth, kind, label
    return None
