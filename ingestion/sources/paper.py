"""Papers: one chunk per section, with the section's number and title, its page or line span,
and the paper's bibliographic metadata.

Formats: PDF (the text layer, read with pypdf), LaTeX, Markdown, and plain text (headings are
recognised by their shape, a form feed starts a new page).

A PDF's headings come from its outline (bookmarks, each pointing at a page and a position on it)
when it has one, else from its type: lines set larger than the body text, or in bold at its
size. A PDF with neither has no sections; its chunks still carry their pages. The shape of a
line ("2 Results were mixed") never makes it a heading in a PDF: wrapped body text takes every
shape.

What becomes a chunk: the abstract (section "Abstract") and every section, split at paragraph
breaks when longer than MAX_CHARS. What does not: the title, author and affiliation lines, and
the reference list, whose entries are only counted (meta["references"]).

meta: title, authors (names), abstract, doi (lower case "10.xxxx/..."), orcids (checksums
verified), references (the number of entries); a value that was not found is absent.
"""

import io
import itertools
import re
import unicodedata
import zlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pypdf
from charset_normalizer import from_bytes
from pypdf.errors import DependencyError, PyPdfError

from ingestion.errors import FileRejected
from ingestion.sources.base import MAX_CHARS, Chunk, ParsedDocument

SUFFIXES = (".pdf", ".tex", ".md", ".markdown", ".txt")

# Text above the first section longer than this is not a title block: it is chunked as text.
MAX_FRONT_CHARS = 1500
# A PDF with fewer letters than this in its text layer is treated as having none.
MIN_PDF_LETTERS = 20


_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>{}\\|]+)", re.IGNORECASE)
_ORCID = re.compile(r"(?<![\d-])(\d{4}-\d{4}-\d{4}-\d{3}[\dXx])(?![\d-])")
_ARXIV = re.compile(r"\barXiv:\s?\d{4}\.\d{4,5}(?:v\d+)?\b|\barxiv\.org/abs/\d{4}\.\d{4,5}", re.I)


def orcid_valid(orcid: str) -> bool:
    """True when the 16-character ORCID iD passes its ISO 7064 MOD 11-2 check digit."""
    digits = orcid.replace("-", "").upper()
    if len(digits) != 16 or not digits[:15].isdigit():
        return False
    total = 0
    for char in digits[:15]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[15] == ("X" if check == 10 else str(check))


def _find_orcids(texts: Iterable[str]) -> list[str]:
    found: list[str] = []
    for text in texts:
        for match in _ORCID.finditer(text):
            orcid = match.group(1).upper()
            if orcid_valid(orcid) and orcid not in found:
                found.append(orcid)
    return found


def _clean_doi(raw: str) -> str:
    doi = raw.rstrip(".,;:")
    # A closing bracket belongs to the DOI only when the DOI opened it: "10.1002/(SICI)...".
    for opening, closing in ("()", "[]"):
        while doi.endswith(closing) and doi.count(closing) > doi.count(opening):
            doi = doi[:-1].rstrip(".,;:")
    return doi.lower()


def _find_doi(texts: Iterable[str]) -> str:
    for text in texts:
        match = _DOI.search(text)
        if match:
            return _clean_doi(match.group(1))
    return ""


_PARTICLES = {
    "van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "dos", "das", "le",
    "la", "bin", "ibn", "al", "el", "ter", "ten", "y", "zu", "st.",
}  # fmt: skip
_NOT_NAME = {
    "university", "universität", "université", "universidad", "institute", "institut",
    "department", "dept", "laboratory", "laboratories", "lab", "school", "college", "faculty",
    "center", "centre", "hospital", "inc", "ltd", "gmbh", "corporation", "corp", "company",
    "group", "research", "foundation", "academy", "society", "ministry", "council", "email",
    "e-mail", "orcid", "doi", "abstract", "keywords", "preprint", "journal", "proceedings",
    "conference", "vol", "received", "accepted", "published", "arxiv", "et", "al", "and", "the",
    "of", "for", "in", "on", "with", "to", "a", "an", "is", "are", "we", "our", "by", "street",
    "road", "avenue", "campus", "division", "program", "programme", "unit", "usa", "uk",
}  # fmt: skip
_NAME_WORD = re.compile(r"^(?:[^\W\d_][\w'\u2019\-]*\.?|[^\W\d_]\.(?:-?[^\W\d_]\.)*)$")
_EMAIL = re.compile(r"\S+@\S+")
_URL = re.compile(r"https?://\S+|www\.\S+")
_MARKERS = re.compile(r"[\d*†‡§¶⁰¹²³⁴⁵⁶⁷⁸⁹⁺#]+")


def _name_like(text: str) -> bool:
    words = text.split()
    if not 2 <= len(words) <= 5:
        return False
    for word in words:
        lower = word.lower()
        if lower.strip(".,") in _NOT_NAME:
            return False
        if lower in _PARTICLES:
            continue
        if not _NAME_WORD.match(word) or not word[0].isupper():
            return False
    return True


def _names_in_line(line: str) -> tuple[list[str], int]:
    """The names in one line of an author block, and how many comma-separated parts it had."""
    text = _ORCID.sub(" ", line)
    text = _EMAIL.sub(" ", _URL.sub(" ", text))
    text = re.sub(r"\b(?:orcid(?: id| ids| ids?:)?|e-?mail|emails?)\s*:?", " ", text, flags=re.I)
    text = re.sub(r"^\s*(?:authors?|by)\s*[:.]?\s+", "", text, flags=re.I)
    parts = re.split(r"\s*(?:,|;|&|\band\b|·|•|\|)\s*", text)
    names: list[str] = []
    count = 0
    for part in parts:
        cleaned = " ".join(_MARKERS.sub(" ", part).split()).strip(" .,*")
        if not cleaned:
            continue
        count += 1
        if _name_like(cleaned):
            names.append(cleaned)
    return names, count


def _authors_from_lines(lines: Iterable[str]) -> list[str]:
    """Names from a title block's lines; a line counts when at least half of its parts are names."""
    authors: list[str] = []
    for line in lines:
        names, parts = _names_in_line(line)
        if names and len(names) * 2 >= parts:
            authors.extend(name for name in names if name not in authors)
    return authors


def _authors_from_field(value: str) -> list[str]:
    """Names from a metadata field such as a PDF's /Author ("A. One; B. Two" or "A, B and C")."""
    separators = r"\s*;\s*" if ";" in value else r"\s*(?:,|&|\band\b)\s*"
    names: list[str] = []
    for part in re.split(separators, value):
        name = " ".join(part.split())
        if name and len(name.split()) <= 6 and name not in names:
            names.append(name)
    return names


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


@dataclass(slots=True)
class _Line:
    text: str  # what is shown ("" for a blank line)
    number: int = 0  # 1-based line of the source file; 0 in a PDF
    page: int = 0  # 1-based page; 0 when not known
    void: bool = False  # a source line with nothing to show; unlike a blank line, no break


@dataclass
class _Section:
    title: str  # as written with its number ("3.2 Results"); "" before the first heading
    role: str  # "front" (title block), "abstract", "body" or "references"
    lines: list[_Line] = field(default_factory=list)  # the heading line first, if any
    parents: list[str] = field(default_factory=list)  # titles of the enclosing sections
    has_heading: bool = True
    level: int = 1

    @property
    def body(self) -> list[_Line]:
        return self.lines[1:] if self.has_heading else self.lines


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    first: _Line
    last: _Line
    paragraph: int


_HYPHEN_END = re.compile(r"(?:^|\s)[^\W\d_]{2,}-$")
_SENTENCE_END = re.compile(r"[.!?][\"\u201d\u2019)\]]?$")


def _paragraphs(lines: list[_Line]) -> list[list[_Line]]:
    paragraphs: list[list[_Line]] = []
    current: list[_Line] = []
    for line in lines:
        if line.void:
            continue
        if not line.text.strip():
            if current:
                paragraphs.append(current)
                current = []
            continue
        current.append(line)
    if current:
        paragraphs.append(current)
    return paragraphs


def _logical_lines(paragraph: list[_Line], reflow: bool) -> list[tuple[str, _Line, _Line]]:
    """Lines of a paragraph; when reflowing, a word hyphenated across a line break is joined
    ("infor-" + "mation"). The joined word stays with the first line, so pages stay right."""
    if not reflow:
        return [(line.text.rstrip(), line, line) for line in paragraph]
    joined: list[tuple[str, _Line, _Line]] = []
    for line in paragraph:
        text = line.text.strip()
        if joined and _HYPHEN_END.search(joined[-1][0]) and text[:1].islower():
            previous, first, _ = joined[-1]
            joined[-1] = (previous[:-1] + text, first, line)
        else:
            joined.append((text, line, line))
    return joined


