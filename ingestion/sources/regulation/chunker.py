"""Chunking: the read tree cut into one chunk per numbered paragraph, deeper only when huge.

``_Chunker`` gives every chunk its citation path ("Art. 17(3)(b)"), heading and the headings
above it, its line span or page, the terms it defines and the provisions it refers to. A
paragraph longer than ``SPLIT_FACTOR`` times the embedder's window is cut between its points;
nothing is ever cut inside a point.
"""

from ingestion.sources.base import Chunk
from ingestion.sources.regulation.definitions import _definitions
from ingestion.sources.regulation.headings import _ENDS_SENTENCE, _LEAD_IN
from ingestion.sources.regulation.references import _references
from ingestion.sources.regulation.text_helpers import _ws
from ingestion.sources.regulation.tree import _Doc, _Loose, _Node, _Span, _Unit

# A paragraph up to this many times the window stays whole: cutting it would separate a point
# from the sentence that introduces it, which costs more than the embedder truncating the tail.
SPLIT_FACTOR = 1.5


def _extent(node: _Node) -> _Span | None:
    first: int | None = None
    last: int | None = None
    for item in node.items:
        span = item if isinstance(item, tuple) else _extent(item)
        if span is None:
            continue
        if first is None:
            first = span[0]
        last = span[1]
    return None if first is None or last is None else (first, last)


