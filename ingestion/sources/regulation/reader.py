"""The public reader: a regulation file in any supported format read into its chunks.

``read_regulation`` picks the reader by suffix (XML, HTML, Markdown, plain text, PDF), builds
the tree and chunks it; a text that held nothing but headings is chunked as plain paragraphs so
that nothing is lost.
"""

from pathlib import PurePosixPath
from typing import Any

from ingestion.errors import FileRejected
from ingestion.sources.base import MAX_CHARS, Chunk, ParsedDocument
from ingestion.sources.regulation.chunker import _Chunker
from ingestion.sources.regulation.html_lines import _read_html
from ingestion.sources.regulation.line_parser import _LineParser
from ingestion.sources.regulation.markdown import _Line, _markdown_lines
from ingestion.sources.regulation.pdf_lines import _read_pdf
from ingestion.sources.regulation.text_helpers import _decode, _split_lines, _ws
from ingestion.sources.regulation.tree import _Doc, _Unit
from ingestion.sources.regulation.xml_reader import _read_xml
from ingestion.sources.text import chunk_text

SUFFIXES = (".xml", ".html", ".htm", ".md", ".markdown", ".txt", ".pdf")


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
