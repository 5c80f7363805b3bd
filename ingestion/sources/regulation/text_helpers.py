"""Text helpers shared by the readers: whitespace, editor lines, decoding, absurd paragraphs.

``_ws`` collapses whitespace, ``_split_lines`` numbers lines as an editor does, ``_decode``
reads UTF-8 or whatever encoding charset_normalizer finds (rejecting the file when none fits),
and ``_pieces`` cuts an XML or HTML paragraph of absurd length into sentence groups.
"""

import codecs
import re

import charset_normalizer

from ingestion.errors import FileRejected
from ingestion.sources.base import MAX_CHARS


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