class _Chunker:
    """Cuts a read document into chunks: one per numbered paragraph, deeper only when huge."""

    def __init__(self, doc: _Doc, path: str, max_chars: int) -> None:
        self.doc = doc
        self.path = path
        self.max_chars = max_chars
        self.split_chars = int(max_chars * SPLIT_FACTOR)
        self.offsets = [0]
        for line in doc.lines:
            self.offsets.append(self.offsets[-1] + len(line) + 1)
        self.chunks: list[Chunk] = []
        self.definitions: dict[str, str] = {}
        self.defined_at: dict[int, list[str]] = {}  # first line of a run -> the terms it defines

    def run(self) -> list[Chunk]:
        parts = self.doc.parts
        i = 0
        while i < len(parts):
            part = parts[i]
            if isinstance(part, _Unit):
                self._unit(part)
                i += 1
                continue
            spans: list[_Span] = []
            while i < len(parts):
                loose = parts[i]
                if not isinstance(loose, _Loose) or loose.section != part.section:
                    break
                spans.append(loose.span)
                i += 1
            self._runs(spans, None, (), "", section=part.section)
        return self.chunks

    def _size(self, span: _Span) -> int:
        return self.offsets[span[1]] - self.offsets[span[0]]

    def _text(self, span: _Span) -> str:
        return "\n".join(self.doc.lines[span[0] : span[1]])

    def _paragraphed(self, unit: _Unit) -> bool:
        """Whether a unit is cut into its first-level items: numbered paragraphs, a §'s (a),
        guidance notes. A rule's "(1)" after a lead-in ("A Person must:") lists points."""
        children = [item for item in unit.root.items if isinstance(item, _Node)]
        if not children:
            return False
        if not unit.article_like or unit.notes:
            return True
        if not children[0].label[:1].isdigit():
            return False
        if unit.prefix:
            return True
        first = next(k for k, item in enumerate(unit.root.items) if isinstance(item, _Node))
        before = unit.root.items[first - 1] if first else None
        return not (isinstance(before, tuple) and _LEAD_IN.search(self.doc.lines[before[1] - 1]))

    def _unit(self, unit: _Unit) -> None:
        self._collect_definitions(unit, unit.root, ())
        if self._paragraphed(unit):
            self._split(unit, unit.root, (), "")
        else:
            self._node(unit, unit.root, (), "")

    def _collect_definitions(self, unit: _Unit, node: _Node, labels: tuple[str, ...]) -> None:
        for item in node.items:
            if isinstance(item, _Node):
                self._collect_definitions(unit, item, (*labels, item.label))
                continue
            terms = _definitions(_ws(self._text(item)))
            if terms:
                self.defined_at[item[0]] = terms
                for term in terms:
                    self.definitions.setdefault(term, unit.cite(labels))

    def _node(self, unit: _Unit, node: _Node, labels: tuple[str, ...], lead: str) -> None:
        span = _extent(node)
        if span is None:
            return
        if self._size(span) <= self.split_chars:
            self._emit(span, unit, labels, lead)
        else:
            self._split(unit, node, labels, lead)

    def _split(self, unit: _Unit, node: _Node, labels: tuple[str, ...], lead: str) -> None:
        """Each sub-node on its own (deeper path); text between them at this node's path."""
        runs: list[_Span] = []
        intro = ""
        seen_child = False
        for item in node.items:
            if isinstance(item, tuple):
                runs.append(item)
                continue
            if runs:
                if not seen_child:
                    intro = _ws(self._text((runs[0][0], runs[-1][1])))[:300]
                self._runs(runs, unit, labels, lead)
                runs = []
            seen_child = True
            self._node(unit, item, (*labels, item.label), intro or lead)
        if runs:
            self._runs(runs, unit, labels, lead)

    def _runs(
        self,
        runs: list[_Span],
        unit: _Unit | None,
        labels: tuple[str, ...],
        lead: str,
        *,
        section: str = "",
    ) -> None:
        """Consecutive runs of text packed up to the window, never cutting a run that fits."""
        group: list[_Span] = []
        for run in runs:
            for piece in [run] if self._size(run) <= self.split_chars else self._cut(run):
                if group and self._size((group[0][0], piece[1])) > self.max_chars:
                    self._emit((group[0][0], group[-1][1]), unit, labels, lead, section=section)
                    group = []
                group.append(piece)
        if group:
            self._emit((group[0][0], group[-1][1]), unit, labels, lead, section=section)

    def _cut(self, span: _Span) -> list[_Span]:
        """A huge run of several lines, cut between lines that end a sentence where possible."""
        start, end = span
        lines = self.doc.lines
        pieces: list[_Span] = []
        while end - start > 1 and self._size((start, end)) > self.max_chars:
            sentence: int | None = None
            k = start + 1
            while k < end and self._size((start, k + 1)) <= self.max_chars:
                if _ENDS_SENTENCE.search(lines[k - 1]):
                    sentence = k
                k += 1
            if _ENDS_SENTENCE.search(lines[k - 1]) and k < end:
                sentence = k
            cut = sentence or k  # else the last line boundary that fits (at least one line)
            pieces.append((start, cut))
            start = cut
        pieces.append((start, end))
        return pieces

    def _emit(
        self,
        span: _Span,
        unit: _Unit | None,
        labels: tuple[str, ...],
        lead: str,
        *,
        section: str = "",
    ) -> None:
        start, end = span
        text = self._text(span)
        flat = _ws(text)
        extra: dict[str, str] = {}
        if unit is not None:
            section = unit.cite(labels)
            terms = [t for k in range(start, end) for t in self.defined_at.get(k, [])]
        else:
            terms = _definitions(flat)
            for term in terms:
                self.definitions.setdefault(term, section)
        if unit is not None and unit.parents:
            extra["parents"] = " > ".join(unit.parents)
        if terms:
            extra["defines"] = "; ".join(dict.fromkeys(terms))
        refs = _references(flat, unit, labels)
        if refs:
            extra["refs"] = "; ".join(refs)
        heading = unit.heading if unit is not None else ""
        parents = unit.parents if unit is not None else ()
        note = unit.note if unit is not None else ""
        context = [self.doc.title or self.path, *parents, heading, section, note, lead]
        self.chunks.append(
            Chunk(
                text=text,
                path=self.path,
                kind="regulation",
                line_start=start + 1 if self.doc.numbered else 0,
                line_end=end if self.doc.numbered else 0,
                section=section,
                heading=heading,
                page=self.doc.pages[start] if self.doc.pages else 0,
                extra=extra,
                context="\n".join(part for part in context if part),
            )
        )
