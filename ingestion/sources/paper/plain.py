"""Plain text (.txt): the title from the first lines, headings by their shape, form feeds as pages.

``_plain_sections`` finds the title block (dropping page numbers, arXiv stamps and placeholder
titles) and the sections the heading scanner recognises; ``_plain_meta`` reads title, authors,
DOI and ORCID iDs from them. The PDF reader uses the same two for a text layer without
outline or type marks.
"""

import re
from typing import Any

from ingestion.sources.base import ParsedDocument
from ingestion.sources.paper.headings import _HeadingScanner, _table_rows
from ingestion.sources.paper.metadata import (
    _DOI,
    _EMAIL,
    _ORCID,
    _authors_from_lines,
    _find_doi,
    _find_orcids,
)
from ingestion.sources.paper.sections import (
    _build,
    _Line,
    _meta,
    _Section,
    _source_lines,
    _with_parents,
)

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
