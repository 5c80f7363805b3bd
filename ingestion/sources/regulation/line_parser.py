"""The line reader: one detector for HTML, Markdown, plain text and PDF lines.

``_LineParser`` finds divisions, units, numbered paragraphs and points in a sequence of lines,
building the tree (tree.py). It decides first whether the text has articles, any units at all,
or is a rulebook; then it reads line by line, keeping the open levels of labels (labels.py),
the recitals and the loose text outside units, and the document's title.
"""

import re
from dataclasses import dataclass

from ingestion.sources.regulation.headings import (
    _ADOPTED,
    _CLOSING,
    _ENDS_CLAUSE,
    _ENDS_SENTENCE,
    _OLD_RECITAL,
    _OPENERS,
    _RECITAL_LINE,
    _RECITALS_HEADING,
    _WHEREAS,
    _division_match,
    _subtitle_ok,
    _unit_match,
)
from ingestion.sources.regulation.labels import _LABEL, _NUMERIC, _candidates, _Level, _place
from ingestion.sources.regulation.markdown import _Line
from ingestion.sources.regulation.rulebook import (
    _CONTENTS,
    _RULE_STARTS,
    _chapter_title,
    _guidance,
    _rule_line,
    _RuleLine,
    _section_title,
    _within,
)
from ingestion.sources.regulation.text_helpers import _ws
from ingestion.sources.regulation.tree import _Doc, _Loose, _Node, _Unit


@dataclass
class _Division:
    rank: int  # part 1, title 2, chapter 3, section 5...; an annex -1 closes all
    text: str  # "Chapter III Rights of the data subject"
    number: str = ""  # rulebook: "1.1" of "1.1 Application" (rank 10 + its levels)
    title: str = ""  # rulebook: "Application"


