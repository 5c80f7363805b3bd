"""Section headings recognised by their shape: numbered, roman, lettered, appendix or known names.

``_HeadingScanner`` checks a line at a time: a numbered heading ("3.2 Results") must follow on
from the previous number and look like a title, a known name ("Introduction", "References")
may stand alone, and the abstract may be run in ("Abstract—We ..."). Numbered lines whose number
and first word recur are table rows, not headings (``_table_rows``). The scanner reads plain
text; its patterns and known section names serve every reader.
"""

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_KNOWN_SECTIONS = {
    "introduction", "background", "related work", "related works", "prior work",
    "literature review", "methods", "method", "methodology", "materials and methods",
    "methods and materials", "approach", "experiments", "experimental setup",
    "experimental results", "evaluation", "results", "findings", "discussion",
    "results and discussion", "analysis", "conclusion", "conclusions", "concluding remarks",
    "conclusion and future work", "conclusions and future work", "future work", "limitations",
    "summary", "preliminaries", "problem statement", "problem formulation", "case study",
    "implementation", "acknowledgements", "acknowledgments", "acknowledgement", "acknowledgment",
    "funding", "author contributions", "data availability", "data availability statement",
    "code availability", "competing interests", "conflict of interest", "conflicts of interest",
    "declaration of competing interest", "ethics statement", "supplementary material",
    "supplementary materials", "appendix", "appendices",
}  # fmt: skip
_REFERENCE_TITLES = {
    "references", "bibliography", "works cited", "literature cited", "reference list",
    "references and notes", "cited literature",
}  # fmt: skip
_SMALL_WORDS = {
    "a", "an", "the", "and", "or", "of", "in", "on", "for", "to", "with", "from", "by", "at",
    "as", "via", "vs", "versus", "into", "over", "under", "using", "towards", "toward",
    "through", "without", "between", "among", "is", "are", "its", "their",
}  # fmt: skip

_NUMBERED = re.compile(r"^(?P<num>\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+(?P<title>\S.*)$")
_ROMAN = re.compile(r"^(?P<num>[IVX]{1,5})\.\s+(?P<title>\S.*)$")
_LETTERED = re.compile(r"^(?P<letter>[A-H])\.\s+(?P<title>\S.*)$")
_APPENDIX_NUMBERED = re.compile(
    r"^(?P<letter>[A-H])(?P<sub>(?:\.\d{1,2}){0,2})\.?\s+(?P<title>\S.*)$"
)
_APPENDIX_LINE = re.compile(r"^(?:appendix|appendices)\b", re.I)
_ABSTRACT_LINE = re.compile(r"^abstract\b(?P<sep>\s*[.:\u2014\u2013-]+)?\s*(?P<rest>.*)$", re.I)
_KEYWORDS_LINE = re.compile(
    r"^\W{0,4}(?:keywords|key words|index terms|ccs concepts)\b", re.IGNORECASE
)
_NUMERIC_TOKEN = re.compile(r"^[-+]?\d+(?:[.,]\d+)*%?$")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10}


def _normal_title(title: str) -> str:
    """A heading's words for comparison: lower case, emphasis and trailing punctuation dropped."""
    text = re.sub(r"[*_`]", "", title).strip().rstrip(".:").strip()
    return " ".join(text.lower().split())


def _roman(numeral: str) -> int:
    total = 0
    for i, char in enumerate(numeral):
        value = _ROMAN_VALUES[char]
        following = _ROMAN_VALUES[numeral[i + 1]] if i + 1 < len(numeral) else 0
        total += -value if value < following else value
    return total


def _title_shape(title: str) -> bool:
    """Could this text (after the number) be a section title?"""
    words = title.split()
    if not 1 <= len(words) <= 12 or len(title) > 100:
        return False
    if not title[0].isupper() or title.count(",") > 1 or re.search(r"[@_=<>{}\[\];]", title):
        return False
    if title[-1] in ",;" or sum(c.isalpha() for c in title) < 3:
        return False
    if title.endswith(".") and (len(words) > 5 or not _strong_title(title)):
        return False
    return not any(_NUMERIC_TOKEN.match(word) for word in words)


def _strong_title(title: str) -> bool:
    """Title Case, ALL CAPS or a well-known section name: unlikely to be a wrapped body line."""
    if _normal_title(title) in _KNOWN_SECTIONS | _REFERENCE_TITLES:
        return True
    letters = [c for c in title if c.isalpha()]
    if letters and all(c.isupper() for c in letters):
        return True
    significant = [w for w in title.split() if w.lower().strip(".:") not in _SMALL_WORDS]
    return all(not w[0].isalpha() or w[0].isupper() for w in significant)


def _row_key(line: str) -> str:
    words = line.split()
    return " ".join(words[:2]).lower()


