"""PDF read as lines: the text layer of every page, less page numbers and running heads.

Page numbers and the header and footer lines repeated on most pages are dropped, each line
keeps its page (so chunks cite it), and the metadata title is used unless it is a placeholder
or a file name; the lines then go through the line reader (line_parser.py). Damaged,
encrypted and image-only PDFs are rejected with a reason.
"""

import io
import re
from collections import Counter

from pypdf import PdfReader

from ingestion.errors import FileRejected
from ingestion.sources.regulation.headings import _division_match, _unit_match
from ingestion.sources.regulation.labels import _LABEL
from ingestion.sources.regulation.line_parser import _LineParser
from ingestion.sources.regulation.markdown import _Line
from ingestion.sources.regulation.text_helpers import _split_lines, _ws
from ingestion.sources.regulation.tree import _Doc

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
