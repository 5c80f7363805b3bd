"""The tree every format is read into: units holding nodes, loose text, and the document.

A ``_Unit`` is an article, a US-style §, or a rulebook's rule or guidance, with its heading and
the headings above it; its root ``_Node`` holds the numbered paragraphs, which hold points and
subpoints, each a run of line spans. ``_Loose`` is text outside any unit (preamble, recitals,
annexes) under a section name, and ``_Doc`` holds the lines, their pages and the parts in
order. Every reader builds a ``_Doc``; the chunker cuts it.
"""

from dataclasses import dataclass, field

_Span = tuple[int, int]  # lines [start, end) of the document's line list


@dataclass
class _Node:
    """A paragraph, point or subpoint (the unit's root has no label): text runs and sub-nodes."""

    label: str = ""
    items: "list[_Node | _Span]" = field(default_factory=list)
    prefix: str = ""  # XML: the number ("1.", "(a)") still to be put before the first text


@dataclass
class _Unit:
    """An article, a § or a rulebook's rule or guidance: its number, heading, the headings above
    it and its paragraphs."""

    prefix: str  # "Art.", "§", "Section" or "Rule"; "" for a rulebook's rule "1.1.2"
    number: str
    heading: str
    parents: tuple[str, ...]
    root: _Node = field(default_factory=_Node)
    guidance: bool = False  # rulebook: the guidance following the rule (or section) `number`
    note: str = ""  # rulebook: the guidance's own title ("Guidance on CDD"), for the context

    def cite(self, labels: tuple[str, ...] = ()) -> str:
        if self.prefix:
            return f"{self.prefix} {self.number}" + "".join(f"({label})" for label in labels)
        base = self.number
        if self.guidance:
            base = f"{base} Guidance".lstrip()
            if labels:
                first = labels[0] if labels[0][:1].isdigit() else f"({labels[0]})"
                base, labels = f"{base} {first}", labels[1:]
        return base + "".join(f"({label})" for label in labels)

    @property
    def article_like(self) -> bool:
        """Its first level "(a)" holds points kept together, unless the level is numbered."""
        return self.prefix in ("Art.", "")

    @property
    def notes(self) -> bool:
        """Guidance made of notes ("1.", "(i)") from its first line: one chunk per note."""
        return self.guidance and bool(self.root.items) and isinstance(self.root.items[0], _Node)


@dataclass
class _Loose:
    """Text outside any unit (preamble, recitals, annexes), under a section name."""

    section: str
    span: _Span


@dataclass
class _Doc:
    lines: list[str] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)  # page of each line; empty when not paged
    numbered: bool = False  # the lines are the file's lines: chunks carry line spans
    title: str = ""
    parts: list[_Unit | _Loose] = field(default_factory=list)