def _split_long(text: str, limit: int) -> list[str]:
    """A text longer than ``limit`` cut at sentence ends, else between words, else anywhere."""
    pieces: list[str] = []
    current = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        parts = [sentence]
        if len(sentence) > limit:
            parts = []
            for word in sentence.split(" "):
                parts.extend(word[i : i + limit] for i in range(0, max(len(word), 1), limit))
        for part in parts:
            if current and len(current) + 1 + len(part) > limit:
                pieces.append(current)
                current = ""
            current = f"{current} {part}" if current else part
    if current:
        pieces.append(current)
    return pieces


def _paragraph_units(paragraph: list[_Line], index: int, reflow: bool, limit: int) -> list[_Unit]:
    """A paragraph as one unit, or, when longer than ``limit``, as runs of whole lines, cut
    after a line that ends a sentence where one is near enough."""
    separator = " " if reflow else "\n"
    logical = _logical_lines(paragraph, reflow)
    text = separator.join(part for part, _, _ in logical)
    if len(text) <= limit:
        return [_Unit(text, logical[0][1], logical[-1][2], index)]
    units: list[_Unit] = []
    group: list[tuple[str, _Line, _Line]] = []

    def size(parts: list[tuple[str, _Line, _Line]]) -> int:
        return len(separator.join(part for part, _, _ in parts))

    def flush(count: int) -> None:
        taken = group[:count]
        joined = separator.join(part for part, _, _ in taken)
        units.append(_Unit(joined, taken[0][1], taken[-1][2], index))
        del group[:count]

    for part, first, last in logical:
        if len(part) > limit:
            if group:
                flush(len(group))
            units.extend(_Unit(piece, first, last, index) for piece in _split_long(part, limit))
            continue
        group.append((part, first, last))
        while size(group) > limit:  # the lines before the last one fit
            head = group[:-1]
            ends = [k + 1 for k, (line, _, _) in enumerate(head) if _SENTENCE_END.search(line)]
            flush(ends[-1] if ends and size(head[: ends[-1]]) >= limit // 2 else len(head))
    if group:
        flush(len(group))
    return units


def _section_chunks(path: str, section: _Section, context: str, reflow: bool) -> list[Chunk]:
    paragraphs = _paragraphs(section.body)
    if not paragraphs:
        return []
    units: list[_Unit] = []
    room = MAX_CHARS
    heading: _Unit | None = None
    if section.has_heading:
        line = section.lines[0]
        heading_text = " ".join(line.text.split()) if reflow else line.text.rstrip()
        heading = _Unit(heading_text, line, line, 0)
        units.append(heading)
        # The heading travels with the start of the first paragraph, never alone.
        room = max(MAX_CHARS - len(heading_text) - 2, MAX_CHARS // 2)
    for i, paragraph in enumerate(paragraphs, start=1):
        units.extend(_paragraph_units(paragraph, i, reflow, room))
        room = MAX_CHARS

    groups: list[list[_Unit]] = []
    size = 0
    for unit in units:
        if groups and size + 2 + len(unit.text) <= MAX_CHARS:
            groups[-1].append(unit)
            size += 2 + len(unit.text)
        elif groups and groups[-1] == [heading]:
            groups[-1].append(unit)  # a heading is never a chunk on its own
            size += 2 + len(unit.text)
        else:
            groups.append([unit])
            size = len(unit.text)

    parent = section.parents[-1] if section.parents else ""
    chunks: list[Chunk] = []
    for group in groups:
        text = group[0].text
        for previous, unit in itertools.pairwise(group):
            same = previous.paragraph == unit.paragraph
            text += (" " if reflow else "\n") if same else "\n\n"
            text += unit.text
        first, last = group[0].first, group[-1].last
        extra = {"pages": f"{first.page}-{last.page}"} if last.page > first.page else {}
        chunks.append(
            Chunk(
                text=text,
                path=path,
                kind="paper",
                line_start=first.number,
                line_end=last.number,
                section=section.title,
                heading=parent,
                page=first.page,
                extra=extra,
                context=context,
            )
        )
    return chunks


def _join_text(lines: list[_Line]) -> str:
    """Paragraphs as single lines separated by blank lines, hyphenated words joined."""
    return "\n\n".join(
        " ".join(part for part, _, _ in _logical_lines(paragraph, reflow=True))
        for paragraph in _paragraphs(lines)
    )


_END_PUNCT = re.compile(r"[.!?]$")


def _count_references(lines: list[_Line]) -> int:
    """How many entries a reference list has: numbered markers, bullets, blank-line separated
    entries, or (author-year lists in a PDF) lines starting "Surname," after a full stop."""
    texts = [line.text.strip() for line in lines if not line.void]
    content = [text for text in texts if text]
    if not content:
        return 0
    markers = [
        re.match(r"^\[(\d{1,4})\]|^(\d{1,4})[.)]\s|^\((\d{1,4})\)\s", text) for text in content
    ]
    numbered = 0
    for match in markers:
        if match and int(next(g for g in match.groups() if g)) == numbered + 1:
            numbered += 1
    if numbered:
        return numbered
    bullets = sum(1 for text in content if re.match(r"^[-*•+]\s", text))
    if bullets:
        return bullets
    paragraphs = _paragraphs([line for line in lines if not line.void])
    if len(paragraphs) > 1:
        return len(paragraphs)
    entries = 0
    previous = ""
    for text in content:
        starts = re.match(r"^[^\W\d_][^\s,]*(?:\s[^\W\d_][^\s,]*)?,\s", text)
        if not previous or (starts and _END_PUNCT.search(previous)):
            entries += 1
        previous = text
    return entries


def _build(
    path: str,
    sections: list[_Section],
    meta: dict[str, Any],
    *,
    reflow: bool,
    references_found: int | None = None,
) -> ParsedDocument:
    """Chunks for the abstract and body sections, the abstract and reference count into meta."""
    title = str(meta.get("title", ""))
    chunks: list[Chunk] = []
    references = 0
    has_references = references_found is not None
    # The title block is left out only when something else is there to answer from.
    has_content = any(
        section.role in ("abstract", "body") and _paragraphs(section.body) for section in sections
    )
    for section in sections:
        if section.role == "references":
            references += _count_references(section.body)
            has_references = True
            continue
        if section.role == "front" and has_content:
            size = sum(len(line.text) for line in section.lines if not line.void)
            if size <= MAX_FRONT_CHARS:
                continue
        if section.role == "abstract" and "abstract" not in meta:
            body = section.body
            # The keywords line after an abstract stays in its chunk but is not the abstract.
            keywords = next(
                (i for i, line in enumerate(body) if _KEYWORDS_LINE.match(line.text.strip())),
                len(body),
            )
            abstract = _join_text(body[:keywords])
            if not section.has_heading:  # "Abstract—We study ..." on one line
                abstract = re.sub(r"^\W*abstract\b\W*", "", abstract, flags=re.IGNORECASE)
            if abstract.strip():
                meta["abstract"] = abstract.strip()
        section_path = " > ".join([*section.parents, section.title]) if section.title else ""
        context = "\n".join(part for part in (title or path, section_path) if part)
        chunks.extend(_section_chunks(path, section, context, reflow))
    if has_references:
        meta["references"] = references + (references_found or 0)
    return ParsedDocument(kind="paper", chunks=chunks, meta=meta)


def _with_parents(sections: list[_Section]) -> None:
    """Fill each section's parents from the levels of the sections before it."""
    stack: list[_Section] = []
    for section in sections:
        if section.role in ("front", "abstract") or not section.title:
            continue
        while stack and stack[-1].level >= section.level:
            stack.pop()
        section.parents = [s.title for s in stack]
        stack.append(section)


def _meta(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value}


_PAGE_NUMBER = re.compile(
    r"^(?:page\s+)?[-\u2013\u2014]?\s*\d{1,4}\s*[-\u2013\u2014]?(?:\s*(?:of|/)\s*\d{1,4})?$"
    r"|^[ivxlc]{1,6}$",
    re.IGNORECASE,
)
_ARXIV_STAMP = re.compile(
    r"^arXiv:\d{4}\.\d{4,5}(?:v\d+)?\s+\[[\w.\-]+\]\s+\d{1,2}\s+\w{3}\s+\d{4}$"
)
_JUNK_TITLES = re.compile(
    r"^(?:untitled|anonymous|unknown|unspecified|microsoft word\b.*|document\d*|"
    r".*\.(?:docx?|tex|pdf|dvi|ps|odt))$",
    re.IGNORECASE,
)


def _title_span(lines: list[_Line], title: str) -> tuple[int, int] | None:
    """The (start, end) line indices holding ``title`` near the top, if its words are there."""
    target = re.sub(r"\W+", "", title).lower()
    if not target:
        return None
    content = [i for i, line in enumerate(lines[:200]) if line.text.strip()][:15]
    for k, start in enumerate(content):
        found = ""
        for end in content[k:]:
            found += re.sub(r"\W+", "", lines[end].text).lower()
            if found == target:
                return start, end + 1
            if not target.startswith(found):
                break
    return None


def _first_line_title(lines: list[_Line]) -> tuple[str, tuple[int, int] | None]:
    for i, line in enumerate(lines[:50]):
        text = " ".join(line.text.split())
        if not text:
            continue
        scanner = _HeadingScanner()
        looks_like_heading = scanner.check(text, None) is not None
        if looks_like_heading or len(text) > 200 or len(text.split()) < 2 or text.endswith("."):
            return "", None
        if _DOI.search(text) or _ORCID.search(text) or _EMAIL.search(text):
            return "", None
        return text, (i, i + 1)
    return "", None


def _plain_sections(lines: list[_Line], title: str) -> tuple[str, list[_Section], list[_Line]]:
    """Sections of a text layer; returns the title, the sections and the title block's lines."""
    span = _title_span(lines, title) if title else None
    if not title:
        title, span = _first_line_title(lines)
    scanner = _HeadingScanner(_table_rows(" ".join(line.text.split()) for line in lines))
    front = _Section(title="", role="front", has_heading=False)
    sections: list[_Section] = [front]
    previous: str | None = None
    for i, line in enumerate(lines):
        if span and span[0] <= i < span[1]:
            previous = None
            continue
        text = line.text.strip()
        if not text:
            sections[-1].lines.append(line)
            previous = None
            continue
        if i and lines[i - 1].page != line.page and previous is not None:
            previous = None
        heading = scanner.check(text, previous)
        if heading is not None:
            level = heading.level
            sections.append(
                _Section(
                    title=heading.title,
                    role=heading.role,
                    lines=[line],
                    has_heading=not heading.run_in,
                    level=level,
                )
            )
            previous = None
            continue
        sections[-1].lines.append(line)
        previous = text
    _with_parents(sections)
    return title, sections, front.lines


def _plain_meta(
    title: str, sections: list[_Section], front: list[_Line], lines: list[_Line]
) -> dict[str, Any]:
    kept = [s for s in sections if s.role != "references"]
    front_texts = [line.text for line in front]
    body_texts = [line.text for s in kept for line in s.lines]
    # Lines of the title, when it was not found where expected, are not author names.
    title_words = re.sub(r"\W+", "", title).lower()
    author_lines = [t for t in front_texts if re.sub(r"\W+", "", t).lower() not in title_words]
    return _meta(
        title=title,
        authors=_authors_from_lines(author_lines[:30]),
        doi=_find_doi(["\n".join(front_texts), "\n".join(body_texts)]),
        orcids=_find_orcids([line.text for line in lines]),
    )


def _text_layer_lines(text: str) -> list[_Line]:
    """Lines of a .txt file with their line numbers; form feeds count pages when present."""
    paged = "\f" in text
    page = 1
    lines: list[_Line] = []
    for number, raw in enumerate(_source_lines(text), start=1):
        page += raw.count("\f") if paged else 0
        clean = raw.replace("\f", "").rstrip()
        lines.append(_Line(clean, number=number, page=page if paged else 0))
    return lines


def _read_text(path: str, text: str) -> ParsedDocument:
    lines = _text_layer_lines(text)
    title, sections, front = _plain_sections(lines, "")
    meta = _plain_meta(title, sections, front, lines)
    return _build(path, sections, meta, reflow=False)


# pypdf raises its own errors for most damage, but built-in ones for some malformed objects;
# any of them means the file cannot be read, which is the file's problem and not a bug here.
_PDF_ERRORS = (
    PyPdfError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    AssertionError,
    RecursionError,
    ZeroDivisionError,
    NotImplementedError,  # a stream filter pypdf does not support
    OSError,
    zlib.error,
)


def _open_pdf(data: bytes) -> pypdf.PdfReader:
    if not data.strip():
        raise FileRejected("corrupt PDF: the file is empty")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        # An empty user password (only editing restricted) opens for reading.
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise FileRejected(
                "encrypted PDF: it needs a password to open; upload an unencrypted copy"
            )
        len(reader.pages)
    except FileRejected:
        raise
    except DependencyError as exc:
        raise FileRejected(f"encrypted PDF: its encryption cannot be read here ({exc})") from exc
    except _PDF_ERRORS as exc:
        raise FileRejected(f"corrupt PDF: {exc or type(exc).__name__}") from exc
    return reader


def _effective_size(matrix: list[float], font_size: float) -> float:
    scale = abs(matrix[0] * matrix[3] - matrix[1] * matrix[2]) ** 0.5
    return font_size * (scale or 1.0)


_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)


def _line_key(text: str) -> str:
    """A line's letters and digits, for matching the same line across pypdf's two readings."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()


@dataclass(slots=True)
class _TypeLine:
    """A line of a PDF page as typeset: its text, the size and weight most of it is set in, and
    its height on the page."""

    text: str
    size: float
    bold: bool
    y: float | None


class _TypeReader:
    """Collects pypdf's text runs (flushed at each line break) into lines with their type."""

    def __init__(self) -> None:
        self.lines: list[_TypeLine] = []
        self._runs: list[tuple[str, float, bool]] = []
        self._y: float | None = None

    def visit(self, text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        pieces = text.split("\n")
        for i, piece in enumerate(pieces):
            if piece.strip():
                name = str(font.get("/BaseFont", "")) if isinstance(font, dict) else ""
                effective = _effective_size(tm, size) * _effective_size(cm, 1.0)
                self._runs.append((piece, round(effective, 1), bool(_BOLD_FONT.search(name))))
                if self._y is None:  # where the line starts, in page space
                    self._y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            if i < len(pieces) - 1:
                self.flush()

    def flush(self) -> list[_TypeLine]:
        if self._runs:
            sizes: Counter[float] = Counter()
            for piece, size, _ in self._runs:
                sizes[size] += len(piece.strip())
            letters = sum(len(piece.strip()) for piece, _, _ in self._runs)
            bold = sum(len(piece.strip()) for piece, _, b in self._runs if b)
            text = " ".join("".join(piece for piece, _, _ in self._runs).split())
            self.lines.append(_TypeLine(text, sizes.most_common(1)[0][0], bold == letters, self._y))
        self._runs, self._y = [], None
        return self.lines


def _pdf_pages(reader: pypdf.PdfReader) -> tuple[list[str], str, list[int], list[list[_TypeLine]]]:
    """Each page's text, the title set in the largest type on page 1 (if any is larger), the
    pages whose text could not be read, and each page's lines with their type."""
    typeset: list[list[_TypeLine]] = []
    pages: list[str] = []
    failed: list[int] = []
    for index, page in enumerate(reader.pages):
        lines = _TypeReader()
        try:
            pages.append(page.extract_text(visitor_text=lines.visit))
            typeset.append(lines.flush())
        except _PDF_ERRORS:
            pages.append("")  # one damaged page should not cost the rest of the paper
            typeset.append([])
            failed.append(index + 1)
    if pages and len(failed) == len(pages):
        raise FileRejected("corrupt PDF: no page could be read")

    title = ""
    weights: Counter[float] = Counter()
    fragments = [(line.text, line.size) for line in typeset[0]] if typeset else []
    for text, size in fragments:
        weights[round(size, 1)] += len(text.strip())
    if weights:
        body_size = weights.most_common(1)[0][0]
        largest = max(weights)
        if largest >= body_size * 1.2:
            parts = [text for text, size in fragments if round(size, 1) == largest]
            candidate = " ".join(" ".join(parts).split())
            if 4 <= len(candidate) <= 300 and sum(c.isalpha() for c in candidate) >= 4:
                title = candidate
    return pages, title, failed, typeset


@dataclass(frozen=True, slots=True)
class _Mark:
    """A PDF line found to be a heading (or the continuation of the one above it)."""

    level: int
    continues: bool = False


def _outline(reader: pypdf.PdfReader) -> list[tuple[int, str, int, float | None]]:
    """The outline's entries: (page index, title, depth, top of the destination or None)."""
    entries: list[tuple[int, str, int, float | None]] = []

    def walk(items: list[Any], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            page = reader.get_destination_page_number(item)
            top = item.get("/Top")
            title = " ".join(str(item.title or "").split())
            if page is not None and page >= 0 and title:
                entries.append((page, title, depth, float(top) if top is not None else None))

    try:
        walk(reader.outline, 0)
    except _PDF_ERRORS:
        return []  # a damaged outline: the type is read instead
    return entries


# A heading's number: "3", "3.2.", "IV.", "A.", "A.1".
_SECTION_NUMBER = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[IVX]{1,5}\.|[A-H](?:\.\d{1,2}){0,3}\.?(?=\s+[A-Z]\S))\s+"
)


def _unnumbered_key(text: str) -> str:
    return _line_key(_SECTION_NUMBER.sub("", text.strip()))


def _outline_marks(
    entries: list[tuple[int, str, int, float | None]], typeset: list[list[_TypeLine]]
) -> dict[tuple[int, str], list[_Mark]]:
    """The lines the outline points at, by (page, line key).

    The line at the destination (the first at or below its top, or at the top of the next page
    when the destination is the foot of a page) is the heading when it begins with the entry's
    title, which is often shorter ("Comparison" for "5. Comparison between packages"); else the
    first line on the page that reads as the title. A title wrapped over lines marks each.
    """
    marks: dict[tuple[int, str], list[_Mark]] = {}
    for page, title, depth, top in entries:
        lines = typeset[page] if page < len(typeset) else []
        below = [
            (page + 1, line) for line in lines if top is None or line.y is None or line.y <= top + 2
        ]
        if page + 1 < len(typeset):
            below += [(page + 2, line) for line in typeset[page + 1][:3]]
        want = _unnumbered_key(title)
        if not want:
            continue
        for i, (number, line) in enumerate(below):
            key = _unnumbered_key(line.text)
            if not key:
                continue
            found, joined = [(number, line)], key
            for following in below[i + 1 : i + 3]:  # a title wrapped over lines
                if joined == want or not want.startswith(joined):
                    break
                joined += _unnumbered_key(following[1].text)
                found.append(following)
            at_destination = i == 0 and _looks_like_heading(line.text)
            if joined != want and not (at_destination and key.startswith(want)):
                continue
            for n, (on_page, part) in enumerate(found if joined == want else found[:1]):
                marks.setdefault((on_page, _line_key(part.text)), []).append(
                    _Mark(depth + 1, continues=n > 0)
                )
            break
    return marks


def _looks_like_heading(text: str) -> bool:
    words = text.split()
    if not 1 <= len(words) <= 15 or len(text) > 120 or sum(c.isalpha() for c in text) < 3:
        return False
    if text[-1] in ",;:" or _EMAIL.search(text) or _DOI.search(text) or _URL.search(text):
        return False
    first = next((c for c in text if c.isalnum()), "")
    return first.isdigit() or first.isupper()


def _type_marks(typeset: list[list[_TypeLine]]) -> dict[tuple[int, str], list[_Mark]]:
    """Lines set apart by their type, by (page, line key): larger than the body text, or bold
    at its size (when bold is rare enough to mean something). A heading's level is its number's
    depth ("3.2" is 2), else the rank of its size; a long heading wrapped onto the next line in
    the same type continues there."""
    letters: Counter[float] = Counter()
    bold_letters = total = 0
    for lines in typeset:
        for line in lines:
            count = sum(c.isalpha() for c in line.text)
            letters[line.size] += count
            total += count
            bold_letters += count if line.bold else 0
    if not letters:
        return {}
    body = letters.most_common(1)[0][0]
    bold_means = bold_letters * 5 < total

    def style(line: _TypeLine) -> tuple[float, bool] | None:
        if line.size >= body * 1.15 or (bold_means and line.bold and line.size >= body * 0.95):
            return (line.size, line.bold)
        return None

    sizes = sorted({line.size for lines in typeset for line in lines if style(line)}, reverse=True)
    marks: dict[tuple[int, str], list[_Mark]] = {}
    for page, lines in enumerate(typeset, start=1):
        previous: tuple[_TypeLine, tuple[float, bool]] | None = None
        for line in lines:
            kind = style(line)
            if kind is None or not _looks_like_heading(line.text):
                previous = None
                continue
            numbered = _NUMBERED.match(line.text)
            continues = (
                previous is not None
                and previous[1] == kind
                and len(previous[0].text) > 30
                and not numbered
                and _normal_title(line.text) not in _KNOWN_SECTIONS | _REFERENCE_TITLES
            )
            if numbered:
                level = len(numbered.group("num").split("."))
            else:
                level = sizes.index(line.size) + 1 + (0 if line.size > body * 1.1 else 1)
            marks.setdefault((page, _line_key(line.text)), []).append(_Mark(level, continues))
            previous = (line, kind)
    return marks


def _pdf_lines(pages: list[str]) -> list[_Line]:
    """Lines with their pages; running headers and footers and bare page numbers dropped, and
    paragraph ends (a short line ending a sentence) marked by a blank line."""
    # NFKC turns ligatures ("ﬁ") and math letters into the letters people search for.
    page_lines = [
        [" ".join(raw.split()) for raw in unicodedata.normalize("NFKC", text).splitlines()]
        for text in pages
    ]

    def edges(lines: list[str]) -> list[int]:
        filled = [i for i, line in enumerate(lines) if line]
        return sorted(set(filled[:2] + filled[-2:]))

    def key(line: str) -> str:
        return re.sub(r"\d+", "#", line.lower())

    seen: Counter[str] = Counter()
    for lines in page_lines:
        seen.update({key(lines[i]) for i in edges(lines)})
    needed = max(2, (len(page_lines) + 1) // 2)
    # A line ending a sentence is more likely text that happens to repeat, unless it is on
    # many pages; chapter headers ("2 Methods 7") repeat on only some pages.
    repeated = {
        k
        for k, count in seen.items()
        if count >= (min(3, needed) if not re.search(r"[.!?]$", k) else max(3, needed))
    }

    result: list[_Line] = []
    for page, lines in enumerate(page_lines, start=1):
        drop = {
            i for i in edges(lines) if key(lines[i]) in repeated or _PAGE_NUMBER.match(lines[i])
        }
        kept = [
            line
            for i, line in enumerate(lines)
            if i not in drop and line and not _ARXIV_STAMP.match(line)
        ]
        lengths = sorted(len(line) for line in kept if len(line) >= 20)
        typical = lengths[int(len(lengths) * 0.8)] if len(lengths) >= 5 else 0
        for line in kept:
            result.append(_Line(line, page=page))
            if (
                typical
                and len(line) < 0.8 * typical
                and re.search(r"[.!?:][\"\u201d\u2019)]?$", line)
            ):
                result.append(_Line("", page=page))
    return result


def _pdf_sections(
    lines: list[_Line], title: str, marks: dict[tuple[int, str], list[_Mark]], *, outline: bool
) -> tuple[str, list[_Section], list[_Line]]:
    """Sections of a PDF from the lines its outline or its type marks as headings.

    Besides those, only two lines by their words: "Abstract" (or "Abstract—We study ..."
    before any section) and a reference list's title, so that the list is left out. On page 1,
    marked lines above the first numbered or well-known heading are the title block (authors
    set in larger type), not sections.
    """
    span = _title_span(lines, title) if title else None
    if not title:
        title, span = _first_line_title(lines)
    front = _Section(title="", role="front", has_heading=False)
    sections: list[_Section] = [front]
    started = False  # a numbered, well-known or outline heading was seen
    seen_abstract = False
    for i, line in enumerate(lines):
        if span and span[0] <= i < span[1]:
            continue
        text = " ".join(line.text.split())
        current = sections[-1]
        if not text:
            current.lines.append(line)
            if not marks and current.role == "abstract" and current.body:
                # Without headings, an abstract ends with its paragraph.
                sections.append(_Section(title="", role="body", has_heading=False))
            continue
        queued = marks.get((line.page, _line_key(text)))
        mark = queued.pop(0) if queued else None
        normal = _normal_title(_SECTION_NUMBER.sub("", text))
        if mark is not None and mark.continues and current.has_heading and not current.body:
            current.title = f"{current.title} {text}"
            current.lines[0] = _Line(current.title, page=current.lines[0].page)
            continue
        known = bool(_NUMBERED.match(text)) or normal in _KNOWN_SECTIONS | {"abstract"}
        if mark is not None and line.page == 1 and not started and not known and not outline:
            mark = None  # authors and affiliations set larger than the text
        if mark is not None:
            started = True
            role = "body"
            if normal in _REFERENCE_TITLES:
                role = "references"
            elif normal == "abstract" and not seen_abstract:
                role, seen_abstract = "abstract", True
            sections.append(_Section(title=text, role=role, lines=[line], level=mark.level))
            continue
        run_in = _ABSTRACT_LINE.match(text) if not seen_abstract and not started else None
        rest = run_in.group("rest") if run_in else ""
        if run_in and (not rest or run_in.group("sep") or rest[0].isupper()):
            seen_abstract = started = True
            sections.append(
                _Section("Abstract", "abstract", lines=[line], has_heading=not rest, level=1)
            )
            continue
        if normal in _REFERENCE_TITLES and current.role != "references":
            sections.append(_Section(title=text, role="references", lines=[line]))
            continue
        current.lines.append(line)
    _with_parents(sections)
    return title, sections, front.lines


def extract_pdf_text(data: bytes) -> str:
    """A PDF's text layer, pages separated by form feeds (for choosing a document's kind).

    Raises FileRejected for an encrypted, corrupt or text-less PDF, as read_paper does.
    """
    reader = _open_pdf(data)
    pages, _, _, _ = _pdf_pages(reader)
    text = "\f".join(pages)
    if sum(c.isalpha() for c in text) < MIN_PDF_LETTERS:
        raise FileRejected(_NO_TEXT)
    return text


_NO_TEXT = "PDF has no text layer (scanned or image-only?); run OCR on it and upload the result"


def _read_pdf(path: str, data: bytes) -> ParsedDocument:
    reader = _open_pdf(data)
    pages, font_title, unreadable, typeset = _pdf_pages(reader)
    if sum(c.isalpha() for page in pages for c in page) < MIN_PDF_LETTERS:
        raise FileRejected(_NO_TEXT)
    info_title = info_author = info_doi = ""
    try:
        info = reader.metadata
        if info is not None:
            info_title = " ".join(str(info.title or "").split())
            info_author = " ".join(str(info.author or "").split())
            info_doi = str(info.get("/doi") or info.get("/DOI") or "")
    except _PDF_ERRORS:
        pass  # a damaged info dictionary only costs the fallback metadata
    if _JUNK_TITLES.match(info_title):
        info_title = ""
    if _JUNK_TITLES.match(info_author):
        info_author = ""

    lines = _pdf_lines(pages)
    # The document's own title wins when page 1 shows it; the largest type could be a masthead.
    title = info_title if info_title and _title_span(lines, info_title) else ""
    marks = _outline_marks(_outline(reader), typeset)
    outline = bool(marks)
    if not outline:
        marks = _type_marks(typeset)
    title, sections, front = _pdf_sections(
        lines, title or font_title or info_title, marks, outline=outline
    )
    meta = _plain_meta(title, sections, front, lines)
    if "authors" not in meta and info_author:
        meta["authors"] = _authors_from_field(info_author)
    if info_doi and _DOI.search(info_doi):
        meta["doi"] = _find_doi([info_doi])
    meta["pages"] = len(pages)
    if unreadable:
        meta["unreadable_pages"] = unreadable
    return _build(path, sections, meta, reflow=True)


_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_MD_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_MD_ABSTRACT = re.compile(
    r"^\s*(?P<open>\*\*|__|\*|_)?abstract\b(?:\*\*|__|\*|_)?(?P<sep>\s*[.:\u2014\u2013-])?"
    r"(?:\*\*|__|\*|_)?\s*(?P<rest>.*)$",
    re.IGNORECASE,
)


def _md_abstract_marker(line: str) -> bool:
    """A line starting an abstract ("**Abstract.** We ..."), not "Abstract interpretation"."""
    match = _MD_ABSTRACT.match(line)
    if not match:
        return False
    rest = match.group("rest")
    return not rest or bool(match.group("sep") or match.group("open")) or rest[0].isupper()


def _md_plain(text: str) -> str:
    """Markdown inline markup removed: links, emphasis, superscripts, HTML tags."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<sup>.*?</sup>|\^[^^\s]+\^", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\{#[^}]*\}", "", text)
    return " ".join(re.sub(r"[*_`]", "", text).split())


def _yaml_header(lines: list[str]) -> tuple[dict[str, str | list[str]], int]:
    """A leading YAML block's top-level keys (strings, folded strings and lists of strings or
    of names); returns them and the number of lines the block takes."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    end = next(
        (i for i, line in enumerate(lines[1:200], start=1) if line.strip() in ("---", "...")),
        None,
    )
    if end is None:
        return {}, 0
    values: dict[str, str | list[str]] = {}
    key = ""
    folded = False
    for line in lines[1:end]:
        pair = re.match(r"^([A-Za-z_][\w-]*):\s*(.*)$", line)
        if pair:
            key = pair.group(1).lower()
            value = pair.group(2).strip()
            folded = value in ("|", ">", "|-", ">-", "|+", ">+")
            if value.startswith("[") and value.endswith("]"):
                values[key] = [v.strip().strip("\"'") for v in value[1:-1].split(",") if v.strip()]
            else:
                values[key] = "" if folded else value.strip("\"'")
                if not value:
                    values[key] = []
            continue
        current = values.get(key)
        item = re.match(r"^\s*-\s+(?:name:\s*)?(.*)$", line)
        if item and isinstance(current, list):
            current.append(item.group(1).strip().strip("\"'"))
        elif folded and isinstance(current, str) and line.strip():
            values[key] = f"{current} {line.strip()}".strip()
    return values, end + 1


