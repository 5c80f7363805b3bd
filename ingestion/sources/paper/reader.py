"""The public reader: a paper file read into its chunks and metadata by its suffix.

``read_paper`` reads PDF bytes directly and decodes the text formats (UTF-8, else the encoding
charset_normalizer finds; NUL bytes reject the file) before handing them to the LaTeX, Markdown
or plain-text reader.
"""

from collections.abc import Callable
from pathlib import PurePosixPath

from charset_normalizer import from_bytes

from ingestion.errors import FileRejected
from ingestion.sources.base import ParsedDocument
from ingestion.sources.paper.latex import _read_tex
from ingestion.sources.paper.markdown import _read_markdown
from ingestion.sources.paper.pdf import _read_pdf
from ingestion.sources.paper.plain import _read_text

SUFFIXES = (".pdf", ".tex", ".md", ".markdown", ".txt")


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
