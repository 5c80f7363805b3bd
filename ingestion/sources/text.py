"""Text: Markdown by heading (the heading path is the section), plain text by paragraph."""

import re

from ingestion.sources.base import MAX_CHARS, Chunk, split_lines

# A first line this short, set apart from the text after it, is the document's title.
MAX_TITLE_CHARS = 250
# Lines of wrapped prose are shorter than this; a longer second line is a paragraph of its own.
WRAPPED_LINE_CHARS = 250
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def _title(lines: list[str]) -> int | None:
    """The index of the title line, if the text opens with one."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if len(filled) < 2 or len(lines[filled[0]].strip()) > MAX_TITLE_CHARS:
        return None
    first, second = filled[0], filled[1]
    if second > first + 1 or len(lines[second]) > WRAPPED_LINE_CHARS:
        return first
    return None


def _sentences(line: str) -> list[str]:
    """A line longer than MAX_CHARS cut at sentence ends into pieces of at most MAX_CHARS."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(line):
        if pieces and len(pieces[-1]) + 1 + len(sentence) <= MAX_CHARS:
            pieces[-1] += " " + sentence
        else:
            pieces.append(sentence)
    return pieces


def chunk_text(path: str, text: str) -> list[Chunk]:
    """Plain text: paragraphs grouped up to MAX_CHARS; a title line is kept with every chunk.

    The title (a short first line set apart from the text) is the section of every chunk and
    part of the first one; a single line longer than MAX_CHARS is cut at sentence ends.
    """
    lines = text.splitlines()
    title_at = _title(lines)
    title = lines[title_at].strip() if title_at is not None else ""
    body = [line if i != title_at else "" for i, line in enumerate(lines)]
    chunks: list[Chunk] = []
    for a, b in split_lines(body):
        whole = not (b - a == 1 and len(lines[a]) > MAX_CHARS)
        pieces = (
            [(a, b, "\n".join(lines[a:b]))]
            if whole
            else [(a, b, piece) for piece in _sentences(lines[a])]
        )
        for start, end, piece in pieces:
            if not chunks and title_at is not None:  # the title opens the first chunk
                piece = "\n".join(lines[title_at:end]) if whole else f"{title}\n{piece}"
                start = title_at
            chunks.append(
                Chunk(
                    text=piece,
                    path=path,
                    kind="text",
                    line_start=start + 1,
                    line_end=end,
                    section=title,
                    context=f"{path}\n{title}" if title and chunks else path,
                )
            )
    return chunks


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


def chunk_markdown(path: str, text: str) -> list[Chunk]:
    """Markdown: one chunk per section (heading path kept), long sections split by paragraph."""
    lines = text.splitlines()
    # (start index, heading path) of each section; text before the first heading has no path.
    sections: list[tuple[int, str]] = [(0, "")]
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    for i, line in enumerate(lines):
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            stack = [(lvl, title) for lvl, title in stack if lvl < level]
            stack.append((level, heading.group(2).strip()))
            sections.append((i, " > ".join(title for _, title in stack)))

    chunks: list[Chunk] = []
    bounds = [start for start, _ in sections[1:]] + [len(lines)]
    for (start, heading_path), end in zip(sections, bounds, strict=True):
        body = lines[start:end]
        # A heading with nothing under it before the next heading says nothing on its own.
        has_content = any(line.strip() for line in (body[1:] if heading_path else body))
        if not has_content:
            continue
        for a, b in split_lines(body):
            piece = "\n".join(body[a:b])
            chunks.append(
                Chunk(
                    text=piece,
                    path=path,
                    kind="text",
                    line_start=start + a + 1,
                    line_end=start + b,
                    section=heading_path,
                    context=f"{path}\n{heading_path}" if heading_path else path,
                )
            )
    return chunks
