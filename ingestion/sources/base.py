"""What every reader produces: chunks that carry a locator, and a document's own metadata."""

from dataclasses import dataclass, field
from typing import Any

from assets.retrieval import locator_from_metadata

# About 256 word pieces, the embedder's window; longer passages are split at paragraph breaks.
MAX_CHARS = 1200

KINDS = ("code", "regulation", "paper", "text")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of a document.

    ``text`` is what is shown and cited; ``context`` is embedded with it but never shown (the
    path, the heading path, the imports and class line of a method). Line numbers are 1-based
    and inclusive, pages 1-based; 0 means "not known" for either.
    """

    text: str
    path: str
    kind: str  # one of KINDS
    line_start: int = 0
    line_end: int = 0
    # text: the heading path; regulation: the citation path ("Art. 17(3)(b)");
    # paper: the section ("3.2 Results").
    section: str = ""
    # regulation: the article's heading (its parents' headings are in extra["parents"]);
    # paper: the parent section of a subsection.
    heading: str = ""
    symbol: str = ""  # code: the qualified symbol ("Class.method")
    language: str = ""  # code: the language ("python", "typescript", ...)
    page: int = 0
    # Extra facts a reader found, as short strings: a regulation's "parents", "defines" and
    # "refs" (cross references); a paper chunk's "pages" when it crosses a page.
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    context: str = field(default="", compare=False)

    @property
    def embed_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text

    @property
    def metadata(self) -> dict[str, str | int]:
        """What the vector store keeps beside the text (scalars only)."""
        metadata: dict[str, str | int] = {
            "path": self.path,
            "kind": self.kind,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "section": self.section,
            "heading": self.heading,
            "symbol": self.symbol,
            "language": self.language,
            "page": self.page,
        }
        for key, value in self.extra.items():
            metadata[f"x_{key}"] = value
        return metadata

    @property
    def locator(self) -> dict[str, Any]:
        return locator_from_metadata(self.metadata)


@dataclass
class ParsedDocument:
    """A file's chunks, and what the reader learnt about the whole document."""

    kind: str
    chunks: list[Chunk]
    # e.g. a paper's title, authors, abstract, doi and orcids; a code file's language
    meta: dict[str, Any] = field(default_factory=dict)


def split_lines(lines: list[str], max_chars: int = MAX_CHARS) -> list[tuple[int, int]]:
    """Split lines into runs of at most ``max_chars``, breaking at blank lines where possible.

    Returns 0-based (start, end-exclusive) index pairs into ``lines``; blank lines between runs
    belong to no run.
    """
    paragraphs: list[tuple[int, int]] = []
    start: int | None = None
    for i, line in enumerate(lines):
        if line.strip():
            if start is None:
                start = i
        elif start is not None:
            paragraphs.append((start, i))
            start = None
    if start is not None:
        paragraphs.append((start, len(lines)))

    # A paragraph longer than the limit is cut between lines.
    pieces: list[tuple[int, int]] = []
    for a, b in paragraphs:
        size = 0
        piece_start = a
        for i in range(a, b):
            if size and size + len(lines[i]) + 1 > max_chars:
                pieces.append((piece_start, i))
                piece_start, size = i, 0
            size += len(lines[i]) + 1
        pieces.append((piece_start, b))

    runs: list[tuple[int, int]] = []
    for a, b in pieces:
        size = sum(len(line) + 1 for line in lines[a:b])
        if runs:
            run_a, run_b = runs[-1]
            run_size = sum(len(line) + 1 for line in lines[run_a:run_b])
            if run_size + size <= max_chars:
                runs[-1] = (run_a, b)
                continue
        runs.append((a, b))
    return runs
