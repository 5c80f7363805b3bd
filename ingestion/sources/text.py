"""Text: Markdown by heading (the heading path is the section), plain text by paragraph."""

import re

from ingestion.sources.base import Chunk, split_lines


def chunk_text(path: str, text: str) -> list[Chunk]:
    """Plain text: paragraphs grouped up to MAX_CHARS."""
    lines = text.splitlines()
    return [
        Chunk(
            text="\n".join(lines[a:b]),
            path=path,
            kind="text",
            line_start=a + 1,
            line_end=b,
            context=path,
        )
        for a, b in split_lines(lines)
    ]


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
