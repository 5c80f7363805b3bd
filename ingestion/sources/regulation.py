"""Regulations: articles, paragraphs and points, each chunk carrying its full citation path.

Every format is read into one tree: divisions (part, title, chapter, section) above units (an
article, a US-style §, a rulebook's rule "1.1.2" or its guidance), units holding numbered
paragraphs, paragraphs holding points (a) and points holding subpoints (i). XML is read by its
elements (EUR-Lex Formex, USLM, Akoma Ntoso, or any XML whose element names look like
article/paragraph/point); HTML, Markdown, plain text and PDF are read line by line by one
detector. The tree is then cut into one chunk per numbered paragraph. A paragraph much longer
than the embedder's window is cut between its points, and each piece carries the deeper path
("Art. 17(3)(b)"); nothing is ever cut inside a point.

Rulebooks in the UK/ADGM/DFSA style number their rules with three or more levels ("1.1.2",
"A2.1.3"), under sections "1.1 Application" and chapters "1. INTRODUCTION", and follow a rule
with "Guidance" notes "1.", "2.". A rule is a unit cited by its bare number ("1.1.2", "1.1.2(1)"
for its numbered paragraph); its heading is its section's title and its parents the chapter.
Guidance is a unit of its own, "1.1.2 Guidance", cut into one chunk per numbered note
("1.1.2 Guidance 1"): a note explains the rule but is not the rule, so it is never packed into
the rule's chunk, and a question about either lands on a chunk that holds only that passage.
"""

import codecs
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import charset_normalizer
import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException
from pypdf import PdfReader

from ingestion.errors import FileRejected
from ingestion.sources.base import MAX_CHARS, Chunk, ParsedDocument
from ingestion.sources.text import chunk_text

SUFFIXES = (".xml", ".html", ".htm", ".md", ".markdown", ".txt", ".pdf")

# A paragraph up to this many times the window stays whole: cutting it would separate a point
# from the sentence that introduces it, which costs more than the embedder truncating the tail.
SPLIT_FACTOR = 1.5

_Span = tuple[int, int]  # lines [start, end) of the document's line list


# --- The tree every format is read into ---------------------------------------------------------


@dataclass
class _Node:
    """A paragraph, point or subpoint (the unit's root has no label): text runs and sub-nodes."""

    label: str = ""
    items: "list[_Node | _Span]" = field(default_factory=list)
    prefix: str = ""  # XML: the number ("1.", "(a)") still to be put before the first text


@dataclass
class _Unit:
    """An article, a § or a rulebook's rule or guidance: its number, heading, the headings above
    it and its paragraphs."""

    prefix: str  # "Art.", "§", "Section" or "Rule"; "" for a rulebook's rule "1.1.2"
    number: str
    heading: str
    parents: tuple[str, ...]
    root: _Node = field(default_factory=_Node)
    guidance: bool = False  # rulebook: the guidance following the rule (or section) `number`
    note: str = ""  # rulebook: the guidance's own title ("Guidance on CDD"), for the context

    def cite(self, labels: tuple[str, ...] = ()) -> str:
        if self.prefix:
            return f"{self.prefix} {self.number}" + "".join(f"({label})" for label in labels)
        base = self.number
        if self.guidance:
            base = f"{base} Guidance".lstrip()
            if labels:
                first = labels[0] if labels[0][:1].isdigit() else f"({labels[0]})"
                base, labels = f"{base} {first}", labels[1:]
        return base + "".join(f"({label})" for label in labels)

    @property
    def article_like(self) -> bool:
        """Its first level "(a)" holds points kept together, unless the level is numbered."""
        return self.prefix in ("Art.", "")

    @property
    def notes(self) -> bool:
        """Guidance made of notes ("1.", "(i)") from its first line: one chunk per note."""
        return self.guidance and bool(self.root.items) and isinstance(self.root.items[0], _Node)


@dataclass
class _Loose:
    """Text outside any unit (preamble, recitals, annexes), under a section name."""

    section: str
    span: _Span


@dataclass
class _Doc:
    lines: list[str] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)  # page of each line; empty when not paged
    numbered: bool = False  # the lines are the file's lines: chunks carry line spans
    title: str = ""
    parts: list[_Unit | _Loose] = field(default_factory=list)


# --- Text helpers --------------------------------------------------------------------------------


