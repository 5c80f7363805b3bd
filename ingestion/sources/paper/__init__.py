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

The package, one concern a module: ``sections`` (the lines and sections every format is read
into, and their chunks), ``headings`` (headings by their shape), ``metadata`` (DOI, ORCID,
arXiv, authors), a reader per format (``pdf`` with ``pdf_layout``, ``latex``, ``markdown``,
``plain``), ``reader`` (``read_paper``) and ``detect`` (``looks_like_paper``).
"""

from ingestion.sources.paper.detect import looks_like_paper
from ingestion.sources.paper.metadata import orcid_valid
from ingestion.sources.paper.pdf import MIN_PDF_LETTERS, extract_pdf_text
from ingestion.sources.paper.reader import SUFFIXES, read_paper
from ingestion.sources.paper.sections import MAX_FRONT_CHARS

__all__ = [
    "MAX_FRONT_CHARS",
    "MIN_PDF_LETTERS",
    "SUFFIXES",
    "extract_pdf_text",
    "looks_like_paper",
    "orcid_valid",
    "read_paper",
]
