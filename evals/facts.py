"""Whether an answer states the facts a golden item says a correct answer must state.

A fact is a tuple of alternatives; it is stated when one of them appears in the answer after
both are normalised the same way: Unicode compatibility forms folded (ligatures, full-width
digits), case folded, dashes and minus signs made ``-``, thousands separators inside numbers
removed (``20 000 000``, ``20,000,000`` and ``20000000`` are one number), space before ``%``
dropped, whitespace collapsed, and ``[n]`` citation markers removed. An alternative that starts
or ends with a digit or letter must not run into more of them (``3`` is not found in ``30`` or
``1.3.0``,
``retry`` is found in ``retry.``, not in ``retryable``).
"""

import re
import unicodedata
from collections.abc import Sequence

# A citation marker: [3], [1, 2]. Answers cite at most a few dozen passages, so [413, 429, 503]
# is a list of numbers the answer states (a quoted line of code), not citations.
_CITATION = re.compile(r"\[\d{1,2}(?:\s*[,;]\s*\d{1,2})*\]")
_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
# A digit group separator: a space (also thin or no-break), a comma or an apostrophe between a
# digit and exactly three digits.
_THOUSANDS = re.compile(r"(?<=\d)[\s,'\u2009\u202f\u00a0](?=\d{3}(?!\d))")
_PERCENT = re.compile(r"\s+%")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """``text`` as facts are looked for in it."""
    text = unicodedata.normalize("NFKC", _CITATION.sub(" ", text)).casefold()
    text = _DASHES.sub("-", text)
    previous = None
    while previous != text:  # "1 000 000" needs two passes: the groups overlap
        previous, text = text, _THOUSANDS.sub("", text)
    text = _PERCENT.sub("%", text)
    return _SPACE.sub(" ", text).strip()


def _runs_on(text: str, at: int, step: int, edge: str) -> bool:
    """Whether the text at ``at`` continues the word or number that ends (or starts) with
    ``edge``: a letter or digit, or, after a digit, a decimal point followed by a digit."""
    if not (0 <= at < len(text)) or not edge.isalnum():
        return False
    if text[at].isalnum():
        return True
    beyond = at + step
    return (
        edge.isdigit() and text[at] in ".," and 0 <= beyond < len(text) and text[beyond].isdigit()
    )


def _found(alternative: str, text: str) -> bool:
    wanted = normalise(alternative)
    if not wanted:
        return False
    start = 0
    while (at := text.find(wanted, start)) >= 0:
        end = at + len(wanted)
        if not _runs_on(text, at - 1, -1, wanted[0]) and not _runs_on(text, end, 1, wanted[-1]):
            return True
        start = at + 1
    return False


def facts_stated(facts: Sequence[Sequence[str]], text: str) -> list[bool]:
    """For each fact, whether ``text`` states it."""
    normal = normalise(text)
    return [any(_found(alternative, normal) for alternative in fact) for fact in facts]