def _table_rows(lines: Iterable[str]) -> frozenset[str]:
    counts = Counter(_row_key(line) for line in lines if _NUMBERED.match(line.strip()))
    return frozenset(key for key, count in counts.items() if count >= 3)


@dataclass(frozen=True, slots=True)
class _Heading:
    title: str  # as written, with its number
    level: int
    role: str  # "abstract", "body" or "references"
    run_in: bool = False  # the heading line also holds the start of the text ("Abstract—We ...")


class _HeadingScanner:
    """Recognises headings line by line; numbered ones must follow on from the previous number."""

    def __init__(self, table_rows: frozenset[str] = frozenset()) -> None:
        # Numbered lines whose number and first word recur are table rows, not headings.
        self.table_rows = table_rows
        self.last: tuple[int, ...] | None = None
        self.roman = False
        self.in_references = False
        self.appendix = False
        self.seen_abstract = False
        self.seen_section = False

    def _expected(self) -> set[tuple[int, ...]]:
        """The numbers that may follow the last one, allowing one missed heading."""
        if self.last is None:
            return {(1,), (2,)}
        last = self.last
        following = {
            (*last[:depth], last[depth] + step) for depth in range(len(last)) for step in (1, 2)
        }
        return following | {(*last, 1)}

    def _forward(self, num: tuple[int, ...]) -> bool:
        """A plausible number when one heading was missed (e.g. it was drawn as an image)."""
        if self.last is None:
            return num[0] <= 2 and all(n <= 2 for n in num[1:])
        last = self.last
        if num <= last or num[0] > last[0] + 1 or len(num) > len(last) + 1:
            return False
        return not (num[0] == last[0] + 1 and any(n > 1 for n in num[1:]))

    def check(self, text: str, previous: str | None) -> _Heading | None:
        """The heading on this line, if it is one. ``previous`` is the line before (None when
        a paragraph, a page or a heading ended just before)."""
        line = " ".join(text.split())
        if not line or len(line) > 120:
            return None
        normal = _normal_title(line)
        if not self.seen_section and not self.seen_abstract:
            match = _ABSTRACT_LINE.match(line)
            rest = match.group("rest") if match else ""
            if match and (not rest or match.group("sep") or rest[0].isupper()):
                self.seen_abstract = True
                return _Heading("Abstract", 1, "abstract", run_in=bool(rest))
        if normal in _REFERENCE_TITLES:
            if self.in_references:
                return None
            return self._accept(line, 1, "references", None)
        if normal in _KNOWN_SECTIONS or (_APPENDIX_LINE.match(line) and len(line.split()) <= 8):
            if normal.startswith("append") or _APPENDIX_LINE.match(line):
                self.appendix = True
            return self._accept(line, 1, "body", None)
        if self.in_references or self.appendix:
            return self._appendix_heading(line)
        return self._numbered_heading(line, previous)

    def _accept(self, line: str, level: int, role: str, num: tuple[int, ...] | None) -> _Heading:
        self.seen_section = True
        self.in_references = role == "references"
        if num is not None:
            self.last = num
        return _Heading(line, level, role)

    def _role(self, title: str) -> str:
        return "references" if _normal_title(title) in _REFERENCE_TITLES else "body"

    def _numbered_heading(self, line: str, previous: str | None) -> _Heading | None:
        num: tuple[int, ...]
        match = _NUMBERED.match(line)
        roman = _ROMAN.match(line)
        lettered = _LETTERED.match(line)
        if match and not self.roman:
            num = tuple(int(part) for part in match.group("num").split("."))
            title = match.group("title")
        elif roman and (self.last is None or self.roman):
            num = (_roman(roman.group("num")),)
            title = roman.group("title")
        elif lettered and self.roman and self.last is not None:
            num = (self.last[0], ord(lettered.group("letter")) - ord("A") + 1)
            title = lettered.group("title")
        else:
            return None
        if not _title_shape(title) or _row_key(line) in self.table_rows:
            return None
        strong = _strong_title(title)
        if not (num in self._expected() or (strong and self._forward(num))):
            return None
        # A sentence-case line after an unfinished sentence is a wrapped line of text:
        # "...the number of\n42 Participants was lower than".
        unfinished = previous is not None and (previous[-1:].islower() or previous[-1:] in ",;")
        if not strong and unfinished and len(title.split()) >= 5:
            return None
        if roman and not match:
            self.roman = True
        return self._accept(line, len(num), self._role(title), num)

    def _appendix_heading(self, line: str) -> _Heading | None:
        match = _APPENDIX_NUMBERED.match(line)
        if not match or not _title_shape(match.group("title")):
            return None
        if not _strong_title(match.group("title")):
            return None
        self.appendix = True
        level = 1 + match.group("sub").count(".")
        return self._accept(line, level, "body", None)
