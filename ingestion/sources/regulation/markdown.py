"""Line sources: the ``_Line`` the line reader reads, and Markdown read into lines.

Markdown headings give their level and lose their marks, fenced code is kept verbatim (never
read as structure), and horizontal rules are dropped; the same normalisation (``_md_norm``)
serves the sniffing in detect.py.
"""

import re
from dataclasses import dataclass

from ingestion.sources.regulation.text_helpers import _split_lines, _ws


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
