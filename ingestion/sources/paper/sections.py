"""Sections into chunks: the lines and sections every format is read into, and the chunking.

A ``_Section`` holds its lines and role (front matter, abstract, body or references) and the
titles above it. ``_build`` makes one chunk per section, split at paragraph breaks when longer
than ``MAX_CHARS`` (and hyphenated line ends rejoined when ``reflow``), records the abstract in
the metadata, leaves out a short title block, and only counts the reference list's entries.
"""

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from ingestion.sources.base import MAX_CHARS, Chunk, ParsedDocument
from ingestion.sources.paper.headings import _KEYWORDS_LINE

# Text above the first section longer than this is not a title block: it is chunked as text.
MAX_FRONT_CHARS = 1500


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


def _source_lines(text: str) -> list[str]:
    """Lines as an editor numbers them (only CR, LF and CRLF end a line)."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines
