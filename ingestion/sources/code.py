"""Code: one chunk per function, method or class, with its qualified symbol and line span."""

import ast

from ingestion.sources.base import Chunk
from ingestion.sources.text import chunk_text

# A function or class longer than this is split: classes by method, the rest by line windows.
MAX_CODE_LINES = 80


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
