"""PDF papers: the text layer read with pypdf, in sections from the outline or the type.

``_open_pdf`` rejects empty, encrypted and corrupt files; ``_pdf_lines`` keeps each line's page
and drops running heads, feet and page numbers; ``_pdf_sections`` cuts at the headings the
layout marks (pdf_layout.py), never by a line's shape. ``extract_pdf_text`` is the text layer
alone, for choosing a document's kind; ``_read_pdf`` is the reader.
"""

import io
import re
import unicodedata
from collections import Counter

import pypdf
from pypdf.errors import DependencyError

from ingestion.errors import FileRejected
from ingestion.sources.base import ParsedDocument
from ingestion.sources.paper.headings import (
    _ABSTRACT_LINE,
    _KNOWN_SECTIONS,
    _NUMBERED,
    _REFERENCE_TITLES,
    _normal_title,
)
from ingestion.sources.paper.metadata import _DOI, _authors_from_field, _find_doi
from ingestion.sources.paper.pdf_layout import (
    _PDF_ERRORS,
    _SECTION_NUMBER,
    _line_key,
    _Mark,
    _outline,
    _outline_marks,
    _pdf_pages,
    _type_marks,
)
from ingestion.sources.paper.plain import (
    _ARXIV_STAMP,
    _JUNK_TITLES,
    _PAGE_NUMBER,
    _first_line_title,
    _plain_meta,
    _title_span,
)
from ingestion.sources.paper.sections import _build, _Line, _Section, _with_parents

# A PDF with fewer letters than this in its text layer is treated as having none.
MIN_PDF_LETTERS = 20


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
