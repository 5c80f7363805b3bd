"""Golden sets: JSONL files of questions with the units a good answer retrieves and cites.

One item per line::

    {"id": "q1", "question": "...",
     "expected": [{"path": "policies.md", "lines": [5, 8], "grade": 2},
                  {"path": "gdpr.xml", "section": "Art. 17(1)"},
                  {"path": "paper.pdf", "page": 4, "section": "3.2 Results"},
                  {"text": "an exact snippet", "grade": 1}],
     "answer": "optional reference answer", "unanswerable": false,
     "facts": ["20 000 000", ["4 %", "4%", "four per cent"]], "tags": ["numeric"]}

A unit names a file (``path``) and optionally narrows it by ``lines`` (1-based, inclusive),
``section`` (citation or heading path), ``page`` and ``symbol``; or it quotes ``text``. ``grade``
is graded relevance (1 by default, 2 = best). ``unanswerable`` items list no units: the
assistant should abstain. ``facts`` are what a correct answer must state: each is a string,
or a list of alternatives of which one must appear (``evals.facts`` says how they are compared).
``tags`` name the kind of question (``numeric``, ``cases``, ``computation``...) for reports.
Blank lines are skipped. ``evals.matching`` says when a retrieved
chunk hits a unit.
"""

import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evals.errors import GoldenSetError


def normalise_path(path: str) -> str:
    """A path as units and locators are compared: ``/`` separated, no ``./`` parts.

    A leading ``src/`` is kept: the golden set says what it says.
    """
    path = path.strip()
    if not path:
        return ""
    normal = posixpath.normpath(path)
    return "" if normal == "." else normal


class ExpectedUnit(BaseModel):
    """One unit a good answer retrieves: part of a file, or a quoted snippet."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    path: str | None = Field(default=None, min_length=1, max_length=1000)
    lines: tuple[int, int] | None = None
    section: str | None = Field(default=None, min_length=1, max_length=500)
    page: int | None = Field(default=None, ge=1)
    symbol: str | None = Field(default=None, min_length=1, max_length=500)
    text: str | None = Field(default=None, min_length=1)
    grade: int = Field(default=1, ge=1, le=10)

    @field_validator("path")
    @classmethod
    def _normal_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normal = normalise_path(value)
        if not normal:
            raise ValueError("the path is empty")
        return normal

    @field_validator("lines")
    @classmethod
    def _line_span(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1]:
            raise ValueError("lines must be [first, last] with 1 <= first <= last")
        return value

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        narrowing = [n for n in ("lines", "section", "page", "symbol") if getattr(self, n)]
        if self.path is None and narrowing:
            raise ValueError(f'"{narrowing[0]}" needs a "path"')
        if self.path is None and self.text is None:
            raise ValueError('a unit needs a "path" or a "text"')
        return self

    def public(self) -> dict[str, Any]:
        """The unit as written in a golden set, without the fields left out."""
        return self.model_dump(exclude_none=True, mode="json")


class GoldenItem(BaseModel):
    """A question, the units that answer it, and optionally a reference answer."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200)
    question: str = Field(min_length=1)
    expected: tuple[ExpectedUnit, ...] = ()
    answer: str | None = None
    unanswerable: bool = False
    # Each fact is a tuple of alternatives; one of them must appear in a correct answer.
    facts: tuple[tuple[str, ...], ...] = ()
    tags: tuple[str, ...] = ()

    @field_validator("facts", mode="before")
    @classmethod
    def _fact_alternatives(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return [[fact] if isinstance(fact, str) else fact for fact in value]

    @field_validator("facts")
    @classmethod
    def _facts_not_blank(cls, value: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        for alternatives in value:
            if not alternatives or not all(a.strip() for a in alternatives):
                raise ValueError("a fact is a non-empty string or a list of them")
        return value

    @model_validator(mode="after")
    def _expected_matches_answerability(self) -> Self:
        if self.unanswerable and self.expected:
            raise ValueError('an unanswerable item lists no "expected" units')
        if not self.unanswerable and not self.expected:
            raise ValueError('"expected" is empty; list the units or set "unanswerable": true')
        if self.unanswerable and self.facts:
            raise ValueError('an unanswerable item lists no "facts"')
        return self


@dataclass(frozen=True, slots=True)
class GoldenSet:
    """A loaded golden set: its name, the sha256 of its bytes, and its items by line."""

    name: str
    sha256: str
    source: str  # the file as named by the caller, for file:line messages
    items: list[GoldenItem]
    lines: list[int]  # the line number of each item

    def __len__(self) -> int:
        return len(self.items)

    def where(self, index: int) -> str:
        """``file:line`` of the item at ``index``."""
        return f"{self.source}:{self.lines[index]}"


def _validation_problem(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        loc = ""
        for part in error["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{loc}: {message}" if loc else message)
    return "; ".join(problems)


def parse_golden(text: str, *, source: str) -> tuple[list[GoldenItem], list[int]]:
    """Items of a golden set and their line numbers; every bad line is reported."""
    items: list[GoldenItem] = []
    lines: list[int] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    # Lines end at "\n" only: a JSON string may hold U+2028 or U+0085, which splitlines() breaks at.
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{source}:{line_no}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            problems.append(f"{source}:{line_no}: each line must be a JSON object")
            continue
        try:
            item = GoldenItem.model_validate(data)
        except ValidationError as exc:
            problems.append(f"{source}:{line_no}: {_validation_problem(exc)}")
            continue
        if item.id in first_line:
            problems.append(
                f"{source}:{line_no}: duplicate id {item.id!r} (first on line "
                f"{first_line[item.id]})"
            )
            continue
        first_line[item.id] = line_no
        items.append(item)
        lines.append(line_no)
    if not items and not problems:
        problems.append(f"{source}: no items")
    if problems:
        raise GoldenSetError(problems)
    return items, lines


def load_golden(path: Path, *, name: str | None = None) -> GoldenSet:
    """Read and check a golden set; ``name`` defaults to the file name without extension."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise GoldenSetError([f"{path}: no such file"]) from exc
    except IsADirectoryError as exc:
        raise GoldenSetError([f"{path}: is a directory, not a JSONL file"]) from exc
    return read_golden(data, source=str(path), name=name or path.stem)


def read_golden(data: bytes, *, source: str, name: str) -> GoldenSet:
    """Check a golden set's bytes: JSONL, or a JSON array of the same items (an uploaded file);
    every problem reads ``source:line`` (for an array, ``source:n`` of the n-th item)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GoldenSetError([f"{source}: not UTF-8 ({exc.reason} at byte {exc.start})"]) from exc
    if text.lstrip().startswith("["):
        try:
            array = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            raise GoldenSetError([f"{source}: {problem}"]) from exc
        if not isinstance(array, list):
            raise GoldenSetError([f"{source}: a JSON golden set is an array of items"])
        text = "\n".join(json.dumps(item, ensure_ascii=False) for item in array)
    items, lines = parse_golden(text, source=source)
    return GoldenSet(
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        source=source,
        items=items,
        lines=lines,
    )