def _ws(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _split_lines(text: str) -> list[str]:
    """Lines as an editor numbers them (form feeds and other separators stay inside a line)."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _decode(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else whatever encoding charset_normalizer finds."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise FileRejected("cannot decode the text: not UTF-8, and no other encoding fits")
    return str(best).lstrip("\ufeff")


_HUGE = 4 * MAX_CHARS
_SENTENCE_BREAK = re.compile(r"(?<=[.;:])\s+(?=[A-Z\u2018\u201c(])")


def _pieces(text: str) -> list[str]:
    """An XML or HTML paragraph of absurd length as sentence groups; anything else whole."""
    if len(text) <= _HUGE:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_BREAK.split(text):
        if current and len(current) + len(sentence) + 1 > MAX_CHARS:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    return [*pieces, current] if current else pieces


# --- Labels: "1.", "(1)", "(a)", "(i)", "(A)" ----------------------------------------------------

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


# --- Structure lines: units, divisions, headings -------------------------------------------------

_UNIT_LINE = re.compile(
    r"^(?P<kw>Article|ARTICLE|Art\.|§|Section|SECTION|Sec\.|SEC\.|Rule|RULE)\s*"
    r"(?P<num>\d+[A-Za-z]{0,3}(?:[.\-]\d+[A-Za-z]{0,3})*)\.?(?:\s*[:\-\u2013\u2014]\s*|\s+|$)(?P<rest>.*)$"
)
_UNIT_PREFIX = {
    "article": "Art.",
    "art.": "Art.",
    "§": "§",
    "section": "Section",
    "sec.": "Section",
    "rule": "Rule",
}
_DIVISION_LINE = re.compile(
    r"^(?P<kw>PART|Part|TITLE|Title|CHAPTER|Chapter|SECTION|Section|SUB-SECTION|Sub-section"
    r"|SUBSECTION|Subsection|SUBPART|Subpart|SUBCHAPTER|Subchapter|BOOK|Book"
    r"|ANNEX|Annex|APPENDIX|Appendix|SCHEDULE|Schedule)"
    r"(?:\s+(?P<num>[IVXLCDM]+|\d+[A-Za-z]?|[A-Z]))?\.?(?:\s*[:\-\u2013\u2014.]\s*|\s+|$)(?P<rest>.*)$"
)
_RANKS = {
    "book": 0,
    "part": 1,
    "title": 2,
    "chapter": 3,
    "subchapter": 4,
    "subpart": 4,
    "section": 5,
    "sub-section": 6,
    "subsection": 6,
}
_ANNEXES = frozenset({"annex", "appendix", "schedule"})
_OPENERS = "\u2018'\"\u201c([\u00ab"
_ENDS_SENTENCE = re.compile(r"[.;:!?)]\s*$")
_LEAD_IN = re.compile(r"[:\u2014\u2013-]\s*$")
_ENDS_CLAUSE = re.compile(r"(?:[:;.,\u2014\u2013]|\b(?:or|and|but))\s*$")
_WHEREAS = re.compile(r"^whereas\b.{0,40}$", re.IGNORECASE)
# Recitals under a heading of their own ("## Recitals"), and the one-recital-per-page layout of
# unofficial copies ("Recital 85", "## Recital 85 - Cooperation along the value chain").
_RECITALS_HEADING = re.compile(r"^(?:recitals?|whereas)\s*:?$", re.IGNORECASE)
_RECITAL_LINE = re.compile(
    r"^recital\s+(?P<number>\d{1,3}[a-z]?)(?:\s*[-\u2013\u2014:.]?\s+(?P<title>\S.*))?$",
    re.IGNORECASE,
)
# Older acts open every recital with the word: "(1) Whereas the objectives of the Community".
_OLD_RECITAL = re.compile(r"^whereas\b", re.IGNORECASE)
_ADOPTED = re.compile(r"^HAVE ADOPTED\b", re.IGNORECASE)
# The closing formula of an EU act ends its last article.
_CLOSING = re.compile(
    r"^(?:This (?:Regulation|Directive|Decision) shall be binding|Done at [A-Z][a-z]+, )"
)


def _clean_heading(text: str) -> str:
    return _ws(text.strip().strip("#*_").strip(" -\u2013\u2014:"))


def _heading_ok(rest: str, level: int) -> bool:
    """Text after "Article 17" on the same line reads as its heading, not as a sentence."""
    if not rest or level:
        return True
    return len(rest) <= 200 and (rest[0].isupper() or rest[0] in _OPENERS)


def _subtitle_ok(text: str, level: int) -> bool:
    """The line after a bare "Article 17" or "CHAPTER III" reads as its heading."""
    if level:
        return True
    if len(text) > 200 or _LABEL.match(text) or text[-1] in ".;:,":
        return False
    return text[0].isupper() or text[0] in _OPENERS


def _unit_match(text: str, level: int, *, articles: bool) -> tuple[str, str, str] | None:
    """(prefix, number, heading) of a line opening an article, a § or a section."""
    match = _UNIT_LINE.match(text)
    if not match:
        return None
    prefix = _UNIT_PREFIX[match["kw"].lower()]
    if prefix == "Section" and articles:
        return None  # in a regulation with articles, a section groups articles
    rest = _clean_heading(match["rest"])
    if not _heading_ok(rest, level):
        return None
    return prefix, match["num"], rest


def _division_match(text: str, level: int) -> tuple[int, str, bool] | None:
    """(rank, display text, heading given) of a line opening a part, chapter, section, annex."""
    match = _DIVISION_LINE.match(text)
    if not match:
        return None
    keyword = match["kw"].lower()
    if keyword not in _ANNEXES and not match["num"]:
        return None
    rest = _clean_heading(match["rest"])
    if not _heading_ok(rest, level):
        return None
    display = _ws(f"{match['kw'].capitalize()} {match['num'] or ''} {rest}")
    return _RANKS.get(keyword, -1), display, bool(rest)


# --- Rulebooks: "1.1.2" rules, "1.1 Title" sections, "1. TITLE" chapters, "Guidance" notes ------

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


# --- Line sources: Markdown, plain text, PDF and HTML --------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    raw: str  # as it appears in a chunk's text
    norm: str  # decoration stripped, for recognising structure; "" for a blank line
    level: int = 0  # heading level (Markdown #, HTML h1-h6); 0 for body text
    page: int = 0
    title: bool = False  # HTML: marked as the document's title (EUR-Lex "doc-ti")
    verbatim: bool = False  # Markdown: inside a code fence, never structure


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_MD_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_MD_RULE = re.compile(r"^(?:[=\-*_]\s*){3,}$")


def _md_norm(raw: str) -> tuple[str, int]:
    """A Markdown line without its decoration, and its heading level."""
    text = raw.replace("\xa0", " ").strip()
    if _MD_RULE.match(text):
        return "", 0
    level = 0
    heading = _MD_HEADING.match(text)
    if heading:
        level, text = len(heading[1]), heading[2]
    text = re.sub(r"^(?:>\s*)+", "", text)
    text = re.sub(r"^[-*+]\s+", "", text)
    text = text.replace("**", "").replace("__", "")
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!])", r"\1", text)
    if len(text) > 2 and text[0] in "*_" and text[-1] == text[0]:
        text = text.strip("*_")
    return _ws(text), level


def _markdown_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    fence: str | None = None
    for raw in _split_lines(text):
        marker = _MD_FENCE.match(raw)
        if marker or fence is not None:
            if marker and fence is None:
                fence = marker[1][0] * len(marker[1])
            elif marker and fence is not None and marker[1].startswith(fence):
                fence = None
            lines.append(_Line(raw, raw.strip(), verbatim=True))
            continue
        norm, level = _md_norm(raw)
        lines.append(_Line(raw, norm, level))
    return lines


@dataclass
class _Division:
    rank: int  # part 1, title 2, chapter 3, section 5...; an annex -1 closes all
    text: str  # "Chapter III Rights of the data subject"
    number: str = ""  # rulebook: "1.1" of "1.1 Application" (rank 10 + its levels)
    title: str = ""  # rulebook: "Application"


class _LineParser:
    """Finds divisions, units, numbered paragraphs and points in a sequence of lines."""

    def __init__(self, lines: list[_Line], *, per_line: bool, numbered: bool) -> None:
        self.src = lines
        self.per_line = per_line  # HTML: every line is a paragraph of its own
        structural = [line for line in lines if line.norm and not line.verbatim]
        self.articles = any(
            (m := _unit_match(line.norm, line.level, articles=True)) and m[0] == "Art."
            for line in structural
        )
        self.structured = any(
            _unit_match(line.norm, line.level, articles=self.articles) for line in structural
        )
        # Three lines opening rules "1.1.2" make a rulebook, or two and a "Guidance" line; one
        # alone could be a wrapped reference.
        rules, guidance = 0, False
        for line in structural:
            parsed = _rule_line(line.norm)
            if parsed and parsed.depth >= 3 and (parsed.form != "text" or _rule_start(parsed)):
                rules += 1
            guidance = guidance or _guidance(line.norm, "", 0) is not None
            if rules >= 3 or (rules == 2 and guidance):
                break
        self.rulebook = rules >= 3 or (rules == 2 and guidance)
        self.structured = self.structured or self.rulebook
        self.doc = _Doc(
            lines=[line.raw for line in lines],
            pages=[line.page for line in lines] if any(line.page for line in lines) else [],
            numbered=numbered,
        )
        self.divisions: list[_Division] = []
        self.headings: list[tuple[int, str]] = []  # Markdown/HTML headings outside units
        self.unit: _Unit | None = None
        self.unit_level = 0
        self.levels: list[_Level] = []
        self.open: _Node | None = None  # the node whose last item is the run being read
        self.loose: _Loose | None = None
        self.expect = ""  # "unit" or "division": the next line may be its heading
        self.boundary = True  # a blank line, a heading or structure came just before
        self.previous = ""  # the previous non-blank line
        self.recitals = False
        # The recital being read ("Recital 85") and its number: a recital starts only at a
        # higher number, so a PDF page's footnotes "(1) OJ L 119 ..." do not start recitals.
        self.recital = ""
        self.recital_key: tuple[int, str] = (0, "")
        self.seen_unit = False
        self.title = ""

    def parse(self, default_title: str = "") -> _Doc:
        for index, line in enumerate(self.src):
            self._line(index, line)
        self.doc.title = self.title or default_title or self._first_lines_title()
        return self.doc

    def _line(self, index: int, line: _Line) -> None:
        text = line.norm
        if not text:
            self._break()
            return
        read = self._rulebook_line(index, line) if self.rulebook and not line.verbatim else None
        if read == "text":
            self.previous = text
            self.boundary = self.per_line
            return
        if not line.verbatim and self._recital_line(index, line):
            self.previous = text
            return
        if read == "structure" or (read is None and not line.verbatim and self._structure(line)):
            self.previous = text
            self._break()
            return
        if self.unit is not None:
            self._unit_text(self.unit, index, text)
        else:
            self._loose_text(index, text)
        self.previous = text
        self.boundary = self.per_line

    def _break(self) -> None:
        self.open = None
        self.loose = None
        self.boundary = True

    def _may_open(self, line: _Line, *, bare: bool) -> bool:
        """Whether a structure line really opens something: a wrapped line of running text can
        begin "Chapter IX. It applies", so text after the number needs a sentence ended before.
        """
        previous = self.previous
        return bool(
            line.level
            or (bare and not line.norm.endswith("."))
            or self.boundary
            or _ENDS_SENTENCE.search(previous)
            or not re.search(r"[a-z]", previous)
        )

    def _structure(self, line: _Line) -> bool:
        """Handle a heading or structure line; False when the line is body text."""
        text, level = line.norm, line.level
        expect, self.expect = self.expect, ""
        unit = _unit_match(text, level, articles=self.articles)
        if unit and self._may_open(line, bare=not unit[2]):
            self._start_unit(*unit, level=level)
            return True
        division = None if unit else _division_match(text, level)
        if division and self._may_open(line, bare=not division[2]):
            rank, display, has_heading = division
            self._close_unit()
            self._end_recitals()
            self.divisions = [d for d in self.divisions if d.rank < rank]
            self.divisions.append(_Division(rank, display))
            self.headings = []
            self.expect = "" if has_heading else "division"
            return True
        if expect and _subtitle_ok(text, level):
            if expect == "unit" and self.unit is not None:
                self.unit.heading = text
            elif expect == "division" and self.divisions:
                self.divisions[-1].text = f"{self.divisions[-1].text} {text}"
            return True
        if _CLOSING.match(text):
            self._close_unit()
            self.divisions = [_Division(-1, "Final provisions")]
            self.headings = []
            return False
        if line.title and not self.seen_unit:
            self.title = _ws(f"{self.title} {text}")
            return True
        if level:
            if self.unit is not None and self.unit_level and level > self.unit_level:
                return False  # a heading inside an article is part of its text
            self._close_unit()
            first = not self.title and not self.seen_unit and not self.divisions
            if first:
                self.title = text
                if self.structured:
                    return True
            self._end_recitals()
            if not self.seen_unit and (_RECITALS_HEADING.match(text) or _WHEREAS.match(text)):
                self.recitals = True
            self.headings = [(lvl, h) for lvl, h in self.headings if lvl < level]
            self.headings.append((level, text))
            return True
        return False

    def _rulebook_line(self, index: int, line: _Line) -> str | None:
        """Read a rulebook's numbered line: "structure", "text" (it opened a rule and is its
        first line), or None when it is neither and is read as any other line."""
        text = line.norm
        parsed = _rule_line(text)
        if parsed is None:
            marker = _guidance(text, "", 0)
            return None if marker is None else self._open_guidance(index, marker, self._around())
        if parsed.form == "guidance":
            number = parsed.number + (f"({parsed.label})" if parsed.label else "")
            return self._open_guidance(index, parsed, number)
        if parsed.depth == 1:
            if parsed.form == "text" and (line.level or _chapter_title(parsed.rest)):
                return self._numbered_heading(parsed, text)
            return None
        if parsed.depth == 2:
            if parsed.form == "bare" or (parsed.form == "text" and _section_title(parsed.rest)):
                return self._numbered_heading(parsed, text)
            return None
        rule = self.unit
        if rule is None or rule.prefix or rule.guidance or rule.number != parsed.number:
            rule = None  # not the rule this line continues ("1.1.2" then "1.1.2(1) ...")
        if parsed.form == "text":
            if not _rule_start(parsed) or rule is not None:
                return None
            # "1.1.1 Application" above "1.1.1.1 These Rules apply" heads them; "[Deleted]" is
            # what is left of a rule.
            titled = _section_title(parsed.rest) and parsed.rest[0] != "["
            if titled and self._opens_deeper(index, parsed.number):
                return self._numbered_heading(parsed, text)
            rule = self._open_rule(parsed.number, level=line.level)
            self._start_run(rule.root, index)
            return "text"
        if rule is None:
            rule = self._open_rule(parsed.number, level=line.level)
        if parsed.form == "bare":
            return "structure"
        self._unit_text(rule, index, f"({parsed.label}) {parsed.rest}".rstrip(), forced=True)
        return "text"

    def _around(self) -> str:
        """The number a "Guidance" line without one belongs to: the rule or section above."""
        if self.unit is not None and not self.unit.prefix:
            return self.unit.number
        numbered = [d.number for d in self.divisions if d.number]
        return numbered[-1] if numbered else ""

    def _opens_deeper(self, index: int, number: str) -> bool:
        """Whether the next line is numbered below `number` ("1.1.1 Application" above
        "1.1.1.1 These Rules apply"): then `number` is a heading, not a rule."""
        for line in self.src[index + 1 :]:
            if not line.norm:
                continue
            parsed = _rule_line(line.norm)
            if parsed is None:
                return False
            deeper = parsed.number.startswith(f"{number}.")
            return deeper or (parsed.number == number and parsed.form == "guidance")
        return False

    def _numbered_heading(self, parsed: _RuleLine, text: str) -> str:
        self._close_unit()
        rank = 10 + parsed.depth
        self.divisions = [d for d in self.divisions if d.rank < rank]
        self.divisions.append(_Division(rank, _ws(text), parsed.number, parsed.rest))
        self.headings = []
        self.expect = ""
        return "structure"

    def _open_rule(self, number: str, *, level: int = 0, guidance: bool = False) -> _Unit:
        """A rule (or its guidance) under the numbered sections that hold it."""
        self._close_unit()
        self.divisions = [
            d for d in self.divisions if d.rank <= 11 or not d.number or _within(number, d.number)
        ]
        sections = [d for d in self.divisions if d.number and d.rank >= 12]
        section = sections[-1] if sections else None
        heading = section.title if section else ""
        parents = tuple(d.text for d in self.divisions if d is not section)
        unit = _Unit("", number, heading, parents, guidance=guidance)
        self.doc.parts.append(unit)
        self.unit = unit
        self.unit_level = level
        self.seen_unit = True
        self._end_recitals()
        self.headings = []
        self.expect = ""
        return unit

    def _open_guidance(self, index: int, marker: _RuleLine, number: str) -> str:
        unit = self.unit
        if unit is None or not unit.guidance or unit.number != number:
            unit = self._open_rule(number, guidance=True)
        if marker.title not in ("Guidance", "GUIDANCE"):
            unit.note = marker.title
        if not marker.note:
            return "structure"
        note = marker.note if marker.note.startswith("(") else f"{marker.note}."
        self._unit_text(unit, index, f"{note} {marker.rest}".rstrip(), forced=True)
        return "text"

    def _start_unit(self, prefix: str, number: str, heading: str, *, level: int) -> None:
        self._close_unit()
        self.unit = _Unit(prefix, number, heading, tuple(d.text for d in self.divisions))
        self.doc.parts.append(self.unit)
        self.unit_level = level
        self.expect = "" if heading else "unit"
        self.seen_unit = True
        self._end_recitals()

    def _close_unit(self) -> None:
        self.unit = None
        self.unit_level = 0
        self.levels = []
        self.open = None

    def _para_depth(self, unit: _Unit) -> int:
        """1 when the first level holds the unit's paragraphs (numbered, or a §'s (a))."""
        if self.levels and (not unit.article_like or self.levels[0].kind in _NUMERIC):
            return 1
        return 0

    def _unit_text(self, unit: _Unit, index: int, text: str, *, forced: bool = False) -> None:
        match = _LABEL.match(text)
        if match and (forced or self._may_start_item(match)):
            placed = _place(self.levels, _candidates(match))
            if placed is not None:
                depth, kind, label = placed
                parent = self.levels[depth - 1].node if depth else unit.root
                node = _Node(label)
                parent.items.append(node)
                del self.levels[depth:]
                self.levels.append(_Level(kind, label, node))
                self._start_run(node, index)
                return
        if self.open is not None and not self.boundary and not self._new_subparagraph(unit, text):
            self._extend(self.open, index)
            return
        self._start_run(self._home(unit, text), index)

    def _may_start_item(self, match: re.Match[str]) -> bool:
        # "(a) of Article 9(2)" at the start of a wrapped line continues a sentence.
        if re.match(r"(?:of|and|or)\b", match["rest"] or ""):
            return False
        return self.boundary or bool(_ENDS_CLAUSE.search(self.previous))

    def _new_subparagraph(self, unit: _Unit, text: str) -> bool:
        """Without a blank line: a sentence after a point's final full stop closes the list."""
        return (
            len(self.levels) > self._para_depth(unit)
            and self.previous.endswith(".")
            and _starts_sentence(text)
        )

    def _home(self, unit: _Unit, text: str) -> _Node:
        """The node an unnumbered paragraph belongs to: the text after a list joins its parent."""
        keep = self._para_depth(unit)
        if len(self.levels) > keep and _starts_sentence(text):
            del self.levels[keep:]
        return self.levels[-1].node if self.levels else unit.root

    def _start_run(self, node: _Node, index: int) -> None:
        node.items.append((index, index + 1))
        self.open = node

    def _extend(self, node: _Node, index: int) -> None:
        last = node.items[-1]
        if isinstance(last, tuple):
            node.items[-1] = (last[0], index + 1)
        else:
            node.items.append((index, index + 1))

    def _loose_text(self, index: int, text: str) -> None:
        ended = False
        if _WHEREAS.match(text):
            self.recitals = True
            self.recital, self.recital_key = "", (0, "")
        elif _ADOPTED.match(text):
            ended = self.recitals
            self._end_recitals()
        match = _LABEL.match(text)
        paren = (match["paren"] or "") if match else ""
        number = paren if paren[:1].isdigit() else ""
        rest = (match["rest"] or "") if match else ""
        starts = self.boundary or bool(_ENDS_SENTENCE.search(self.previous))
        if number and starts and not self.seen_unit and _OLD_RECITAL.match(rest):
            self.recitals = True
        if self.recitals and number and starts and _recital_key(number) > self.recital_key:
            self._start_recital(index, number)
        elif self.loose is not None and not self.boundary and not ended:
            self.loose.span = (self.loose.span[0], index + 1)
        else:
            self._start_loose(index, self._section())

    def _recital_line(self, index: int, line: _Line) -> bool:
        """A "Recital 85" line (or heading) outside the articles starts that recital."""
        match = _RECITAL_LINE.match(line.norm)
        if match is None or (match["title"] and not line.level) or self.unit is not None:
            return False
        if not (line.level or self.boundary or _ENDS_SENTENCE.search(self.previous)):
            return False  # "... as set out in" / "Recital 85 of this Regulation": running text
        self.recitals = True
        self.recital_key = (0, "")  # such copies may list recitals in any order
        self._start_recital(index, match["number"])
        self.boundary = False
        return True

    def _start_recital(self, index: int, number: str) -> None:
        self.recital, self.recital_key = f"Recital {number}", _recital_key(number)
        self._start_loose(index, self.recital)

    def _end_recitals(self) -> None:
        self.recitals = False
        self.recital, self.recital_key = "", (0, "")

    def _start_loose(self, index: int, section: str) -> None:
        self.loose = _Loose(section, (index, index + 1))
        self.doc.parts.append(self.loose)

    def _section(self) -> str:
        if self.recitals and self.recital:  # a recital's later paragraphs, after a blank line
            return self.recital
        path = [d.text for d in self.divisions] + [h for _, h in self.headings]
        if path:
            return " > ".join(path)
        return "Preamble" if self.structured and not self.seen_unit else ""

    def _first_lines_title(self) -> str:
        picked: list[str] = []
        for line in self.src:
            if not line.norm:
                if picked:
                    break
                continue
            structure = (
                _unit_match(line.norm, line.level, articles=self.articles)
                or _division_match(line.norm, line.level)
                or (self.rulebook and _rule_line(line.norm))
            )
            if structure or _LABEL.match(line.norm) or len(picked) == 8:
                break
            picked.append(line.norm)
        # A title wraps over a few lines; a long first paragraph is not a title.
        title = " ".join(picked)
        if len(title) > 400:
            title = picked[0] if len(picked[0]) <= 200 else ""
        return title