def _read_markdown(path: str, text: str) -> ParsedDocument:
    raw = _source_lines(text)
    lines = [_Line(line.rstrip(), number=i) for i, line in enumerate(raw, start=1)]
    header, start = _yaml_header(raw)

    headings: list[tuple[int, int, str]] = []  # (index, level, text as written)
    fence: str | None = None
    for i in range(start, len(raw)):
        fence_match = _MD_FENCE.match(raw[i])
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
            continue
        heading = _MD_HEADING.match(raw[i]) if fence is None else None
        if heading:
            headings.append((i, len(heading.group(1)), _md_plain(heading.group(2))))

    yaml_title = header.get("title")
    title = yaml_title if isinstance(yaml_title, str) else ""
    title_index = -1
    if headings:
        index, level, first = headings[0]
        plain = _normal_title(first)
        numbered = _NUMBERED.match(first) is not None
        known = plain in _KNOWN_SECTIONS | _REFERENCE_TITLES or plain == "abstract"
        only_front_before = not any(_md_plain(line) for line in raw[start:index])
        adopted = not title or _normal_title(_md_plain(title)) == plain
        if level == 1 and not numbered and not known and only_front_before and adopted:
            title, title_index = first, index
            headings = headings[1:]

    numbered_depths = [
        len(m.group("num").split(".")) for _, _, t in headings if (m := _NUMBERED.match(t))
    ]
    min_level = min((level for _, level, _ in headings), default=1)
    sections: list[_Section] = []
    front = _Section(title="", role="front", has_heading=False)
    sections.append(front)
    first_heading = headings[0][0] if headings else len(raw)
    abstract_at = next(
        (
            i
            for i in range(max(start, title_index + 1), first_heading)
            if _md_abstract_marker(raw[i])
        ),
        None,
    )
    for i in range(start, first_heading):
        if i == title_index:
            continue
        if abstract_at is not None and i == abstract_at:
            sections.append(_Section("Abstract", "abstract", has_heading=False))
        sections[-1].lines.append(lines[i])
    references_level = 0
    bounds = [index for index, _, _ in headings[1:]] + [len(raw)] if headings else []
    for (index, level, heading_text), end in zip(headings, bounds, strict=True):
        normal = _normal_title(heading_text)
        number = _NUMBERED.match(heading_text)
        if number and numbered_depths:
            depth = len(number.group("num").split("."))
        else:
            depth = level - min_level + 1
        if references_level and level > references_level:
            role = "references"
        elif normal in _REFERENCE_TITLES or (
            number and _normal_title(number.group("title")) in _REFERENCE_TITLES
        ):
            role, references_level = "references", level
        elif normal == "abstract":
            role, references_level = "abstract", 0
        else:
            role, references_level = "body", 0
        if role == "references" and sections[-1].role == "references" and level > references_level:
            sections[-1].lines.extend(lines[index:end])
            continue
        section_title = "Abstract" if role == "abstract" else heading_text
        sections.append(_Section(section_title, role, lines[index:end], level=depth))
    _with_parents(sections)

    front_texts = [_md_plain(line.text) for line in front.lines]
    kept = [s for s in sections if s.role != "references"]
    authors = header.get("authors") or header.get("author") or []
    author_names = (
        _authors_from_field(authors)
        if isinstance(authors, str)
        else [name for name in authors if isinstance(name, str)]
    )
    yaml_doi = str(header.get("doi") or "")
    yaml_abstract = header.get("abstract")
    meta = _meta(
        title=_md_plain(title),
        authors=author_names or _authors_from_lines(front_texts[:30]),
        doi=_find_doi(
            [
                yaml_doi,
                "\n".join(front_texts),
                "\n".join(line.text for s in kept for line in s.lines),
            ]
        ),
        orcids=_find_orcids([line.text for line in lines]),
    )
    if yaml_abstract:
        meta["abstract"] = (
            yaml_abstract if isinstance(yaml_abstract, str) else " ".join(yaml_abstract)
        )
    return _build(path, sections, meta, reflow=False)


