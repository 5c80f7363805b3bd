"""Chunkers: a file's text into passages that carry a locator a person can follow.

Locators follow ARCHITECTURE.md: code chunks carry ``path``, ``lines`` and ``symbol``; text and
Markdown chunks carry ``path``, ``lines`` and, under a heading, ``section`` (the heading path).
Line numbers are 1-based and inclusive.
"""

import ast
import re
from dataclasses import dataclass, field
from typing import Any

# About 256 word pieces, the embedder's window; longer passages are split at paragraph breaks.
MAX_CHARS = 1200
# A function or class longer than this is split: classes by method, the rest by line windows.
MAX_CODE_LINES = 80


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    path: str
    kind: str  # "code" or "text"
    line_start: int
    line_end: int
    section: str = ""
    symbol: str = ""
    # Extra context that is embedded with the text but not shown (path, heading, class line).
    context: str = field(default="", compare=False)

    @property
    def embed_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text

    @property
    def locator(self) -> dict[str, Any]:
        locator: dict[str, Any] = {"path": self.path}
        if self.section:
            locator["section"] = self.section
        if self.symbol:
            locator["symbol"] = self.symbol
        locator["lines"] = [self.line_start, self.line_end]
        return locator


def _split_block(lines: list[str]) -> list[tuple[int, int]]:
    """Split lines into runs of at most MAX_CHARS, breaking at blank lines where possible.

    Returns 0-based (start, end-exclusive) index pairs into ``lines``.
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
            if size and size + len(lines[i]) + 1 > MAX_CHARS:
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
            if run_size + size <= MAX_CHARS:
                runs[-1] = (run_a, b)
                continue
        runs.append((a, b))
    return runs


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
        for a, b in _split_block(lines)
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
        for a, b in _split_block(body):
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


def _node_start(node: ast.stmt) -> int:
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _windows(start: int, end: int) -> list[tuple[int, int]]:
    """1-based inclusive line windows of at most MAX_CODE_LINES covering start..end."""
    return [(a, min(a + MAX_CODE_LINES - 1, end)) for a in range(start, end + 1, MAX_CODE_LINES)]


def chunk_python(path: str, text: str) -> list[Chunk]:
    """Python: one chunk per top-level function or class, large classes split by method.

    Module-level statements between definitions (imports, constants, ``if __name__``) form their
    own chunks. A file that does not parse is chunked as plain text, still as code.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return [
            Chunk(
                text=c.text,
                path=path,
                kind="code",
                line_start=c.line_start,
                line_end=c.line_end,
                context=path,
            )
            for c in chunk_text(path, text)
        ]
    lines = text.splitlines()
    imports = [
        ast.get_source_segment(text, node) or ""
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    module_context = "\n".join([f"# {path}", *imports[:20]])
    chunks: list[Chunk] = []

    def add(start: int, end: int, symbol: str, context: str) -> None:
        for a, b in _windows(start, end):
            body = "\n".join(lines[a - 1 : b])
            if body.strip():
                chunks.append(
                    Chunk(
                        text=body,
                        path=path,
                        kind="code",
                        line_start=a,
                        line_end=b,
                        symbol=symbol,
                        context=context,
                    )
                )

    pending: tuple[int, int] | None = None  # a run of module-level statements
    for node in tree.body:
        start, end = _node_start(node), node.end_lineno or node.lineno
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            pending = (pending[0], end) if pending else (start, end)
            continue
        if pending:
            add(*pending, "", module_context)
            pending = None
        if isinstance(node, ast.ClassDef) and end - start + 1 > MAX_CODE_LINES:
            header = lines[node.lineno - 1].strip()
            methods = [
                n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            first_method = _node_start(methods[0]) if methods else end + 1
            add(start, first_method - 1, node.name, module_context)
            for i, method in enumerate(methods):
                m_start = _node_start(method)
                # Class-level lines after a method belong to it, up to the next method.
                m_end = _node_start(methods[i + 1]) - 1 if i + 1 < len(methods) else end
                add(m_start, m_end, f"{node.name}.{method.name}", f"{module_context}\n{header}")
        else:
            add(start, end, node.name, module_context)
    if pending:
        add(*pending, "", module_context)
    return chunks