def _recital_key(number: str) -> tuple[int, str]:
    """The order of recital numbers: "12" < "12a" < "13"."""
    digits = re.match(r"\d+", number)
    assert digits is not None  # callers pass numbers that start with a digit
    return int(digits[0]), number[digits.end() :]


def _rule_start(parsed: _RuleLine) -> bool:
    """A numbered line with text opens a rule when the text starts like one ("1.1.2 A Person
    must"), unlike a wrapped reference ("1.1.2 and 1.1.3 apply") or a line of the contents."""
    rest = parsed.rest
    return (
        bool(rest) and (rest[0].isupper() or rest[0] in _RULE_STARTS) and not _CONTENTS.search(rest)
    )


def _starts_sentence(text: str) -> bool:
    letters = text.lstrip(_OPENERS + " ")
    return bool(letters) and letters[0].isupper()


# --- HTML ----------------------------------------------------------------------------------------

_HTML_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "nav", "head", "button", "select", "iframe"}
)
_HTML_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "aside",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "figure",
        "figcaption",
        "address",
        "hr",
        "center",
        "details",
        "summary",
        "body",
        "html",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    }
)
_HTML_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "wbr", "source"})


class _HtmlLines(HTMLParser):
    """HTML as lines: one per block element, a table row's cells joined on one line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[_Line] = []
        self.parts: list[str] = []
        self.level = 0
        self.title_hint = False
        self.skipping: list[str] = []
        self.rows = 0
        self.in_title = False
        self.page_title: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and "svg" not in self.skipping:
            self.in_title = True
            return
        if self.skipping == ["head"] and (tag == "body" or tag in _HTML_BLOCKS):
            self.skipping.pop()  # HTML may leave </head> out
        if tag in _HTML_SKIP or self.skipping:
            if tag in _HTML_SKIP and tag not in _HTML_VOID:
                self.skipping.append(tag)
            return
        if tag == "br":
            self._boundary()
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "tr":
            self._flush()
            self.rows += 1
        elif tag in _HTML_BLOCKS:
            self._boundary()
            if tag[0] == "h" and tag[1:].isdigit():
                self.level = int(tag[1:])
            classes = dict(attrs).get("class") or ""
            if "doc-ti" in classes:
                self.title_hint = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "tr":
            self._flush()
            self.rows = max(0, self.rows - 1)
        elif tag in _HTML_BLOCKS:
            self._boundary()
            if tag[0] == "h" and tag[1:].isdigit():
                self.level = 0

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.page_title.append(data)
        elif not self.skipping:
            self.parts.append(data)

    def _boundary(self) -> None:
        if self.rows:
            self.parts.append(" ")
        else:
            self._flush()

    def _flush(self) -> None:
        text = _ws("".join(self.parts))
        self.parts = []
        if text:
            for piece in _pieces(text):
                self.lines.append(_Line(piece, piece, self.level, title=self.title_hint))
        self.title_hint = False


def _read_html(text: str) -> _Doc:
    parser = _HtmlLines()
    parser.feed(text)
    parser.close()
    parser._flush()
    lines = parser.lines
    page_title = _ws("".join(parser.page_title))
    return _LineParser(lines, per_line=True, numbered=False).parse(page_title)


# --- PDF -----------------------------------------------------------------------------------------

_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$", re.IGNORECASE)
_PLACEHOLDER_TITLES = frozenset({"", "untitled", "anonymous", "unknown", "none"})


def _strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers and the header and footer lines repeated on most pages."""

    def key(line: str) -> str:
        return re.sub(r"\d+", "#", _ws(line)).lower()

    def structural(line: str) -> bool:
        text = _ws(line)
        return bool(
            _unit_match(text, 0, articles=False) or _division_match(text, 0) or _LABEL.match(text)
        )

    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({key(line) for line in lines[:2] + lines[-2:] if line.strip()})
    threshold = max(3, (len(pages) + 1) // 2)
    repeated = {k for k, n in counts.items() if n >= threshold}
    cleaned = []
    for lines in pages:
        edges = set(range(min(2, len(lines)))) | set(range(max(0, len(lines) - 2), len(lines)))
        cleaned.append(
            [
                line
                for i, line in enumerate(lines)
                if not (
                    i in edges
                    and not structural(line)
                    and (key(line) in repeated or _PAGE_NUMBER.match(line.strip()))
                )
            ]
        )
    return cleaned


def _read_pdf(data: bytes) -> tuple[_Doc, int]:
    # pypdf raises many exception types on damaged files; all of them mean the same to the user.
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except Exception as exc:
        raise FileRejected(f"corrupt PDF: {exc or type(exc).__name__}") from exc
    if encrypted:
        try:
            opened = bool(reader.decrypt(""))
        except Exception:
            opened = False
        if not opened:
            raise FileRejected(
                "encrypted PDF: it needs a password to open; upload a copy without a password"
            )
    try:
        texts = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        meta_title = (info.title or "") if info else ""
    except Exception as exc:
        raise FileRejected(f"corrupt PDF: {exc or type(exc).__name__}") from exc
    if not texts:
        raise FileRejected("corrupt PDF: it has no pages")
    if not any(text.strip() for text in texts):
        raise FileRejected(
            "no extractable text in the PDF: it may be a scanned image; run OCR on it first"
        )
    pages = _strip_running_lines([_split_lines(text) for text in texts])
    lines: list[_Line] = []
    for number, page_lines in enumerate(pages, start=1):
        for raw in page_lines:
            text = _ws(raw)
            lines.append(_Line(text, text, page=number))
    title = _ws(meta_title)
    if title.lower() in _PLACEHOLDER_TITLES or re.search(r"\.(?:pdf|docx?|odt)$", title, re.I):
        title = ""
    return _LineParser(lines, per_line=False, numbered=False).parse(title), len(texts)


# --- XML: Formex, USLM, Akoma Ntoso and article-shaped XML ----------------------------------------

_SKIP = frozenset(
    {
        "note",
        "notes",
        "authorialnote",
        "footnote",
        "meta",
        "bib.instance",
        "toc",
        "sourcecredit",
        "comment",
        "remark",
        "proprietary",
        "lifecycle",
        "analysis",
        "identification",
    }
)
_NUM_TAGS = frozenset({"num", "no.parag", "no.p", "no", "nr", "number", "label"})
_UNIT_NUM_TAGS = _NUM_TAGS | {"ti.art"}
_UNIT_HEADING_TAGS = frozenset({"heading", "sti.art", "caption", "title", "subtitle", "head"})
_DIVISION_HEADING_TAGS = frozenset(
    {"num", "heading", "title", "ti", "sti", "subheading", "caption", "label", "head", "subtitle"}
)
_INLINE = frozenset(
    {
        "quot.start",
        "quot.end",
        "hi",
        "ft",
        "date",
        "ref",
        "ref.doc",
        "ref.doc.oj",
        "term",
        "def",
        "i",
        "b",
        "u",
        "em",
        "strong",
        "sup",
        "sub",
        "span",
        "a",
        "abbr",
        "inline",
        "marker",
        "noteref",
        "docnumber",
        "docdate",
        "doctype",
        "shorttitle",
        "entity",
        "person",
        "organization",
        "location",
        "mref",
        "rref",
        "br",
        "eol",
    }
)
_BLOCKISH = frozenset(
    {
        "p",
        "alinea",
        "txt",
        "content",
        "chapeau",
        "continuation",
        "intro",
        "wrapup",
        "list",
        "item",
        "np",
        "parag",
        "paragraph",
        "point",
        "subparagraph",
        "subpoint",
        "clause",
        "subclause",
        "indent",
        "blocklist",
        "listintroduction",
        "listwrapup",
        "tbl",
        "table",
        "row",
        "tr",
        "td",
        "li",
        "ul",
        "ol",
        "div",
        "consid",
        "recital",
        "recitals",
        "gr.consid",
        "gr.visa",
        "visa",
        "preamble.init",
        "preamble.final",
        "gr.seq",
        "text",
        "para",
        "subsection",
        "heading",
        "title",
        "ti",
        "sti",
        "doctitle",
        "longtitle",
        "formula",
    }
)
_PARAGRAPHISH = frozenset(
    {"paragraph", "para", "parag", "point", "item", "subparagraph", "subpoint", "clause"}
)
_LABEL_ATTRS = ("num", "number", "n", "nr", "no", "label")
_CONTAINERS = frozenset(
    {
        "act",
        "enacting.terms",
        "body",
        "main",
        "mainbody",
        "akomantoso",
        "uscdoc",
        "lawdoc",
        "doc",
        "document",
        "regulation",
        "law",
        "bill",
        "statute",
    }
)
_DIVISION_NAMES = frozenset(
    {"part", "title", "chapter", "section", "subsection", "subpart", "subchapter", "subtitle"}
)
_LOOSE_NAMES = {
    "preamble": "Preamble",
    "preface": "Preamble",
    "annex": "Annex",
    "attachment": "Annex",
    "appendix": "Appendix",
    "schedule": "Schedule",
    "final": "Final provisions",
    "conclusions": "Final provisions",
}
_UNIT_TAG_GROUPS = (
    frozenset({"article", "art"}),
    frozenset({"section", "sec"}),
    frozenset({"rule"}),
)
_KEYWORD = re.compile(
    r"^(PART|TITLE|CHAPTER|SECTION|SUB-SECTION|SUBSECTION|SUBPART|SUBCHAPTER|SUBTITLE|BOOK"
    r"|ANNEX|APPENDIX|SCHEDULE)\b",
    re.IGNORECASE,
)


def _local(element: Element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _children(element: Element) -> list[Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _quote(element: Element, default: str) -> str:
    code = element.get("CODE") or element.get("code") or ""
    try:
        return chr(int(code, 16))
    except ValueError:
        return default


def _flat(element: Element | None) -> str:
    """All the text of an element on one line (Formex quotation marks restored)."""
    if element is None:
        return ""
    pieces: list[str] = []

    def visit(node: Element) -> None:
        name = _local(node)
        if name in _SKIP:
            return
        if name == "quot.start":
            pieces.append(_quote(node, "\u2018"))
            return
        if name == "quot.end":
            pieces.append(_quote(node, "\u2019"))
            return
        pieces.append(node.text or "")
        for child in node:
            gap = "" if _local(child) in _INLINE else " "
            pieces.append(gap)
            visit(child)
            pieces.append(gap)
            pieces.append(child.tail or "")

    visit(element)
    return _ws("".join(pieces))


def _has_text(element: Element) -> bool:
    return bool((element.text or "").strip()) or any((c.tail or "").strip() for c in element)


def _clean_label(raw: str) -> str:
    match = re.fullmatch(
        r"\s*[\[(]?\s*([0-9]+[A-Za-z]{0,3}|[A-Za-z]{1,6})\s*[.)\]]?\s*[.:\u2014\u2013\-]*\s*", raw
    )
    return match[1] if match else ""


def _number_in(text: str) -> str:
    match = re.search(r"\d+[A-Za-z]{0,3}(?:[.\-]\d+[A-Za-z]{0,3})*", text)
    return match[0] if match else ""


def _division_label(name: str, text: str) -> str:
    """ "CHAPTER III Rights of the data subject" -> "Chapter III Rights of the data subject"."""
    text = _ws(text)
    keyword = _KEYWORD.match(text)
    if keyword:
        text = keyword[1].capitalize() + text[keyword.end() :]
    elif name in _DIVISION_NAMES:
        text = f"{name.capitalize()} {text}"
    return re.sub(r"^(\S+ [\w.\-]+?)[.:]?\s*[\u2014\u2013:-]+\s*", r"\1 ", text).strip()


class _XmlReader:
    """Walks the element tree: divisions above units, units into the paragraph tree."""

    def __init__(self, root: Element) -> None:
        self.root = root
        self.doc = _Doc()
        names = {_local(e) for e in root.iter()}
        self.unit_tags = next((g & names for g in _UNIT_TAG_GROUPS if g & names), frozenset())
        self.dialect = self._dialect(names)
        self.with_units: set[int] = set()
        self.texty: dict[int, bool] = {}  # element id -> has text of its own (memoised)
        self._mark_units(root)
        self.title_element = self._title_element()
        self.seen_unit = False

    def _dialect(self, names: set[str]) -> str:
        tag = self.root.tag if isinstance(self.root.tag, str) else ""
        namespace = tag[1:].split("}")[0].lower() if tag.startswith("{") else ""
        name = _local(self.root)
        if "uslm" in namespace or name in ("uscdoc", "lawdoc"):
            return "uslm"
        if "akn" in namespace or "akomantoso" in namespace or name == "akomantoso":
            return "akoma-ntoso"
        if "enacting.terms" in names or "ti.art" in names:
            return "formex"
        return "xml"

    def _mark_units(self, element: Element) -> bool:
        found = False
        for child in _children(element):
            if _local(child) in self.unit_tags:
                found = True
            if self._mark_units(child):
                found = True
        if found:
            self.with_units.add(id(element))
        return found

    def _title_element(self) -> Element | None:
        for element in self.root.iter():
            if _local(element) in ("doctitle", "longtitle"):
                return element
        for element in self.root.iter():
            if _local(element) == "meta":
                for inner in element.iter():
                    if _local(inner) == "title":
                        return inner
        for child in _children(self.root):
            if _local(child) in ("title", "heading", "name") and id(child) not in self.with_units:
                return child
        return None

    def read(self) -> _Doc:
        self._outer(self.root, (), "")
        self.doc.title = _flat(self.title_element)
        return self.doc

    def _default_section(self, parents: tuple[str, ...]) -> str:
        if parents:
            return " > ".join(parents)
        if not self.unit_tags:
            return ""
        return "Final provisions" if self.seen_unit else "Preamble"

    def _outer(self, element: Element, parents: tuple[str, ...], section: str) -> None:
        name = _local(element)
        if name in _SKIP or element is self.title_element:
            return
        if name in self.unit_tags:
            self.doc.parts.append(self._unit(element, parents))
            self.seen_unit = True
            return
        children = _children(element)
        if id(element) in self.with_units:
            division = element is not self.root and name not in _CONTAINERS
            heads = [
                c
                for c in children
                if division and _local(c) in _DIVISION_HEADING_TAGS and id(c) not in self.with_units
            ]
            if heads:
                text = " ".join(_flat(h) for h in heads)
                parents = (*parents, _division_label(name, text))
            for child in children:
                if not any(child is h for h in heads):
                    self._outer(child, parents, section)
            return
        if name in ("consid", "recital"):
            # Formex numbers a recital inside its NP: CONSID/NP/NO.P "(1)".
            label = next((found for e in element.iter() if (found := self._label(e))), None)
            recital = f"Recital {label[1]}" if label else section or "Preamble"
            self._loose(element, recital)
            return
        if name in _LOOSE_NAMES:
            heads = [c for c in children if _local(c) in _DIVISION_HEADING_TAGS]
            text = " ".join(_flat(h) for h in heads)
            section = _division_label(name, text) if text else _LOOSE_NAMES[name]
            for child in children:
                if not any(child is h for h in heads):
                    self._outer(child, parents, section)
            return
        if _has_text(element) or not children or self._label(element) is not None:
            self._loose(element, section or self._default_section(parents))
            return
        for child in children:
            self._outer(child, parents, section)

    def _loose(self, element: Element, section: str) -> None:
        start = len(self.doc.lines)
        self._walk(element, _Node())
        for index in range(start, len(self.doc.lines)):
            self.doc.parts.append(_Loose(section, (index, index + 1)))

    def _unit(self, element: Element, parents: tuple[str, ...]) -> _Unit:
        children = _children(element)
        num = next((c for c in children if _local(c) in _UNIT_NUM_TAGS), None)
        head = next((c for c in children if _local(c) in _UNIT_HEADING_TAGS and c is not num), None)
        num_text = _flat(num)
        number = (num.get("value") if num is not None else None) or _number_in(num_text)
        if not number:
            for attr in (*_LABEL_ATTRS, "identifier", "IDENTIFIER", "id", "eId"):
                number = _number_in(element.get(attr) or "").lstrip("0")
                if number:
                    break
        name = _local(element)
        if name in ("article", "art"):
            prefix = "Art."
        elif name == "rule":
            prefix = "Rule"
        else:
            prefix = "§" if "§" in num_text or self.dialect == "uslm" else "Section"
        unit = _Unit(prefix, number or "?", _flat(head), parents)
        skip = {id(num), id(head)} - {id(None)}
        self._mixed(element, unit.root, skip)
        return unit

    def _label(self, element: Element) -> tuple[Element | None, str, str] | None:
        """(number element, label, number as printed) of a numbered paragraph or point."""
        name = _local(element)
        if name in self.unit_tags:
            return None
        for child in _children(element):
            if _local(child) in _NUM_TAGS:
                printed = _flat(child)
                value = _clean_label(child.get("value") or printed)
                if value:
                    return child, value, printed or f"({value})"
        if name in _PARAGRAPHISH:
            for attr in _LABEL_ATTRS:
                value = _clean_label(element.get(attr) or "")
                if value:
                    numbered = value.isdigit() and name in ("paragraph", "para", "parag")
                    return None, value, f"{value}." if numbered else f"({value})"
        return None

    def _walk(self, element: Element, node: _Node) -> None:
        if _local(element) in _SKIP:
            return
        label = self._label(element)
        if label is None:
            self._mixed(element, node, set())
            return
        num, value, printed = label
        heading = next((c for c in _children(element) if _local(c) == "heading"), None)
        child = _Node(value, prefix=_ws(f"{printed} {_flat(heading)}"))
        self._flush_prefix(node)
        node.items.append(child)
        self._mixed(element, child, {id(num), id(heading)} - {id(None)})
        self._flush_prefix(child)

    def _mixed(self, element: Element, node: _Node, skip: set[int]) -> None:
        """Text and inline elements form runs; structural children are walked in between."""
        buffer = [element.text or ""]
        for child in element:
            if not isinstance(child.tag, str) or id(child) in skip or _local(child) in _SKIP:
                buffer.append(child.tail or "")
            elif self._inline(child, element):
                buffer.append(_flat(child))
                buffer.append(child.tail or "")
            else:
                self._emit(node, "".join(buffer))
                buffer = [child.tail or ""]
                self._walk(child, node)
        self._emit(node, "".join(buffer))

    def _inline(self, child: Element, parent: Element) -> bool:
        name = _local(child)
        if name in _INLINE:
            return True
        if name in _BLOCKISH or name in self.unit_tags or self._label(child) is not None:
            return False
        if any(not self._inline(grandchild, child) for grandchild in _children(child)):
            return False
        if id(parent) not in self.texty:
            self.texty[id(parent)] = _has_text(parent)
        return self.texty[id(parent)]

    def _emit(self, node: _Node, text: str) -> None:
        text = _ws(text)
        if not text:
            return
        if node.prefix:
            text, node.prefix = f"{node.prefix} {text}", ""
        for piece in _pieces(text):
            self.doc.lines.append(piece)
            node.items.append((len(self.doc.lines) - 1, len(self.doc.lines)))

    def _flush_prefix(self, node: _Node) -> None:
        if node.prefix:
            self.doc.lines.append(node.prefix)
            node.items.append((len(self.doc.lines) - 1, len(self.doc.lines)))
            node.prefix = ""


def _read_xml(data: bytes) -> tuple[_Doc, str]:
    try:
        root: Element = SafeElementTree.fromstring(data)
    except DefusedXmlException as exc:
        raise FileRejected(
            f"unsafe XML refused ({type(exc).__name__}): entity declarations and external "
            "references are not read"
        ) from exc
    except ParseError as exc:
        raise FileRejected(f"malformed XML: {exc}") from exc
    try:
        reader = _XmlReader(root)
        return reader.read(), reader.dialect
    except RecursionError as exc:
        raise FileRejected("XML nested too deeply to read") from exc


# --- Definitions and cross references ------------------------------------------------------------

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


_PT = r"\((?:\d{1,3}[a-z]?|[a-z]{1,5})\)"
_SEP = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|to|through|and/or)\s+)"
_PTS = rf"{_PT}(?:{_SEP}{_PT})*"
_ANUM = r"\d{1,3}[a-z]?(?:\((?:\d{1,3}[a-z]?|[a-z]{1,5})\))*"
_SUBPARAGRAPH = r"(?:the\s+(?:first|second|third|fourth|fifth|last)\s+subparagraph\s+of\s+)?"
_ACT = (
    r"(?:(?:Council|Commission)\s+)?(?:(?:Implementing|Delegated)\s+)?"
    r"(?:Directive|Regulation|Decision)\s+(?:\((?:EU|EC|EEC|Euratom)\)\s+)?(?:No\s+)?"
    r"\d+/\d+(?:/(?:EU|EC|EEC|Euratom|JHA))?"
)
_AFTER = re.compile(
    r"(?:\s+of\s+this\s+(?:Regulation|Directive|Decision|Act)"
    rf"|\s+(?:of\s+)?(?:the\s+)?(?P<act>{_ACT}|TFEU|TEU"
    r"|Charter(?:\s+of\s+Fundamental\s+Rights(?:\s+of\s+the\s+European\s+Union)?)?"
    r"|Treaty\s+on\s+(?:the\s+Functioning\s+of\s+the\s+)?European\s+Union)"
    r"|(?P<other>\s+of\s+(?:that|the\s+said|the\s+same)\s+\w+|\s+of\s+(?:Directive|Regulation|Decision)\b))?"
)
_REF_POINTS_OF_ARTICLE = re.compile(
    rf"\b[Pp]oints?\s+(?P<pts>{_PTS})\s+of\s+{_SUBPARAGRAPH}"
    rf"(?:paragraph\s+(?P<par>\d{{1,3}}[a-z]?)\s+of\s+)?Article\s+(?P<art>{_ANUM})"
)
_REF_POINTS_OF_PARAGRAPH = re.compile(
    rf"\b[Pp]oints?\s+(?P<pts>{_PTS})\s+of\s+{_SUBPARAGRAPH}paragraph\s+(?P<par>\d{{1,3}}[a-z]?)"
)
_REF_PARAGRAPHS_OF_ARTICLE = re.compile(
    rf"\b[Pp]aragraphs?\s+(?P<pars>\d{{1,3}}[a-z]?(?:{_SEP}\d{{1,3}}[a-z]?)*)\s+of\s+"
    rf"Article\s+(?P<art>\d{{1,3}}[a-z]?)"
)
_REF_ARTICLES = re.compile(
    rf"\bArt(?:icles?|s?\.)\s+(?P<list>{_ANUM}(?:{_SEP}(?:{_ANUM}|(?:{_PT})+))*)(?![\w/])"
)
_REF_PARAGRAPHS = re.compile(
    rf"\b[Pp]aragraphs?\s+(?P<pars>\d{{1,3}}[a-z]?(?:{_SEP}\d{{1,3}}[a-z]?)*)\b(?!\()"
)
_REF_POINTS = re.compile(rf"\b[Pp]oints?\s+(?P<pts>{_PTS})")
_US_NUM = r"\d+(?:\.\d+)*[a-z]?(?:\([0-9A-Za-z]{1,5}\))*"
_REF_SECTIONS = re.compile(rf"§§?\s*(?P<list>{_US_NUM}(?:{_SEP}{_US_NUM})*)")
# Rulebooks cite "Rule 4.5.1(3)(b)"; exported texts put a left-to-right mark before numbers.
_RULE_CITED = r"(?:[A-Z]{1,3})?\d{1,3}[A-Z]?(?:\.\d{1,3}[A-Z]?){2,}(?:\([0-9A-Za-z]{1,5}\))*"
_RULE_REF = rf"[\u200e\u200f]?{_RULE_CITED}"
_REF_RULES = re.compile(rf"\bRules?[\s\u200e\u200f]+(?P<list>{_RULE_REF}(?:{_SEP}{_RULE_REF})*)")
_REF_US_PARAGRAPHS = re.compile(
    r"\b[Pp]aragraphs?\s+(?P<list>(?:\([0-9A-Za-z]{1,5}\))+"
    rf"(?:{_SEP}(?:\([0-9A-Za-z]{{1,5}}\))+)*)(?:\s+of\s+this\s+section)?"
)


def _range(first: str, last: str) -> list[str]:
    """The labels after ``first`` up to ``last``: "15 to 18", "(h) to (j)"."""
    if first.isdigit() and last.isdigit() and 0 < int(last) - int(first) <= 30:
        return [str(n) for n in range(int(first) + 1, int(last) + 1)]
    if len(first) == len(last) == 1 and first.isalpha() and 0 < ord(last) - ord(first) <= 26:
        return [chr(c) for c in range(ord(first) + 1, ord(last) + 1)]
    return [last]


def _expand(spec: str, item: str) -> list[str]:
    """The labels of a list such as "(a), (b) and (d)" or "1 to 3"."""
    values: list[str] = []
    ranged = False
    for match in re.finditer(rf"(?P<range>\b(?:to|through)\b)|{item}", spec):
        if match["range"]:
            ranged = True
            continue
        value = match["v"]
        values.extend(_range(values[-1], value) if ranged and values else [value])
        ranged = False
    return values


def _article_items(spec: str) -> list[str]:
    """ "6(1) and (4)" -> ["6(1)", "6(4)"]; "15 to 17" -> ["15", "16", "17"]."""
    items: list[str] = []
    ranged = False
    pattern = (
        r"(?P<range>\bto\b)|(?P<num>\d{1,3}[a-z]?)(?P<sub>(?:\([0-9a-z]{1,5}\))*)"
        r"|(?P<bare>(?:\([0-9a-z]{1,5}\))+)"
    )
    for match in re.finditer(pattern, spec):
        if match["range"]:
            ranged = True
            continue
        if match["num"]:
            if ranged and items and items[-1].isdigit() and match["num"].isdigit():
                items.extend(_range(items[-1], match["num"]))
                if match["sub"]:
                    items[-1] += match["sub"]
            else:
                items.append(match["num"] + match["sub"])
        elif items:
            base = re.sub(r"\([0-9a-z]{1,5}\)$", "", items[-1])
            items.append(base + match["bare"])
        ranged = False
    return items


def _act_name(act: str) -> str:
    if act.startswith("Charter"):
        return "Charter"
    if act.startswith("Treaty on the Functioning"):
        return "TFEU"
    if act.startswith("Treaty on European Union"):
        return "TEU"
    return _ws(act)


def _references(text: str, unit: _Unit | None, labels: tuple[str, ...]) -> list[str]:
    """Citations a passage refers to, normalised ("Art. 9(2)(a)"), in the order they appear."""
    found: list[tuple[int, str]] = []
    masked = text
    eu = unit is None or unit.prefix == "Art."
    paragraph = labels[0] if labels and labels[0][:1].isdigit() else ""

    def take(pattern: re.Pattern[str], refs: Callable[[re.Match[str]], list[str]]) -> None:
        nonlocal masked
        spans: list[tuple[int, int]] = []
        for match in pattern.finditer(masked):
            after = _AFTER.match(masked, match.end())
            end = after.end() if after else match.end()
            spans.append((match.start(), end))
            if after and after["other"]:
                continue  # an article of some other act, named earlier
            act = f" {_act_name(after['act'])}" if after and after["act"] else ""
            for ref in refs(match):
                found.append((match.start(), ref + act))
        if spans:
            pieces, last = [], 0
            for start, end in spans:
                start = max(start, last)
                pieces += [masked[last:start], " " * (end - start)]
                last = max(end, last)
            masked = "".join([*pieces, masked[last:]])

    point = r"\((?P<v>[0-9a-z]{1,5})\)"
    number = r"(?P<v>\d{1,3}[a-z]?)"
    if eu:
        take(
            _REF_POINTS_OF_ARTICLE,
            lambda m: [
                f"Art. {m['art']}" + (f"({m['par']})" if m["par"] else "") + f"({p})"
                for p in _expand(m["pts"], point)
            ],
        )
        take(
            _REF_PARAGRAPHS_OF_ARTICLE,
            lambda m: [f"Art. {m['art']}({p})" for p in _expand(m["pars"], number)],
        )
        take(_REF_ARTICLES, lambda m: [f"Art. {item}" for item in _article_items(m["list"])])
    if unit is not None and unit.prefix == "Art.":
        article = unit
        base = (paragraph,) if paragraph else ()
        take(
            _REF_POINTS_OF_PARAGRAPH,
            lambda m: [article.cite((m["par"], p)) for p in _expand(m["pts"], point)],
        )
        take(_REF_PARAGRAPHS, lambda m: [article.cite((p,)) for p in _expand(m["pars"], number)])
        take(_REF_POINTS, lambda m: [article.cite((*base, p)) for p in _expand(m["pts"], point)])
    take(_REF_SECTIONS, lambda m: [f"§ {n}" for n in re.findall(_US_NUM, m["list"])])
    if unit is not None and not unit.prefix:
        take(_REF_RULES, lambda m: re.findall(_RULE_CITED, m["list"]))
    if unit is not None and unit.prefix == "§":
        section = unit.cite()
        take(
            _REF_US_PARAGRAPHS,
            lambda m: [
                section + path for path in re.findall(r"(?:\([0-9A-Za-z]{1,5}\))+", m["list"])
            ],
        )
    found.sort(key=lambda pair: pair[0])
    return list(dict.fromkeys(ref for _, ref in found))


# --- Chunking ------------------------------------------------------------------------------------


def _extent(node: _Node) -> _Span | None:
    first: int | None = None
    last: int | None = None
    for item in node.items:
        span = item if isinstance(item, tuple) else _extent(item)
        if span is None:
            continue
        if first is None:
            first = span[0]
        last = span[1]
    return None if first is None or last is None else (first, last)


class _Chunker:
    """Cuts a read document into chunks: one per numbered paragraph, deeper only when huge."""

    def __init__(self, doc: _Doc, path: str, max_chars: int) -> None:
        self.doc = doc
        self.path = path
        self.max_chars = max_chars
        self.split_chars = int(max_chars * SPLIT_FACTOR)
        self.offsets = [0]
        for line in doc.lines:
            self.offsets.append(self.offsets[-1] + len(line) + 1)
        self.chunks: list[Chunk] = []
        self.definitions: dict[str, str] = {}
        self.defined_at: dict[int, list[str]] = {}  # first line of a run -> the terms it defines

    def run(self) -> list[Chunk]:
        parts = self.doc.parts
        i = 0
        while i < len(parts):
            part = parts[i]
            if isinstance(part, _Unit):
                self._unit(part)
                i += 1
                continue
            spans: list[_Span] = []
            while i < len(parts):
                loose = parts[i]
                if not isinstance(loose, _Loose) or loose.section != part.section:
                    break
                spans.append(loose.span)
                i += 1
            self._runs(spans, None, (), "", section=part.section)
        return self.chunks

    def _size(self, span: _Span) -> int:
        return self.offsets[span[1]] - self.offsets[span[0]]

    def _text(self, span: _Span) -> str:
        return "\n".join(self.doc.lines[span[0] : span[1]])

    def _paragraphed(self, unit: _Unit) -> bool:
        """Whether a unit is cut into its first-level items: numbered paragraphs, a §'s (a),
        guidance notes. A rule's "(1)" after a lead-in ("A Person must:") lists points."""
        children = [item for item in unit.root.items if isinstance(item, _Node)]
        if not children:
            return False
        if not unit.article_like or unit.notes:
            return True
        if not children[0].label[:1].isdigit():
            return False
        if unit.prefix:
            return True
        first = next(k for k, item in enumerate(unit.root.items) if isinstance(item, _Node))
        before = unit.root.items[first - 1] if first else None
        return not (isinstance(before, tuple) and _LEAD_IN.search(self.doc.lines[before[1] - 1]))

    def _unit(self, unit: _Unit) -> None:
        self._collect_definitions(unit, unit.root, ())
        if self._paragraphed(unit):
            self._split(unit, unit.root, (), "")
        else:
            self._node(unit, unit.root, (), "")

    def _collect_definitions(self, unit: _Unit, node: _Node, labels: tuple[str, ...]) -> None:
        for item in node.items:
            if isinstance(item, _Node):
                self._collect_definitions(unit, item, (*labels, item.label))
                continue
            terms = _definitions(_ws(self._text(item)))
            if terms:
                self.defined_at[item[0]] = terms
                for term in terms:
                    self.definitions.setdefault(term, unit.cite(labels))

    def _node(self, unit: _Unit, node: _Node, labels: tuple[str, ...], lead: str) -> None:
        span = _extent(node)
        if span is None:
            return
        if self._size(span) <= self.split_chars:
            self._emit(span, unit, labels, lead)
        else:
            self._split(unit, node, labels, lead)

    def _split(self, unit: _Unit, node: _Node, labels: tuple[str, ...], lead: str) -> None:
        """Each sub-node on its own (deeper path); text between them at this node's path."""
        runs: list[_Span] = []
        intro = ""
        seen_child = False
        for item in node.items:
            if isinstance(item, tuple):
                runs.append(item)
                continue
            if runs:
                if not seen_child:
                    intro = _ws(self._text((runs[0][0], runs[-1][1])))[:300]
                self._runs(runs, unit, labels, lead)
                runs = []
            seen_child = True
            self._node(unit, item, (*labels, item.label), intro or lead)
        if runs:
            self._runs(runs, unit, labels, lead)

    def _runs(
        self,
        runs: list[_Span],
        unit: _Unit | None,
        labels: tuple[str, ...],
        lead: str,
        *,
        section: str = "",
    ) -> None:
        """Consecutive runs of text packed up to the window, never cutting a run that fits."""
        group: list[_Span] = []
        for run in runs:
            for piece in [run] if self._size(run) <= self.split_chars else self._cut(run):
                if group and self._size((group[0][0], piece[1])) > self.max_chars:
                    self._emit((group[0][0], group[-1][1]), unit, labels, lead, section=section)
                    group = []
                group.append(piece)
        if group:
            self._emit((group[0][0], group[-1][1]), unit, labels, lead, section=section)

    def _cut(self, span: _Span) -> list[_Span]:
        """A huge run of several lines, cut between lines that end a sentence where possible."""
        start, end = span
        lines = self.doc.lines
        pieces: list[_Span] = []
        while end - start > 1 and self._size((start, end)) > self.max_chars:
            sentence: int | None = None
            k = start + 1
            while k < end and self._size((start, k + 1)) <= self.max_chars:
                if _ENDS_SENTENCE.search(lines[k - 1]):
                    sentence = k
                k += 1
            if _ENDS_SENTENCE.search(lines[k - 1]) and k < end:
                sentence = k
            cut = sentence or k  # else the last line boundary that fits (at least one line)
            pieces.append((start, cut))
            start = cut
        pieces.append((start, end))
        return pieces

    def _emit(
        self,
        span: _Span,
        unit: _Unit | None,
        labels: tuple[str, ...],
        lead: str,
        *,
        section: str = "",
    ) -> None:
        start, end = span
        text = self._text(span)
        flat = _ws(text)
        extra: dict[str, str] = {}
        if unit is not None:
            section = unit.cite(labels)
            terms = [t for k in range(start, end) for t in self.defined_at.get(k, [])]
        else:
            terms = _definitions(flat)
            for term in terms:
                self.definitions.setdefault(term, section)
        if unit is not None and unit.parents:
            extra["parents"] = " > ".join(unit.parents)
        if terms:
            extra["defines"] = "; ".join(dict.fromkeys(terms))
        refs = _references(flat, unit, labels)
        if refs:
            extra["refs"] = "; ".join(refs)
        heading = unit.heading if unit is not None else ""
        parents = unit.parents if unit is not None else ()
        note = unit.note if unit is not None else ""
        context = [self.doc.title or self.path, *parents, heading, section, note, lead]
        self.chunks.append(
            Chunk(
                text=text,
                path=self.path,
                kind="regulation",
                line_start=start + 1 if self.doc.numbered else 0,
                line_end=end if self.doc.numbered else 0,
                section=section,
                heading=heading,
                page=self.doc.pages[start] if self.doc.pages else 0,
                extra=extra,
                context="\n".join(part for part in context if part),
            )
        )


# --- Public API ----------------------------------------------------------------------------------


def read_regulation(path: str, data: bytes, *, max_chars: int = MAX_CHARS) -> ParsedDocument:
    """A regulation's chunks, one per numbered paragraph, each carrying its citation path.

    ``max_chars`` is the embedder's window in characters; a paragraph longer than 1.5 times it
    is cut between its points.
    """
    suffix = PurePosixPath(path).suffix.lower()
    meta: dict[str, Any] = {}
    if suffix == ".xml":
        doc, meta["format"] = _read_xml(data)
    elif suffix in (".html", ".htm"):
        doc, meta["format"] = _read_html(_decode(data)), "html"
    elif suffix in (".md", ".markdown"):
        lines = _markdown_lines(_decode(data))
        doc = _LineParser(lines, per_line=False, numbered=True).parse()
        meta["format"] = "markdown"
    elif suffix == ".txt":
        lines = [_Line(raw, _ws(raw)) for raw in _split_lines(_decode(data))]
        doc = _LineParser(lines, per_line=False, numbered=True).parse()
        meta["format"] = "text"
    elif suffix == ".pdf":
        doc, meta["pages"] = _read_pdf(data)
        meta["format"] = "pdf"
    else:
        shown = suffix or "no extension"
        raise FileRejected(
            f"unsupported file type for a regulation ({shown}); supported: {', '.join(SUFFIXES)}"
        )

    chunker = _Chunker(doc, path, max_chars)
    chunks = chunker.run()
    if not chunks and any(line.strip() for line in doc.lines):
        chunks = _plain_chunks(doc, path)
    if doc.title:
        meta["title"] = doc.title
    meta["definitions"] = chunker.definitions
    meta["units"] = sum(isinstance(part, _Unit) for part in doc.parts)
    return ParsedDocument(kind="regulation", chunks=chunks, meta=meta)


def _plain_chunks(doc: _Doc, path: str) -> list[Chunk]:
    """Text that held nothing but headings: paragraphs, so that nothing is lost."""
    return [
        Chunk(
            text=chunk.text,
            path=path,
            kind="regulation",
            line_start=chunk.line_start if doc.numbered else 0,
            line_end=chunk.line_end if doc.numbered else 0,
            page=doc.pages[chunk.line_start - 1] if doc.pages else 0,
            context=doc.title or path,
        )
        for chunk in chunk_text(path, "\n".join(doc.lines))
    ]


_SNIFF_CHARS = 400_000
_HTMLISH = re.compile(r"<(?:html|body|p|div|h[1-6]|table|br)\b", re.IGNORECASE)
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_DOTTED = re.compile(r"^(?:Section|SECTION|Sec\.|SEC\.|Rule|RULE)\s+\d+[A-Za-z]?\.(?:\s|$)")
# A heading run into the text, as extractors that join lines give it: "... Article 2 Material
# scope 1. This ...". A reference is followed by "(1)", "of", "and", punctuation or lower case.
_INLINE_HEADING = re.compile(
    r"(?:\bArticle|\bARTICLE|§)\s*(\d+[a-z]?(?:\.\d+)*)\s+(?=[A-Z\u2018\u201c\"'][a-z])"
)


def looks_like_regulation(text: str) -> bool:
    """Whether a text reads as legislation: two or more article, § or "Section N." headings
    starting lines, three article headings run into the text by a PDF extractor, or a
    rulebook's rules "1.1.2 A Person must..." (see `_reads_as_rulebook`)."""
    sample = text[:_SNIFF_CHARS]
    if _HTMLISH.search(sample):
        sample = unescape(_TAGS.sub("\n", sample))
    found: set[tuple[str, str]] = set()
    lines: list[str] = []
    for raw in sample.splitlines():
        norm, level = _md_norm(raw)
        lines.append(norm)
        match = _unit_match(norm, level, articles=False)
        if match is None:
            continue
        if match[0] in ("Art.", "§") or _DOTTED.match(norm):
            found.add((match[0], match[1]))
            if len(found) >= 2:
                return True
    if len({m[1] for m in _INLINE_HEADING.finditer(sample)}) >= 3:
        return True
    return _reads_as_rulebook(lines)


def _reads_as_rulebook(lines: list[str]) -> bool:
    """Three rules or more, numbered with three levels and stated as sentences ("1.1.2 A Person
    must keep records."), in ascending order; two are enough beside a "Guidance" heading.

    A paper's "3.2.1 Results" is a heading, not a sentence. A changelog's "1.2.3 - 2024-01-01"
    is followed by a date, versions have zeros ("1.2.0") that rule numbers never have, and a
    changelog lists its versions newest first, where a rulebook counts up."""
    numbers: list[str] = []
    guidance = False
    for norm in lines:
        parsed = _rule_line(norm)
        if parsed is None:
            unit = _unit_match(norm, 0, articles=False)
            if unit and unit[0] == "Rule" and unit[1].count(".") >= 2:
                parsed = _RuleLine(unit[1], 3, "label")  # "Rule 1.1.2" says what it is
            else:
                guidance = guidance or _guidance(norm, "", 0) is not None
                continue
        if parsed.depth < 3:
            continue
        if parsed.form == "guidance":
            guidance = True
        elif parsed.number not in numbers and (
            parsed.form == "label" or (parsed.form == "text" and _rule_sentence(parsed.rest))
        ):
            numbers.append(parsed.number)
    if len(numbers) < (2 if guidance else 3):
        return False
    keys = [_rule_key(number) for number in numbers]
    rising = sum(later > earlier for earlier, later in pairwise(keys))
    return rising >= 0.75 * (len(keys) - 1)