_TEX_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$")
_SECTION_LEVELS = {"part": -1, "chapter": 0, "section": 1, "subsection": 2, "subsubsection": 3}
_CITE = {
    "cite", "citep", "citet", "citealp", "citealt", "citeauthor", "citeyear", "citeyearpar",
    "autocite", "parencite", "textcite", "footcite", "supercite", "smartcite", "Cite", "Citep",
    "Citet", "Autocite", "Parencite", "Textcite", "fullcite", "nocite",
}  # fmt: skip
_REF = {"ref", "eqref", "autoref", "cref", "Cref", "pageref", "nameref", "vref", "Autoref"}
_DROP = {
    "label", "vspace", "hspace", "includegraphics", "bibliographystyle", "usepackage",
    "RequirePackage", "documentclass", "setlength", "addtolength", "setcounter", "addtocounter",
    "pagestyle", "thispagestyle", "pagenumbering", "addcontentsline", "graphicspath",
    "hypersetup", "newenvironment",
    "renewenvironment", "DeclareMathOperator", "newtheorem", "date", "thanks", "affil",
    "affiliation", "address", "institute", "institution", "email", "orcid", "orcidlink",
    "keywords", "ccsdesc", "acmConference", "acmYear", "acmDOI", "acmISBN", "acmBooktitle",
    "copyrightyear", "setcopyright", "received", "accepted", "input", "include", "newlength",
    "definecolor", "captionsetup", "lstset", "addbibresource", "titlerunning",
    "authorrunning", "shorttitle", "shortauthors", "markboth", "markright", "fancyhead",
    "fancyfoot", "fancyhf", "tnotetext", "fntext", "cortext", "ead", "inst", "footnotemark",
    "IEEEauthorblockA", "orcidID", "IEEEoverridecommandlockouts", "icmlaffiliation",
    "icmlcorrespondingauthor", "icmlkeywords", "hyphenation", "urlstyle",
    "geometry", "settopmatter", "newcounter", "numberwithin", "tableofcontents", "listoffigures",
    "listoftables", "makeatletter", "makeatother", "raggedbottom", "sloppy", "color",
    "pagebreak", "linebreak", "enlargethispage", "DeclareGraphicsExtensions", "theoremstyle",
    "floatname",
}  # fmt: skip
_LITERAL = {
    "LaTeX": "LaTeX", "TeX": "TeX", "BibTeX": "BibTeX", "ldots": "...", "dots": "...",
    "textendash": "\u2013", "textemdash": "\u2014", "ss": "ß", "o": "ø", "O": "Ø", "ae": "æ",
    "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å", "l": "ł", "L": "Ł", "i": "i",
    "j": "j", "S": "§", "P": "¶", "copyright": "©", "textbackslash": "\\", "textasciitilde": "~",
    "textbar": "|", "textless": "<", "textgreater": ">", "textregistered": "®",
    "texttrademark": "™", "textdegree": "°", "newline": "", "par": "",
    "quad": " ", "qquad": " ", "space": " ", "enspace": " ", "thinspace": " ",
}  # fmt: skip
_ACCENTS = {
    "'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
    ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
    "r": "\u030a",
}  # fmt: skip
_ESCAPES = {"%": "%", "&": "&", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}", " ": " ",
            ",": " ", ";": " ", ":": " ", "!": "", "/": "", "-": "", "@": ""}  # fmt: skip