class _LineParser:
    """Finds divisions, units, numbered paragraphs and points in a sequence of lines."""

    def __init__(self, lines: list[_Line], *, per_line: bool, numbered: bool) -> None:
        self.src = lines
        self.per_line = per_line  # HTML: every line is a paragraph of its own
        structural = [line for line in lines if line.norm and not line.verbatim]
        self.articles = any(
            (m := _unit_match(line.norm, line.level, articles=True)) and m[0] == "Art."
            for line in structural
        )
        self.structured = any(
            _unit_match(line.norm, line.level, articles=self.articles) for line in structural
        )
        # Three lines opening rules "1.1.2" make a rulebook, or two and a "Guidance" line; one
        # alone could be a wrapped reference.
        rules, guidance = 0, False
        for line in structural:
            parsed = _rule_line(line.norm)
            if parsed and parsed.depth >= 3 and (parsed.form != "text" or _rule_start(parsed)):
                rules += 1
            guidance = guidance or _guidance(line.norm, "", 0) is not None
            if rules >= 3 or (rules == 2 and guidance):
                break
        self.rulebook = rules >= 3 or (rules == 2 and guidance)
        self.structured = self.structured or self.rulebook
        self.doc = _Doc(
            lines=[line.raw for line in lines],
            pages=[line.page for line in lines] if any(line.page for line in lines) else [],
            numbered=numbered,
        )
        self.divisions: list[_Division] = []
        self.headings: list[tuple[int, str]] = []  # Markdown/HTML headings outside units
        self.unit: _Unit | None = None
        self.unit_level = 0
        self.levels: list[_Level] = []
        self.open: _Node | None = None  # the node whose last item is the run being read
        self.loose: _Loose | None = None
        self.expect = ""  # "unit" or "division": the next line may be its heading
        self.boundary = True  # a blank line, a heading or structure came just before
        self.previous = ""  # the previous non-blank line
        self.recitals = False
        # The recital being read ("Recital 85") and its number: a recital starts only at a
        # higher number, so a PDF page's footnotes "(1) OJ L 119 ..." do not start recitals.
        self.recital = ""
        self.recital_key: tuple[int, str] = (0, "")
        self.seen_unit = False
        self.title = ""

    def parse(self, default_title: str = "") -> _Doc:
        for index, line in enumerate(self.src):
            self._line(index, line)
        self.doc.title = self.title or default_title or self._first_lines_title()
        return self.doc

    def _line(self, index: int, line: _Line) -> None:
        text = line.norm
        if not text:
            self._break()
            return
        read = self._rulebook_line(index, line) if self.rulebook and not line.verbatim else None
        if read == "text":
            self.previous = text
            self.boundary = self.per_line
            return
        if not line.verbatim and self._recital_line(index, line):
            self.previous = text
            return
        if read == "structure" or (read is None and not line.verbatim and self._structure(line)):
            self.previous = text
            self._break()
            return
        if self.unit is not None:
            self._unit_text(self.unit, index, text)
        else:
            self._loose_text(index, text)
        self.previous = text
        self.boundary = self.per_line

    def _break(self) -> None:
        self.open = None
        self.loose = None
        self.boundary = True

    def _may_open(self, line: _Line, *, bare: bool) -> bool:
        """Whether a structure line really opens something: a wrapped line of running text can
        begin "Chapter IX. It applies", so text after the number needs a sentence ended before.
        """
        previous = self.previous
        return bool(
            line.level
            or (bare and not line.norm.endswith("."))
            or self.boundary
            or _ENDS_SENTENCE.search(previous)
            or not re.search(r"[a-z]", previous)
        )

    def _structure(self, line: _Line) -> bool:
        """Handle a heading or structure line; False when the line is body text."""
        text, level = line.norm, line.level
        expect, self.expect = self.expect, ""
        unit = _unit_match(text, level, articles=self.articles)
        if unit and self._may_open(line, bare=not unit[2]):
            self._start_unit(*unit, level=level)
            return True
        division = None if unit else _division_match(text, level)
        if division and self._may_open(line, bare=not division[2]):
            rank, display, has_heading = division
            self._close_unit()
            self._end_recitals()
            self.divisions = [d for d in self.divisions if d.rank < rank]
            self.divisions.append(_Division(rank, display))
            self.headings = []
            self.expect = "" if has_heading else "division"
            return True
        if expect and _subtitle_ok(text, level):
            if expect == "unit" and self.unit is not None:
                self.unit.heading = text
            elif expect == "division" and self.divisions:
                self.divisions[-1].text = f"{self.divisions[-1].text} {text}"
            return True
        if _CLOSING.match(text):
            self._close_unit()
            self.divisions = [_Division(-1, "Final provisions")]
            self.headings = []
            return False
        if line.title and not self.seen_unit:
            self.title = _ws(f"{self.title} {text}")
            return True
        if level:
            if self.unit is not None and self.unit_level and level > self.unit_level:
                return False  # a heading inside an article is part of its text
            self._close_unit()
            first = not self.title and not self.seen_unit and not self.divisions
            if first:
                self.title = text
                if self.structured:
                    return True
            self._end_recitals()
            if not self.seen_unit and (_RECITALS_HEADING.match(text) or _WHEREAS.match(text)):
                self.recitals = True
            self.headings = [(lvl, h) for lvl, h in self.headings if lvl < level]
            self.headings.append((level, text))
            return True
        return False

    def _rulebook_line(self, index: int, line: _Line) -> str | None:
        """Read a rulebook's numbered line: "structure", "text" (it opened a rule and is its
        first line), or None when it is neither and is read as any other line."""
        text = line.norm
        parsed = _rule_line(text)
        if parsed is None:
            marker = _guidance(text, "", 0)
            return None if marker is None else self._open_guidance(index, marker, self._around())
        if parsed.form == "guidance":
            number = parsed.number + (f"({parsed.label})" if parsed.label else "")
            return self._open_guidance(index, parsed, number)
        if parsed.depth == 1:
            if parsed.form == "text" and (line.level or _chapter_title(parsed.rest)):
                return self._numbered_heading(parsed, text)
            return None
        if parsed.depth == 2:
            if parsed.form == "bare" or (parsed.form == "text" and _section_title(parsed.rest)):
                return self._numbered_heading(parsed, text)
            return None
        rule = self.unit
        if rule is None or rule.prefix or rule.guidance or rule.number != parsed.number:
            rule = None  # not the rule this line continues ("1.1.2" then "1.1.2(1) ...")
        if parsed.form == "text":
            if not _rule_start(parsed) or rule is not None:
                return None
            # "1.1.1 Application" above "1.1.1.1 These Rules apply" heads them; "[Deleted]" is
            # what is left of a rule.
            titled = _section_title(parsed.rest) and parsed.rest[0] != "["
            if titled and self._opens_deeper(index, parsed.number):
                return self._numbered_heading(parsed, text)
            rule = self._open_rule(parsed.number, level=line.level)
            self._start_run(rule.root, index)
            return "text"
        if rule is None:
            rule = self._open_rule(parsed.number, level=line.level)
        if parsed.form == "bare":
            return "structure"
        self._unit_text(rule, index, f"({parsed.label}) {parsed.rest}".rstrip(), forced=True)
        return "text"

    def _around(self) -> str:
        """The number a "Guidance" line without one belongs to: the rule or section above."""
        if self.unit is not None and not self.unit.prefix:
            return self.unit.number
        numbered = [d.number for d in self.divisions if d.number]
        return numbered[-1] if numbered else ""

    def _opens_deeper(self, index: int, number: str) -> bool:
        """Whether the next line is numbered below `number` ("1.1.1 Application" above
        "1.1.1.1 These Rules apply"): then `number` is a heading, not a rule."""
        for line in self.src[index + 1 :]:
            if not line.norm:
                continue
            parsed = _rule_line(line.norm)
            if parsed is None:
                return False
            deeper = parsed.number.startswith(f"{number}.")
            return deeper or (parsed.number == number and parsed.form == "guidance")
        return False

    def _numbered_heading(self, parsed: _RuleLine, text: str) -> str:
        self._close_unit()
        rank = 10 + parsed.depth
        self.divisions = [d for d in self.divisions if d.rank < rank]
        self.divisions.append(_Division(rank, _ws(text), parsed.number, parsed.rest))
        self.headings = []
        self.expect = ""
        return "structure"

    def _open_rule(self, number: str, *, level: int = 0, guidance: bool = False) -> _Unit:
        """A rule (or its guidance) under the numbered sections that hold it."""
        self._close_unit()
        self.divisions = [
            d for d in self.divisions if d.rank <= 11 or not d.number or _within(number, d.number)
        ]
        sections = [d for d in self.divisions if d.number and d.rank >= 12]
        section = sections[-1] if sections else None
        heading = section.title if section else ""
        parents = tuple(d.text for d in self.divisions if d is not section)
        unit = _Unit("", number, heading, parents, guidance=guidance)
        self.doc.parts.append(unit)
        self.unit = unit
        self.unit_level = level
        self.seen_unit = True
        self._end_recitals()
        self.headings = []
        self.expect = ""
        return unit

    def _open_guidance(self, index: int, marker: _RuleLine, number: str) -> str:
        unit = self.unit
        if unit is None or not unit.guidance or unit.number != number:
            unit = self._open_rule(number, guidance=True)
        if marker.title not in ("Guidance", "GUIDANCE"):
            unit.note = marker.title
        if not marker.note:
            return "structure"
        note = marker.note if marker.note.startswith("(") else f"{marker.note}."
        self._unit_text(unit, index, f"{note} {marker.rest}".rstrip(), forced=True)
        return "text"

    def _start_unit(self, prefix: str, number: str, heading: str, *, level: int) -> None:
        self._close_unit()
        self.unit = _Unit(prefix, number, heading, tuple(d.text for d in self.divisions))
        self.doc.parts.append(self.unit)
        self.unit_level = level
        self.expect = "" if heading else "unit"
        self.seen_unit = True
        self._end_recitals()

    def _close_unit(self) -> None:
        self.unit = None
        self.unit_level = 0
        self.levels = []
        self.open = None

    def _para_depth(self, unit: _Unit) -> int:
        """1 when the first level holds the unit's paragraphs (numbered, or a §'s (a))."""
        if self.levels and (not unit.article_like or self.levels[0].kind in _NUMERIC):
            return 1
        return 0

    def _unit_text(self, unit: _Unit, index: int, text: str, *, forced: bool = False) -> None:
        match = _LABEL.match(text)
        if match and (forced or self._may_start_item(match)):
            placed = _place(self.levels, _candidates(match))
            if placed is not None:
                depth, kind, label = placed
                parent = self.levels[depth - 1].node if depth else unit.root
                node = _Node(label)
                parent.items.append(node)
                del self.levels[depth:]
                self.levels.append(_Level(kind, label, node))
                self._start_run(node, index)
                return
        if self.open is not None and not self.boundary and not self._new_subparagraph(unit, text):
            self._extend(self.open, index)
            return
        self._start_run(self._home(unit, text), index)

    def _may_start_item(self, match: re.Match[str]) -> bool:
        # "(a) of Article 9(2)" at the start of a wrapped line continues a sentence.
        if re.match(r"(?:of|and|or)\b", match["rest"] or ""):
            return False
        return self.boundary or bool(_ENDS_CLAUSE.search(self.previous))

    def _new_subparagraph(self, unit: _Unit, text: str) -> bool:
        """Without a blank line: a sentence after a point's final full stop closes the list."""
        return (
            len(self.levels) > self._para_depth(unit)
            and self.previous.endswith(".")
            and _starts_sentence(text)
        )

    def _home(self, unit: _Unit, text: str) -> _Node:
        """The node an unnumbered paragraph belongs to: the text after a list joins its parent."""
        keep = self._para_depth(unit)
        if len(self.levels) > keep and _starts_sentence(text):
            del self.levels[keep:]
        return self.levels[-1].node if self.levels else unit.root

    def _start_run(self, node: _Node, index: int) -> None:
        node.items.append((index, index + 1))
        self.open = node

    def _extend(self, node: _Node, index: int) -> None:
        last = node.items[-1]
        if isinstance(last, tuple):
            node.items[-1] = (last[0], index + 1)
        else:
            node.items.append((index, index + 1))

    def _loose_text(self, index: int, text: str) -> None:
        ended = False
        if _WHEREAS.match(text):
            self.recitals = True
            self.recital, self.recital_key = "", (0, "")
        elif _ADOPTED.match(text):
            ended = self.recitals
            self._end_recitals()
        match = _LABEL.match(text)
        paren = (match["paren"] or "") if match else ""
        number = paren if paren[:1].isdigit() else ""
        rest = (match["rest"] or "") if match else ""
        starts = self.boundary or bool(_ENDS_SENTENCE.search(self.previous))
        if number and starts and not self.seen_unit and _OLD_RECITAL.match(rest):
            self.recitals = True
        if self.recitals and number and starts and _recital_key(number) > self.recital_key:
            self._start_recital(index, number)
        elif self.loose is not None and not self.boundary and not ended:
            self.loose.span = (self.loose.span[0], index + 1)
        else:
            self._start_loose(index, self._section())

    def _recital_line(self, index: int, line: _Line) -> bool:
        """A "Recital 85" line (or heading) outside the articles starts that recital."""
        match = _RECITAL_LINE.match(line.norm)
        if match is None or (match["title"] and not line.level) or self.unit is not None:
            return False
        if not (line.level or self.boundary or _ENDS_SENTENCE.search(self.previous)):
            return False  # "... as set out in" / "Recital 85 of this Regulation": running text
        self.recitals = True
        self.recital_key = (0, "")  # such copies may list recitals in any order
        self._start_recital(index, match["number"])
        self.boundary = False
        return True

    def _start_recital(self, index: int, number: str) -> None:
        self.recital, self.recital_key = f"Recital {number}", _recital_key(number)
        self._start_loose(index, self.recital)

    def _end_recitals(self) -> None:
        self.recitals = False
        self.recital, self.recital_key = "", (0, "")

    def _start_loose(self, index: int, section: str) -> None:
        self.loose = _Loose(section, (index, index + 1))
        self.doc.parts.append(self.loose)

    def _section(self) -> str:
        if self.recitals and self.recital:  # a recital's later paragraphs, after a blank line
            return self.recital
        path = [d.text for d in self.divisions] + [h for _, h in self.headings]
        if path:
            return " > ".join(path)
        return "Preamble" if self.structured and not self.seen_unit else ""

    def _first_lines_title(self) -> str:
        picked: list[str] = []
        for line in self.src:
            if not line.norm:
                if picked:
                    break
                continue
            structure = (
                _unit_match(line.norm, line.level, articles=self.articles)
                or _division_match(line.norm, line.level)
                or (self.rulebook and _rule_line(line.norm))
            )
            if structure or _LABEL.match(line.norm) or len(picked) == 8:
                break
            picked.append(line.norm)
        # A title wraps over a few lines; a long first paragraph is not a title.
        title = " ".join(picked)
        if len(title) > 400:
            title = picked[0] if len(picked[0]) <= 200 else ""
        return title


def _recital_key(number: str) -> tuple[int, str]:
    """The order of recital numbers: "12" < "12a" < "13"."""
    digits = re.match(r"\d+", number)
    assert digits is not None  # callers pass numbers that start with a digit
    return int(digits[0]), number[digits.end() :]


def _rule_start(parsed: _RuleLine) -> bool:
    """A numbered line with text opens a rule when the text starts like one ("1.1.2 A Person
    must"), unlike a wrapped reference ("1.1.2 and 1.1.3 apply") or a line of the contents."""
    rest = parsed.rest
    return (
        bool(rest) and (rest[0].isupper() or rest[0] in _RULE_STARTS) and not _CONTENTS.search(rest)
    )


def _starts_sentence(text: str) -> bool:
    letters = text.lstrip(_OPENERS + " ")
    return bool(letters) and letters[0].isupper()
