"""What the extractive answerer quotes from code: a statement with the lines around it.

``_code_snippet`` widens a code unit to a window of up to ``CODE_WINDOW`` lines within its
block, headed by the ``def``/``class`` line it belongs to, never across a line aimed at the
assistant; ``_constants_named`` adds the assignments of the constants the quoted code uses whose
names share a word with the question; ``_absolute`` maps a unit to its line span in the file.
"""

import re
import textwrap
from collections.abc import Sequence
from dataclasses import replace

from assets import compose
from assets.answering.safety import is_instruction
from assets.retrieval import Passage

# Code: a statement is quoted with the lines around it, CODE_WINDOW in all, up to CODE_BEFORE
# before it (most passages whole: a window of 12 lines stated the facts of a right answer half
# as often on the code answer set).
CODE_WINDOW = 80
CODE_BEFORE = 40


def _code_snippet(passage: Passage, unit: compose.Unit) -> tuple[str, list[int] | None]:
    """The lines of a code unit with those around it (CODE_WINDOW in all, CODE_BEFORE before,
    never into the next function nor across a line aimed at the assistant), with the
    ``def``/``class`` line it belongs to when that is not among them; and their line span in
    the file, when the passage has one."""
    lines = passage.text.split("\n")
    first, last = unit.first, unit.last
    room = max(CODE_WINDOW - (last - first + 1), 0)
    first = max(first - min(CODE_BEFORE, room), 0)
    opening = next((line for line in lines[first : unit.first + 1] if line.strip()), "")
    depth = len(opening) - len(opening.lstrip())
    for i in range(last + 1, min(last + 1 + room - (unit.first - first), len(lines))):
        indent = len(lines[i]) - len(lines[i].lstrip())
        if lines[i].strip() and (
            (indent <= depth and re.match(r"^\s*(async\s+)?(def|class)\s", lines[i]))
            or (depth and not indent)
        ):
            break  # the next function or class, or out of the block quoted
        last = i
    # Never across a line aimed at the assistant (the unit itself holds none: ``_units``).
    unsafe = [i for i in range(first, last + 1) if is_instruction(lines[i])]
    first = max([first, *(i + 1 for i in unsafe if i < unit.first)])
    last = min([last, *(i - 1 for i in unsafe if i > unit.last)])
    while last > unit.last and not lines[last].strip():
        last -= 1
    while first < unit.first and not lines[first].strip():
        first += 1
    head = ""
    for i in range(first - 1, -1, -1):
        if re.match(r"^\s*(async\s+)?(def|class)\s", lines[i]):
            if is_instruction(lines[i]):
                break
            if first - i > 1:
                margin = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
                head = f"{lines[i]}\n{margin}...\n"
            else:
                first = i
            break
        if lines[i].strip() and not lines[i].startswith((" ", "\t")):
            break  # left the block the unit is in
    body = head + "\n".join(lines[first : last + 1])
    span = passage.locator.get("lines")
    if isinstance(span, list | tuple) and len(span) == 2:
        return body, [int(span[0]) + first, int(span[0]) + last]
    return body, None


# A constant the quoted code uses (``self.RETRY_AFTER_STATUS_CODES``) is quoted with its
# assignment when its name shares a word with the question: the value is the answer to "which
# status codes...", not the line that reads it. At most CONSTANTS of them, each up to
# CONSTANT_LINES lines.
CONSTANTS = 2
CONSTANT_LINES = 12
_CONSTANT = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")


def _assigns(name: str) -> re.Pattern[str]:
    """A line that assigns ``name`` (``NAME = ...``, ``NAME: int = ...``)."""
    return re.compile(rf"^\s*{name}\s*(?::[^=\n]*)?=(?!=)", re.M)


def _constants_named(question: str, code: str, passages: Sequence[Passage]) -> list[Passage]:
    """The assignments, found in ``passages``, of the constants ``code`` uses but does not
    assign and whose names share a word with ``question``; each as a passage of its own lines."""
    if not code:
        return []
    wanted = compose.terms(question)
    found: list[Passage] = []
    for name in dict.fromkeys(_CONSTANT.findall(code)):
        if len(found) == CONSTANTS:
            break
        if _assigns(name).search(code):
            continue  # assigned in the quote already
        if not compose.terms(name.replace("_", " ")) & wanted:
            continue
        for passage in passages:
            definition = _assignment(passage, name) if passage.kind == "code" else None
            if definition is not None:
                found.append(definition)
                break
    return found


def _assignment(passage: Passage, name: str) -> Passage | None:
    """``name = ...`` in ``passage``, the whole statement (brackets balanced), with its lines."""
    span = passage.locator.get("lines")
    if not (isinstance(span, list | tuple) and len(span) == 2):
        return None
    lines = passage.text.split("\n")
    pattern = _assigns(name)
    for first, line in enumerate(lines):
        if not pattern.match(line):
            continue
        depth, last = 0, first
        for last in range(first, min(len(lines), first + CONSTANT_LINES)):
            depth += sum(lines[last].count(c) for c in "([{")
            depth -= sum(lines[last].count(c) for c in ")]}")
            if depth <= 0:
                break
        body = textwrap.dedent("\n".join(lines[first : last + 1]))
        start = int(span[0]) + first
        return replace(
            passage, text=body, locator={**passage.locator, "lines": [start, start + last - first]}
        )
    return None


def _absolute(passage: Passage, unit: compose.Unit) -> tuple[int, int]:
    """A code unit's line span in its file (0, 0 when the passage has no lines)."""
    span = passage.locator.get("lines")
    if isinstance(span, list | tuple) and len(span) == 2:
        return int(span[0]) + unit.first, int(span[0]) + unit.last
    return 0, 0