_MATH_ENVS = {
    "equation", "equation*", "align", "align*", "alignat", "alignat*", "gather", "gather*",
    "multline", "multline*", "eqnarray", "eqnarray*", "displaymath", "math", "flalign",
    "flalign*",
}  # fmt: skip
_VERBATIM_ENVS = {"verbatim", "verbatim*", "Verbatim", "lstlisting", "minted", "alltt", "BVerbatim"}
_SKIPPED_ENVS = {"comment", "tikzpicture", "pgfpicture", "filecontents", "filecontents*", "picture"}
# Arguments an environment takes after \begin{name} that are layout, not text.
_ENV_ARGS = {
    "tabular": 1, "tabular*": 2, "tabularx": 2, "tabulary": 2, "minipage": 1, "subfigure": 1,
    "multicols": 1, "wrapfigure": 2, "wraptable": 2, "array": 1, "longtable": 1,
    "thebibliography": 1, "list": 2, "subtable": 1,
}  # fmt: skip


_MAX_ARGUMENT = 10_000
_GROUP_TOKENS = {"{": re.compile(r"\\.|[{}]", re.DOTALL), "[": re.compile(r"\\.|[\[\]]", re.DOTALL)}
_MATH_TOKENS = re.compile(r"\\.|\$", re.DOTALL)


