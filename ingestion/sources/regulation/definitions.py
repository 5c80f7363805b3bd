"""Defined terms: what a passage defines ("'personal data' means ...", "(the 'Authority')").

``_definitions`` finds the terms a passage defines, quoted, in parentheses, after "For the
purposes of this ...", or at the start of a definition; the chunker records them per chunk and
for the whole document.
"""

import re

from ingestion.sources.regulation.labels import _LABEL_PREFIX
from ingestion.sources.regulation.text_helpers import _ws

_OPEN_Q = "\u2018'\"\u201c"
_CLOSE_Q = "\u2019'\"\u201d"
_QUOTED = rf"[{_OPEN_Q}][^{_OPEN_Q}{_CLOSE_Q}\n]{{1,80}}?[{_CLOSE_Q}]"
_QUOTED_TERM = re.compile(rf"[{_OPEN_Q}]([^{_OPEN_Q}{_CLOSE_Q}\n]{{1,80}}?)[{_CLOSE_Q}]")
_MEANS = r"(?:means|shall mean|refers to|is defined as|has the (?:same )?meaning)\b"
_DEF_MEANS = re.compile(
    rf"(?<![\w\u2019'])(?P<terms>{_QUOTED}(?:\s*(?:,|or|and)\s*{_QUOTED})*)"
    rf"(?:\s+(?:of|for|by|in|to)\s+[a-z][\w\- ]{{0,40}}?)?\s*(?:\([^()]{{0,80}}\)\s*)?,?\s*{_MEANS}"
)
_DEF_PAREN = re.compile(
    rf"\((?:the\s+|hereinafter\s+(?:referred\s+to\s+as\s+)?(?:the\s+)?)?(?P<terms>{_QUOTED})\)"
)
_DEF_PURPOSES = re.compile(
    r"\bFor the purposes? of (?:this|these|the)\b[^,:;]{0,80},\s*(?:the\s+(?:term|expression)\s+)?"
    r"(?P<term>[A-Za-z][\w\-]*(?:\s+[\w\-]+){0,5}?)\s+(?:means|shall mean)\b"
)
_DEF_LEADING = re.compile(
    r"^(?P<term>[A-Z][a-z][\w\-]*(?:\s+[a-z][\w\-]*){0,5}?)\s+(?:means|shall mean)\b"
)
_NOT_TERMS = frozenset({"This", "That", "It", "Such", "Each", "Any", "The", "These", "Those"})


def _definitions(text: str) -> list[str]:
    """The terms a passage defines ("'personal data' means", "X means" at its start), in order."""
    found: list[tuple[int, str]] = []
    for pattern in (_DEF_MEANS, _DEF_PAREN):
        for match in pattern.finditer(text):
            found += [(match.start(), term) for term in _QUOTED_TERM.findall(match["terms"])]
    found += [(match.start(), match["term"]) for match in _DEF_PURPOSES.finditer(text)]
    leading = _DEF_LEADING.match(_LABEL_PREFIX.sub("", text))
    if leading and leading["term"].split()[0] not in _NOT_TERMS:
        found.append((0, leading["term"]))
    found.sort(key=lambda pair: pair[0])
    return list(dict.fromkeys(_ws(term) for _, term in found if _ws(term)))