def _strip_tex_comments(text: str) -> list[tuple[str, bool]]:
    """Each source line without its comment, and whether the line held only a comment."""
    result: list[tuple[str, bool]] = []
    for line in _source_lines(text):
        stripped = _TEX_COMMENT.sub(r"\1", line)
        result.append((stripped, bool(line.strip()) and not stripped.strip()))
    return result


class _TexReader:
    """A small LaTeX-to-text pass that keeps every line where it was (so line spans stay exact)
    and records the structure it meets: sections, the abstract, the bibliography."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.events: list[tuple[int, str, Any]] = []  # (position, kind, payload)
        self.title = ""
        self.authors: list[str] = []
        self.dois: list[str] = []
        self.bibitems = 0
        self.counters = [0, 0, 0, 0]
        self.has_chapters = "\\chapter" in source
        self.appendix = False
        self.document_end = len(source)
        self.macros: dict[str, str] = {}  # user macros without parameters: name -> body
        self.depth = 0
        self.budget = [10_000]  # macro expansions left, shared with the readers of macro bodies
        self.nesting = 0

    def line_of(self, position: int) -> int:
        return bisect_right(self.starts, position)

    def _skip_space(self, i: int, end: int) -> int:
        """Spaces, and one line break when an argument follows it."""
        j = i
        while j < end and self.src[j] in " \t":
            j += 1
        if j < end and self.src[j] == "\n":
            k = j + 1
            while k < end and self.src[k] in " \t":
                k += 1
            if k < end and self.src[k] in "{[":
                return k
        return j

    def _group(self, i: int, end: int, opening: str = "{", closing: str = "}") -> int:
        """The end (exclusive) of the balanced group starting at ``i``, or -1."""
        depth = 0
        # An argument never runs this long; an unclosed brace must not cost a scan per use.
        end = min(end, i + _MAX_ARGUMENT)
        for token in _GROUP_TOKENS[opening].finditer(self.src, i, end):
            char = token.group()
            if char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
                if depth == 0:
                    return token.end()
        return -1

    def _args(self, i: int, end: int, limit: int = 99) -> tuple[list[tuple[int, int]], int]:
        """Optional arguments and up to ``limit`` braced ones from ``i``.

        Returns the (start, end) of each braced argument's contents and where parsing stopped.
        """
        braced: list[tuple[int, int]] = []
        while True:
            j = self._skip_space(i, end)
            if j < end and self.src[j] == "[" and (len(braced) < limit or limit == 0):
                close = self._group(j, end, "[", "]")
                if close < 0:
                    break
                i = close
                continue
            if j < end and self.src[j] == "{" and len(braced) < limit:
                close = self._group(j, end)
                if close < 0:
                    break
                braced.append((j + 1, close - 1))
                i = close
                continue
            break
        return braced, i

    def clean(self, i: int, end: int, *, record: bool = True, breaks: bool = False) -> str:
        """Text of src[i:end]; the output has exactly as many line breaks as the input, unless
        ``breaks`` (then \\\\ is a line break too, for reading author blocks)."""
        if self.nesting > 50:  # \footnote{\footnote{...}} nested beyond reason: left as it is
            return self.src[i:end]
        self.nesting += 1
        try:
            return self._clean(i, end, record, breaks)
        finally:
            self.nesting -= 1

    def _clean(self, i: int, end: int, record: bool, breaks: bool) -> str:
        out: list[str] = []
        src = self.src
        while i < end:
            char = src[i]
            if char == "\\":
                text, i = self._command(i, end, record, breaks)
                out.append(text)
            elif char == "$":
                close = self._math_end(i, end)
                out.append(src[i:close])
                i = close
            elif char in "{}":
                i += 1
            elif char == "~":
                out.append(" ")
                i += 1
            elif char == "&":
                out.append(" | ")
                i += 1
            elif src.startswith("``", i) or src.startswith("''", i):
                out.append('"')
                i += 2
            elif src.startswith("--", i):
                dashes = 3 if src.startswith("---", i) else 2
                out.append("\u2014" if dashes == 3 else "\u2013")
                i += dashes
            else:
                j = i + 1
                while j < end and src[j] not in "\\${}~&`'-":
                    j += 1
                out.append(src[i:j])
                i = j
        return "".join(out)

    def _math_end(self, i: int, end: int) -> int:
        delimiter = "$$" if self.src.startswith("$$", i) else "$"
        j = i + len(delimiter)
        # Math ends within its paragraph; a lone "$" (a price) must not cost a scan to the end.
        end = min(end, i + _MAX_ARGUMENT)
        paragraph_end = self.src.find("\n\n", j, end)
        end = paragraph_end if paragraph_end >= 0 else end
        for token in _MATH_TOKENS.finditer(self.src, j, end):
            if token.group() == "$" and self.src.startswith(delimiter, token.start()):
                return token.start() + len(delimiter)
        return i + len(delimiter)  # an unmatched dollar is kept as it is

    def _newlines(self, i: int, j: int, produced: str = "") -> str:
        """Line breaks of src[i:j] that ``produced`` does not already carry."""
        missing = self.src.count("\n", i, j) - produced.count("\n")
        return produced + "\n" * max(missing, 0)

    def _command(self, i: int, end: int, record: bool, breaks: bool) -> tuple[str, int]:
        src = self.src
        j = i + 1
        if j >= end:
            return "", end
        if not src[j].isalpha():
            symbol = src[j]
            if symbol == "\\":
                k = j + 1
                if k < end and src[k] == "*":
                    k += 1
                _, k = self._args(k, end, limit=0)
                return ("\n" if breaks else "") + self._newlines(i, k), k
            if symbol in "([":
                closing = "\\)" if symbol == "(" else "\\]"
                close = src.find(closing, j + 1, min(end, i + _MAX_ARGUMENT))
                if close < 0:  # never closed: a lone bracket, not the rest of the file as math
                    return symbol, j + 1
                return src[i : close + 2], close + 2
            if symbol in _ACCENTS:
                return self._accent(_ACCENTS[symbol], j + 1, end)
            return _ESCAPES.get(symbol, symbol), j + 1
        k = j
        while k < end and src[k].isalpha():
            k += 1
        name = src[j:k]
        if k < end and src[k] == "*":
            k += 1
        if name in ("begin", "end"):
            return self._environment(name, i, k, end, record)
        if name in _SECTION_LEVELS or name in ("paragraph", "subparagraph"):
            return self._section(name, i, k, end, record)
        if name == "appendix":
            self.appendix = True
            self.counters[0 if self.has_chapters else 1] = 0
            return "", k
        if name in ("title", "author", "abstract", "doi", "bibliography", "printbibliography"):
            return self._front(name, i, k, end, record)
        if name in _CITE:
            args, after = self._args(k, end)
            return self._newlines(i, after, "[cite]"), after
        if name in _REF:
            args, after = self._args(k, end, limit=1)
            return self._newlines(i, after, "[ref]"), after
        if name == "bibitem":
            self.bibitems += 1
            _, after = self._args(k, end, limit=1)
            return self._newlines(i, after), after
        if name in ("def", "newcommand", "renewcommand", "providecommand"):
            return self._define(name, i, k, end)
        if name in self.macros:
            return self._expand(self.macros[name]), k
        if name in _DROP:
            _, after = self._args(k, end)
            return self._newlines(i, after), after
        if name in ("textcolor", "colorbox"):
            args, after = self._args(k, end, limit=2)
            kept = self.clean(*args[-1], record=record, breaks=breaks) if len(args) == 2 else ""
            return self._newlines(i, after, kept), after
        if name == "href":
            args, after = self._args(k, end, limit=2)
            kept = self.clean(*args[-1], record=record, breaks=breaks) if args else ""
            return self._newlines(i, after, kept), after
        if name in ("url", "path", "nolinkurl"):
            args, after = self._args(k, end, limit=1)
            kept = src[args[0][0] : args[0][1]] if args else ""
            return self._newlines(i, after, kept), after
        if name == "footnote":
            args, after = self._args(k, end, limit=1)
            inner = self.clean(*args[0], record=record, breaks=breaks) if args else ""
            return self._newlines(i, after, f" ({inner.strip()})" if inner.strip() else ""), after
        if name == "verb" and k < end and src[k] != "\n":
            line_end = src.find("\n", k, end)
            close = src.find(src[k], k + 1, end if line_end < 0 else line_end)
            if close < 0:
                return "", k
            return src[k + 1 : close], close + 1
        if name in ("item",):
            label, after = self._optional_label(k, end)
            return (f"- {label} " if label else "- "), after
        if name in _ACCENTS and len(name) == 1:
            return self._accent(_ACCENTS[name], k, end)
        if name in _LITERAL:
            return _LITERAL[name], k
        # Any other command: drop its name, keep its arguments' text (\emph{x} -> x).
        return "", k

    def _define(self, name: str, i: int, k: int, end: int) -> tuple[str, int]:
        r"""\newcommand{\name}{body} or \def\name{body}: kept when it takes no arguments."""
        src = self.src
        j = self._skip_space(k, end)
        macro = re.compile(r"\{?\s*\\([A-Za-z@]+)\s*\}?").match(src, j)
        if macro is None:
            return "", k
        j = macro.end()
        takes_arguments = False
        if name == "def":
            brace = src.find("{", j, end)
            takes_arguments = brace < 0 or "#" in src[j:brace]
            j = brace if brace >= 0 else j
        else:
            while True:
                start = self._skip_space(j, end)
                if start >= end or src[start] != "[":
                    break
                takes_arguments = True
                j = self._group(start, end, "[", "]")
                if j < 0:
                    return "", k
        start = self._skip_space(j, end)
        close = self._group(start, end) if start < end and src[start] == "{" else -1
        if close < 0:
            return "", k
        if not takes_arguments and (name != "providecommand" or macro.group(1) not in self.macros):
            self.macros[macro.group(1)] = src[start + 1 : close - 1]
        return self._newlines(i, close), close

    def _expand(self, body: str) -> str:
        # A macro that expands to itself, or to many copies of itself, stops somewhere.
        self.budget[0] -= 1
        if self.depth >= 8 or self.budget[0] < 0:
            return ""
        inner = _TexReader(body)
        inner.macros = self.macros
        inner.budget = self.budget
        inner.depth = self.depth + 1
        return " ".join(inner.clean(0, len(body), record=False).split("\n"))

    def _optional_label(self, k: int, end: int) -> tuple[str, int]:
        j = self._skip_space(k, end)
        if j < end and self.src[j] == "[":
            close = self._group(j, end, "[", "]")
            if close > 0:
                return self.clean(j + 1, close - 1, record=False).strip(), close
        return "", k

    def _accent(self, mark: str, k: int, end: int) -> tuple[str, int]:
        src = self.src
        j = k
        while j < end and src[j] == " ":
            j += 1
        if j < end and src[j] == "{":
            close = self._group(j, end)
            if close > 0:
                inner = self.clean(j + 1, close - 1, record=False)
                return unicodedata.normalize("NFC", inner[:1] + mark + inner[1:]), close
        if j < end and src[j] == "\\":  # \'{\i}
            text, after = self._command(j, end, False, False)
            return unicodedata.normalize("NFC", text[:1] + mark + text[1:]), after
        if j < end:
            return unicodedata.normalize("NFC", src[j] + mark), j + 1
        return "", end

    def _environment(self, which: str, i: int, k: int, end: int, record: bool) -> tuple[str, int]:
        src = self.src
        j = self._skip_space(k, end)
        if j >= end or src[j] != "{":
            return "", k
        close = self._group(j, end)
        if close < 0:
            return "", k
        name = src[j + 1 : close - 1].strip()
        if which == "end":
            if record and name in ("abstract", "thebibliography"):
                self.events.append((i, f"{name}_end", None))
            if name == "document":
                self.document_end = i
            return self._newlines(i, close), close
        finish = src.find(f"\\end{{{name}}}", close, end)
        if name in _MATH_ENVS:
            stop = end if finish < 0 else finish + len(f"\\end{{{name}}}")
            return src[i:stop], stop
        if name in _VERBATIM_ENVS or name in _SKIPPED_ENVS:
            stop = end if finish < 0 else finish + len(f"\\end{{{name}}}")
            if name in _SKIPPED_ENVS:
                return self._newlines(i, stop), stop
            _, body_start = self._args(close, finish if finish >= 0 else end, limit=1)
            body = src[body_start : finish if finish >= 0 else end]
            return self._newlines(i, body_start) + body + self._newlines(
                body_start + len(body), stop
            ), stop
        if record and name in ("abstract", "thebibliography", "document"):
            self.events.append((i, f"{name}_begin", None))
        _, after = self._args(close, end, limit=_ENV_ARGS.get(name, 0))
        return self._newlines(i, after), after

    def _section(self, name: str, i: int, k: int, end: int, record: bool) -> tuple[str, int]:
        starred = self.src[k - 1] == "*"
        args, after = self._args(k, end, limit=1)
        if not args:
            return "", k
        title = " ".join(self.clean(*args[0], record=False).split())
        if name in ("paragraph", "subparagraph"):
            run_in = title if title[-1:] in ".:?!" else f"{title}."
            return self._newlines(i, after, run_in), after
        if name == "part":  # parts group chapters; they are not sections to cite
            return self._newlines(i, after, title), after
        level = _SECTION_LEVELS[name]
        written = title
        if level >= 0 and not starred:
            self.counters[level] += 1
            for deeper in range(level + 1, len(self.counters)):
                self.counters[deeper] = 0
            top = 0 if self.has_chapters else 1
            parts = [str(n) for n in self.counters[top : level + 1]]
            if parts and self.appendix:
                top_number = int(parts[0])
                parts[0] = chr(ord("A") + top_number - 1) if 0 < top_number <= 26 else parts[0]
            if parts and all(part != "0" for part in parts):
                written = f"{'.'.join(parts)} {title}"
        if record:
            depth = level + 1 if self.has_chapters else level
            self.events.append((i, "section", (written, depth, title)))
        return self._newlines(i, after, written), after

    def _front(self, name: str, i: int, k: int, end: int, record: bool) -> tuple[str, int]:
        if name == "printbibliography":
            _, after = self._args(k, end)
            if record:
                self.events.append((i, "bibliography", None))
            return self._newlines(i, after), after
        args, after = self._args(k, end, limit=1)
        if not args:
            return "", k
        if name == "abstract":  # \abstract{...}, as some classes write it
            if record:
                self.events.append((i, "abstract_begin", None))
                self.events.append((after, "abstract_end", None))
            inner = self.clean(*args[0], record=False)
            return self._newlines(i, after, inner), after
        if record:
            if name == "title":
                self.title = " ".join(self.clean(*args[0], record=False).split())
            elif name == "author":
                self.authors.append(self.src[args[0][0] : args[0][1]])
            elif name == "doi":
                self.dois.append(self.src[args[0][0] : args[0][1]])
            elif name == "bibliography":
                self.events.append((i, "bibliography", None))
        return self._newlines(i, after), after


def _tex_authors(reader: _TexReader) -> list[str]:
    names: list[str] = []
    for raw in reader.authors:
        for part in re.split(r"\\(?:and|AND|And)\b", raw):
            sub = _TexReader(part)
            sub.macros = reader.macros
            text = sub.clean(0, len(part), record=False, breaks=True)
            first = next((line for line in text.splitlines() if line.strip()), "")
            for name in _authors_from_lines([first]):
                if name not in names:
                    names.append(name)
    return names


def _read_tex(path: str, text: str) -> ParsedDocument:
    stripped = _strip_tex_comments(text)
    if not stripped:
        return ParsedDocument(kind="paper", chunks=[], meta={})
    source = "\n".join(line for line, _ in stripped)
    reader = _TexReader(source)
    cleaned = reader.clean(0, len(source)).split("\n")
    # The pass keeps every line break, so line n of the output is line n of the file.
    assert len(cleaned) == len(stripped), "the LaTeX pass must keep every line"

    begins = [pos for pos, kind, _ in reader.events if kind == "document_begin"]
    first_line = reader.line_of(begins[0]) if begins else 1
    last_line = reader.line_of(reader.document_end) if begins else len(cleaned)
    lines: list[_Line] = []
    for number in range(1, len(cleaned) + 1):
        raw_line, comment_only = stripped[number - 1]
        shown = re.sub(r"(?<=\S) {2,}", " ", cleaned[number - 1]).rstrip()
        blank = not raw_line.strip() and not comment_only
        void = not blank and not shown.strip()
        lines.append(_Line(shown, number=number, void=void))

    events: dict[int, list[tuple[str, Any]]] = {}
    for position, kind, payload in reader.events:
        events.setdefault(reader.line_of(position), []).append((kind, payload))

    front = _Section(title="", role="front", has_heading=False)
    sections: list[_Section] = [front]
    current: _Section = front
    overlay: _Section | None = None
    # \bibitem entries are counted by the pass; a \bibliography{file} alone cannot be counted.
    references_found = reader.bibitems or None
    for number in range(first_line, min(last_line, len(lines)) + 1):
        line = lines[number - 1]
        ends: list[str] = []
        for kind, payload in events.get(number, []):
            if kind == "section":
                written, level, bare = payload
                normal = _normal_title(bare)
                if normal in _REFERENCE_TITLES:
                    role = "references"
                elif normal == "abstract":
                    role = "abstract"
                else:
                    role = "body"
                current = _Section("Abstract" if role == "abstract" else written, role, level=level)
                sections.append(current)
                overlay = None
            elif kind == "abstract_begin":
                overlay = _Section("Abstract", "abstract", has_heading=False)
                sections.append(overlay)
            elif kind == "thebibliography_begin":
                overlay = _Section("References", "references", has_heading=False)
                sections.append(overlay)
            elif kind.endswith("_end"):
                ends.append(kind)
        (overlay or current).lines.append(line)
        if ends and overlay is not None:
            overlay = None
            # Text after the environment continues the section it interrupted.
            resumed = _Section(current.title, current.role, has_heading=False, level=current.level)
            current = resumed
            sections.append(resumed)
    # A thebibliography's entries are counted from \bibitem, not from its text.
    for section in sections:
        if section.role == "references" and not section.has_heading and reader.bibitems:
            section.lines = []
    _with_parents(sections)

    kept = "\n".join(line.text for s in sections if s.role != "references" for line in s.lines)
    meta = _meta(
        title=reader.title,
        authors=_tex_authors(reader),
        doi=_find_doi([*reader.dois, source[: begins[0]] if begins else "", kept]),
        orcids=_find_orcids([source]),
    )
    return _build(path, sections, meta, reflow=False, references_found=references_found)


def _source_lines(text: str) -> list[str]:
    """Lines as an editor numbers them (only CR, LF and CRLF end a line)."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise FileRejected("binary content (NUL bytes), not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        best = from_bytes(data).best()
        if best is None:
            raise FileRejected("not a text file: its encoding could not be recognised") from None
        return str(best)


_READERS: dict[str, Callable[[str, str], ParsedDocument]] = {
    ".tex": _read_tex,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".txt": _read_text,
}


def read_paper(path: str, data: bytes) -> ParsedDocument:
    """A paper's chunks (abstract and sections, without the reference list) and its metadata.

    Raises FileRejected for an unsupported suffix, an encrypted, corrupt or text-less PDF, or a
    text file that cannot be decoded.
    """
    suffix = PurePosixPath(path).suffix.lower()
    if suffix == ".pdf":
        return _read_pdf(path, data)
    reader = _READERS.get(suffix)
    if reader is None:
        shown = suffix or "no extension"
        raise FileRejected(
            f"not a paper format ({shown}); papers are read from {', '.join(SUFFIXES)}"
        )
    return reader(path, _decode(data))


_PAPER_ABSTRACT = re.compile(
    # "Abstract" alone or followed by punctuation: not "Abstract Syntax Notation"
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__|\*|_)?abstract(?:\*\*|__|\*|_)?[ \t]*"
    r"(?:$|[.:\u2014\u2013-])|\\begin\{abstract\}|^[ \t]*\\abstract\b",
    re.IGNORECASE | re.MULTILINE,
)
_PAPER_REFERENCES = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\d+\.?[ \t]+)?(?:\*\*)?(?:references|bibliography|works cited|"
    r"literature cited)(?:\*\*)?[ \t]*:?[ \t]*$|\\begin\{thebibliography\}|\\bibliography\{"
    r"|\\printbibliography",
    re.IGNORECASE | re.MULTILINE,
)
_PAPER_SECTIONS = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\d+\.?[ \t]+)?(?:introduction|related work|background|methods?|"
    r"methodology|materials and methods|experiments|results|discussion|conclusions?)[ \t]*$"
    r"|\\section\*?\{",
    re.IGNORECASE | re.MULTILINE,
)
_PAPER_CITATIONS = re.compile(r"\[\d{1,3}(?:\s*[,\u2013-]\s*\d{1,3})*\]|\bet al\.|\\cite[pt]?\{")
_README_SIGNS = (
    re.compile(r"^#{1,6}\s*(?:installation|install|usage|getting started|quick ?start|"
               r"contributing|license|requirements|build)\b", re.I | re.M),
    re.compile(r"\b(?:pip|npm|yarn|cargo|brew|apt(?:-get)?|go) (?:install|add|get)\b"),
    re.compile(r"^\s*(?:```|~~~)", re.M),
    re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]"),
)  # fmt: skip
_REGULATION_ARTICLE = re.compile(
    # a heading line ("Article 2", "Article 2 - Definitions"), not "Article 17 of the GDPR ..."
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:Article|Art\.)[ \t]+\d+[a-z]?[ \t]*(?:[-\u2013\u2014:.].*)?$",
    re.M,
)
_REGULATION_SIGNS = re.compile(
    r"HA(?:S|VE) ADOPTED TH(?:IS|E PRESENT)|^\s*Whereas\b|^[ \t]*§[ \t]*\d+|"
    r"\bshall (?:apply|enter into force)\b",
    re.M,
)


def looks_like_paper(text: str) -> bool:
    """A cheap guess whether a document's text is a scientific paper (for kind "auto")."""
    head = text[:4000]
    score = 0
    if _PAPER_ABSTRACT.search(head):
        score += 3
    if _PAPER_REFERENCES.search(text):
        score += 2
    doi = _DOI.search(text)
    if doi:
        score += 3 if doi.start() < 4000 else 1
    arxiv = _ARXIV.search(text)
    if arxiv:
        score += 3 if arxiv.start() < 4000 else 1
    if _find_orcids([head]):
        score += 1
    if len(_PAPER_SECTIONS.findall(text)) >= 2:
        score += 1
    if len(_PAPER_CITATIONS.findall(text)) >= 3:
        score += 1
    score -= 2 * sum(1 for sign in _README_SIGNS if sign.search(text))
    if len(_REGULATION_ARTICLE.findall(text)) >= 2:
        score -= 5
    if _REGULATION_SIGNS.search(text):
        score -= 3
    return score >= 3
