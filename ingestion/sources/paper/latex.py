"""LaTeX papers: a small LaTeX-to-text pass that keeps every line where it was.

``_TexReader`` drops comments and layout, expands accents and escapes, keeps math and verbatim
text as written, and records the structure it meets (sections, the abstract, the bibliography,
title, authors, DOIs), so that each chunk's line span is exact in the source file.
"""

import re
import unicodedata
from bisect import bisect_right
from typing import Any

from ingestion.sources.base import ParsedDocument
from ingestion.sources.paper.headings import _REFERENCE_TITLES, _normal_title
from ingestion.sources.paper.metadata import _authors_from_lines, _find_doi, _find_orcids
from ingestion.sources.paper.sections import (
    _build,
    _Line,
    _meta,
    _Section,
    _source_lines,
    _with_parents,
)

_TEX_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$")
_SECTION_LEVELS = {"part": -1, "chapter": 0, "section": 1, "subsection": 2, "subsubsection": 3}
_CITE = {
    "cite", "citep", "citet", "citealp", "citealt", "citeauthor", "citeyear", "citeyearpar",
    "autocite", "parencite", "textcite", "footcite", "supercite", "smartcite", "Cite", "Citep",
    "Citet", "Autocite", "Parencite", "Textcite", "fullcite", "nocite",
}  # fmt: skip
_REF = {"ref", "eqref", "autoref", "cref", "Cref", "pageref", "nameref", "vref", "Autoref"}
_DROP = {
    "label", "vspace", "hspace", "includegraphics", "bibliographystyle", "usepackage",
    "RequirePackage", "documentclass", "setlength", "addtolength", "setcounter", "addtocounter",
    "pagestyle", "thispagestyle", "pagenumbering", "addcontentsline", "graphicspath",
    "hypersetup", "newenvironment",
    "renewenvironment", "DeclareMathOperator", "newtheorem", "date", "thanks", "affil",
    "affiliation", "address", "institute", "institution", "email", "orcid", "orcidlink",
    "keywords", "ccsdesc", "acmConference", "acmYear", "acmDOI", "acmISBN", "acmBooktitle",
    "copyrightyear", "setcopyright", "received", "accepted", "input", "include", "newlength",
    "definecolor", "captionsetup", "lstset", "addbibresource", "titlerunning",
    "authorrunning", "shorttitle", "shortauthors", "markboth", "markright", "fancyhead",
    "fancyfoot", "fancyhf", "tnotetext", "fntext", "cortext", "ead", "inst", "footnotemark",
    "IEEEauthorblockA", "orcidID", "IEEEoverridecommandlockouts", "icmlaffiliation",
    "icmlcorrespondingauthor", "icmlkeywords", "hyphenation", "urlstyle",
    "geometry", "settopmatter", "newcounter", "numberwithin", "tableofcontents", "listoffigures",
    "listoftables", "makeatletter", "makeatother", "raggedbottom", "sloppy", "color",
    "pagebreak", "linebreak", "enlargethispage", "DeclareGraphicsExtensions", "theoremstyle",
    "floatname",
}  # fmt: skip
_LITERAL = {
    "LaTeX": "LaTeX", "TeX": "TeX", "BibTeX": "BibTeX", "ldots": "...", "dots": "...",
    "textendash": "\u2013", "textemdash": "\u2014", "ss": "ß", "o": "ø", "O": "Ø", "ae": "æ",
    "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å", "l": "ł", "L": "Ł", "i": "i",
    "j": "j", "S": "§", "P": "¶", "copyright": "©", "textbackslash": "\\", "textasciitilde": "~",
    "textbar": "|", "textless": "<", "textgreater": ">", "textregistered": "®",
    "texttrademark": "™", "textdegree": "°", "newline": "", "par": "",
    "quad": " ", "qquad": " ", "space": " ", "enspace": " ", "thinspace": " ",
}  # fmt: skip
_ACCENTS = {
    "'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
    ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
    "r": "\u030a",
}  # fmt: skip
_ESCAPES = {"%": "%", "&": "&", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}", " ": " ",
            ",": " ", ";": " ", ":": " ", "!": "", "/": "", "-": "", "@": ""}  # fmt: skip
_MATH_ENVS = {
    "equation", "equation*", "align", "align*", "alignat", "alignat*", "gather", "gather*",
    "multline", "multline*", "eqnarray", "eqnarray*", "displaymath", "math", "flalign",
    "flalign*",
}  # fmt: skip
_VERBATIM_ENVS = {"verbatim", "verbatim*", "Verbatim", "lstlisting", "minted", "alltt", "BVerbatim"}
_SKIPPED_ENVS = {"comment", "tikzpicture", "pgfpicture", "filecontents", "filecontents*", "picture"}
# Arguments an environment takes after \begin{name} that are layout, not text.
_ENV_ARGS = {
    "tabular": 1, "tabular*": 2, "tabularx": 2, "tabulary": 2, "minipage": 1, "subfigure": 1,
    "multicols": 1, "wrapfigure": 2, "wraptable": 2, "array": 1, "longtable": 1,
    "thebibliography": 1, "list": 2, "subtable": 1,
}  # fmt: skip


_MAX_ARGUMENT = 10_000
_GROUP_TOKENS = {"{": re.compile(r"\\.|[{}]", re.DOTALL), "[": re.compile(r"\\.|[\[\]]", re.DOTALL)}
_MATH_TOKENS = re.compile(r"\\.|\$", re.DOTALL)


def _strip_tex_comments(text: str) -> list[tuple[str, bool]]:
    """Each source line without its comment, and whether the line held only a comment."""
    result: list[tuple[str, bool]] = []
    for line in _source_lines(text):
        stripped = _TEX_COMMENT.sub(r"\1", line)
        result.append((stripped, bool(line.strip()) and not stripped.strip()))
    return result


class _TexReader:
    """A small LaTeX-to-text pass that keeps every line where it was (so line spans stay exact)
    and records the structure it meets: sections, the abstract, the bibliography."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.events: list[tuple[int, str, Any]] = []  # (position, kind, payload)
        self.title = ""
        self.authors: list[str] = []
        self.dois: list[str] = []
        self.bibitems = 0
        self.counters = [0, 0, 0, 0]
        self.has_chapters = "\\chapter" in source
        self.appendix = False
        self.document_end = len(source)
        self.macros: dict[str, str] = {}  # user macros without parameters: name -> body
        self.depth = 0
        self.budget = [10_000]  # macro expansions left, shared with the readers of macro bodies
        self.nesting = 0

    def line_of(self, position: int) -> int:
        return bisect_right(self.starts, position)

    def _skip_space(self, i: int, end: int) -> int:
        """Spaces, and one line break when an argument follows it."""
        j = i
        while j < end and self.src[j] in " \t":
            j += 1
        if j < end and self.src[j] == "\n":
            k = j + 1
            while k < end and self.src[k] in " \t":
                k += 1
            if k < end and self.src[k] in "{[":
                return k
        return j

    def _group(self, i: int, end: int, opening: str = "{", closing: str = "}") -> int:
        """The end (exclusive) of the balanced group starting at ``i``, or -1."""
        depth = 0
        # An argument never runs this long; an unclosed brace must not cost a scan per use.
        end = min(end, i + _MAX_ARGUMENT)
        for token in _GROUP_TOKENS[opening].finditer(self.src, i, end):
            char = token.group()
            if char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
                if depth == 0:
                    return token.end()
        return -1

    def _args(self, i: int, end: int, limit: int = 99) -> tuple[list[tuple[int, int]], int]:
        """Optional arguments and up to ``limit`` braced ones from ``i``.

        Returns the (start, end) of each braced argument's contents and where parsing stopped.
        """
        braced: list[tuple[int, int]] = []
        while True:
            j = self._skip_space(i, end)
            if j < end and self.src[j] == "[" and (len(braced) < limit or limit == 0):
                close = self._group(j, end, "[", "]")
                if close < 0:
                    break
                i = close
                continue
            if j < end and self.src[j] == "{" and len(braced) < limit:
                close = self._group(j, end)
                if close < 0:
                    break
                braced.append((j + 1, close - 1))
                i = close
                continue
            break
        return braced, i

    def clean(self, i: int, end: int, *, record: bool = True, breaks: bool = False) -> str:
        """Text of src[i:end]; the output has exactly as many line breaks as the input, unless
        ``breaks`` (then \\\\ is a line break too, for reading author blocks)."""
        if self.nesting > 50:  # \footnote{\footnote{...}} nested beyond reason: left as it is
            return self.src[i:end]
        self.nesting += 1
        try:
            return self._clean(i, end, record, breaks)
        finally:
            self.nesting -= 1

    def _clean(self, i: int, end: int, record: bool, breaks: bool) -> str:
        out: list[str] = []
        src = self.src
        while i < end:
            char = src[i]
            if char == "\\":
                text, i = self._command(i, end, record, breaks)
                out.append(text)
            elif char == "$":
                close = self._math_end(i, end)
                out.append(src[i:close])
                i = close
            elif char in "{}":
                i += 1
            elif char == "~":
                out.append(" ")
                i += 1
            elif char == "&":
                out.append(" | ")
                i += 1
            elif src.startswith("``", i) or src.startswith("''", i):
                out.append('"')
                i += 2
            elif src.startswith("--", i):
                dashes = 3 if src.startswith("---", i) else 2
                out.append("\u2014" if dashes == 3 else "\u2013")
                i += dashes
            else:
                j = i + 1
                while j < end and src[j] not in "\\${}~&`'-":
                    j += 1
                out.append(src[i:j])
                i = j
        return "".join(out)

    def _math_end(self, i: int, end: int) -> int:
        delimiter = "$$" if self.src.startswith("$$", i) else "$"
        j = i + len(delimiter)
        # Math ends within its paragraph; a lone "$" (a price) must not cost a scan to the end.
        end = min(end, i + _MAX_ARGUMENT)
        paragraph_end = self.src.find("\n\n", j, end)
        end = paragraph_end if paragraph_end >= 0 else end
        for token in _MATH_TOKENS.finditer(self.src, j, end):
            if token.group() == "$" and self.src.startswith(delimiter, token.start()):
                return token.start() + len(delimiter)
        return i + len(delimiter)  # an unmatched dollar is kept as it is

    def _newlines(self, i: int, j: int, produced: str = "") -> str:
        """Line breaks of src[i:j] that ``produced`` does not already carry."""
        missing = self.src.count("\n", i, j) - produced.count("\n")
        return produced + "\n" * max(missing, 0)

    def _command(self, i: int, end: int, record: bool, breaks: bool) -> tuple[str, int]:
        src = self.src
        j = i + 1
        if j >= end:
            return "", end
        if not src[j].isalpha():
            symbol = src[j]
            if symbol == "\\":
                k = j + 1
                if k < end and src[k] == "*":
                    k += 1
                _, k = self._args(k, end, limit=0)
                return ("\n" if breaks else "") + self._newlines(i, k), k
            if symbol in "([":
                closing = "\\)" if symbol == "(" else "\\]"
                close = src.find(closing, j + 1, min(end, i + _MAX_ARGUMENT))
                if close < 0:  # never closed: a lone bracket, not the rest of the file as math
                    return symbol, j + 1
                return src[i : close + 2], close + 2
            if symbol in _ACCENTS:
                return self._accent(_ACCENTS[symbol], j + 1, end)
            return _ESCAPES.get(symbol, symbol), j + 1
        k = j
        while k < end and src[k].isalpha():
            k += 1
        name = src[j:k]
        if k < end and src[k] == "*":
            k += 1
        if name in ("begin", "end"):
            return self._environment(name, i, k, end, record)
        if name in _SECTION_LEVELS or name in ("paragraph", "subparagraph"):
            return self._section(name, i, k, end, record)
        if name == "appendix":
            self.appendix = True
            self.counters[0 if self.has_chapters else 1] = 0
            return "", k
        if name in ("title", "author", "abstract", "doi", "bibliography", "printbibliography"):
            return self._front(name, i, k, end, record)
        if name in _CITE:
            args, after = self._args(k, end)
            return self._newlines(i, after, "[cite]"), after
        if name in _REF:
            args, after = self._args(k, end, limit=1)
            return self._newlines(i, after, "[ref]"), after
        if name == "bibitem":
            self.bibitems += 1
            _, after = self._args(k, end, limit=1)
            return self._newlines(i, after), after
        if name in ("def", "newcommand", "renewcommand", "providecommand"):
            return self._define(name, i, k, end)
        if name in self.macros:
            return self._expand(self.macros[name]), k
        if name in _DROP:
            _, after = self._args(k, end)
            return self._newlines(i, after), after
        if name in ("textcolor", "colorbox"):
            args, after = self._args(k, end, limit=2)
            kept = self.clean(*args[-1], record=record, breaks=breaks) if len(args) == 2 else ""
            return self._newlines(i, after, kept), after
        if name == "href":
            args, after = self._args(k, end, limit=2)
            kept = self.clean(*args[-1], record=record, breaks=breaks) if args else ""
            return self._newlines(i, after, kept), after
        if name in ("url", "path", "nolinkurl"):
            args, after = self._args(k, end, limit=1)
            kept = src[args[0][0] : args[0][1]] if args else ""
            return self._newlines(i, after, kept), after
        if name == "footnote":
            args, after = self._args(k, end, limit=1)
            inner = self.clean(*args[0], record=record, breaks=breaks) if args else ""
            return self._newlines(i, after, f" ({inner.strip()})" if inner.strip() else ""), after
        if name == "verb" and k < end and src[k] != "\n":
            line_end = src.find("\n", k, end)
            close = src.find(src[k], k + 1, end if line_end < 0 else line_end)
            if close < 0:
                return "", k
            return src[k + 1 : close], close + 1
        if name in ("item",):
            label, after = self._optional_label(k, end)
            return (f"- {label} " if label else "- "), after
        if name in _ACCENTS and len(name) == 1:
            return self._accent(_ACCENTS[name], k, end)
        if name in _LITERAL:
            return _LITERAL[name], k
        # Any other command: drop its name, keep its arguments' text (\emph{x} -> x).
        return "", k

    def _define(self, name: str, i: int, k: int, end: int) -> tuple[str, int]:
        r"""\newcommand{\name}{body} or \def\name{body}: kept when it takes no arguments."""
        src = self.src
        j = self._skip_space(k, end)
        macro = re.compile(r"\{?\s*\\([A-Za-z@]+)\s*\}?").match(src, j)
        if macro is None:
            return "", k
        j = macro.end()
        takes_arguments = False
        if name == "def":
            brace = src.find("{", j, end)
            takes_arguments = brace < 0 or "#" in src[j:brace]
            j = brace if brace >= 0 else j
        else:
            while True:
                start = self._skip_space(j, end)
                if start >= end or src[start] != "[":
                    break
                takes_arguments = True
                j = self._group(start, end, "[", "]")
                if j < 0:
                    return "", k
        start = self._skip_space(j, end)
        close = self._group(start, end) if start < end and src[start] == "{" else -1
        if close < 0:
            return "", k
        if not takes_arguments and (name != "providecommand" or macro.group(1) not in self.macros):
            self.macros[macro.group(1)] = src[start + 1 : close - 1]
        return self._newlines(i, close), close

    def _expand(self, body: str) -> str:
        # A macro that expands to itself, or to many copies of itself, stops somewhere.
        self.budget[0] -= 1
        if self.depth >= 8 or self.budget[0] < 0:
            return ""
        inner = _TexReader(body)
        inner.macros = self.macros
        inner.budget = self.budget
        inner.depth = self.depth + 1
        return " ".join(inner.clean(0, len(body), record=False).split("\n"))

    def _optional_label(self, k: int, end: int) -> tuple[str, int]:
        j = self._skip_space(k, end)
        if j < end and self.src[j] == "[":
            close = self._group(j, end, "[", "]")
            if close > 0:
                return self.clean(j + 1, close - 1, record=False).strip(), close
        return "", k

    def _accent(self, mark: str, k: int, end: int) -> tuple[str, int]:
        src = self.src
        j = k
        while j < end and src[j] == " ":
            j += 1
        if j < end and src[j] == "{":
            close = self._group(j, end)
            if close > 0:
                inner = self.clean(j + 1, close - 1, record=False)
                return unicodedata.normalize("NFC", inner[:1] + mark + inner[1:]), close
        if j < end and src[j] == "\\":  # \'{\i}
            text, after = self._command(j, end, False, False)
            return unicodedata.normalize("NFC", text[:1] + mark + text[1:]), after
        if j < end:
            return unicodedata.normalize("NFC", src[j] + mark), j + 1
        return "", end

    def _environment(self, which: str, i: int, k: int, end: int, record: bool) -> tuple[str, int]:
        src = self.src
        j = self._skip_space(k, end)
        if j >= end or src[j] != "{":
            return "", k
        close = self._group(j, end)
        if close < 0:
            return "", k
        name = src[j + 1 : close - 1].strip()
        if which == "end":
            if record and name in ("abstract", "thebibliography"):
                self.events.append((i, f"{name}_end", None))
            if name == "document":
                self.document_end = i
            return self._newlines(i, close), close
        finish = src.find(f"\\end{{{name}}}", close, end)
        if name in _MATH_ENVS:
            stop = end if finish < 0 else finish + len(f"\\end{{{name}}}")
            return src[i:stop], stop
        if name in _VERBATIM_ENVS or name in _SKIPPED_ENVS:
            stop = end if finish < 0 else finish + len(f"\\end{{{name}}}")
            if name in _SKIPPED_ENVS:
                return self._newlines(i, stop), stop
            _, body_start = self._args(close, finish if finish >= 0 else end, limit=1)
            body = src[body_start : finish if finish >= 0 else end]
            return self._newlines(i, body_start) + body + self._newlines(
                body_start + len(body), stop
            ), stop
        if record and name in ("abstract", "thebibliography", "document"):
            self.events.append((i, f"{name}_begin", None))
        _, after = self._args(close, end, limit=_ENV_ARGS.get(name, 0))
        return self._newlines(i, after), after

    def _section(self, name: str, i: int, k: int, end: int, record: bool) -> tuple[str, int]:
        starred = self.src[k - 1] == "*"
        args, after = self._args(k, end, limit=1)
        if not args:
            return "", k
        title = " ".join(self.clean(*args[0], record=False).split())
        if name in ("paragraph", "subparagraph"):
            run_in = title if title[-1:] in ".:?!" else f"{title}."
            return self._newlines(i, after, run_in), after
        if name == "part":  # parts group chapters; they are not sections to cite
            return self._newlines(i, after, title), after
        level = _SECTION_LEVELS[name]
        written = title
        if level >= 0 and not starred:
            self.counters[level] += 1
            for deeper in range(level + 1, len(self.counters)):
                self.counters[deeper] = 0
            top = 0 if self.has_chapters else 1
            parts = [str(n) for n in self.counters[top : level + 1]]
            if parts and self.appendix:
                top_number = int(parts[0])
                parts[0] = chr(ord("A") + top_number - 1) if 0 < top_number <= 26 else parts[0]
            if parts and all(part != "0" for part in parts):
                written = f"{'.'.join(parts)} {title}"
        if record:
            depth = level + 1 if self.has_chapters else level
            self.events.append((i, "section", (written, depth, title)))
        return self._newlines(i, after, written), after

    def _front(self, name: str, i: int, k: int, end: int, record: bool) -> tuple[str, int]:
        if name == "printbibliography":
            _, after = self._args(k, end)
            if record:
                self.events.append((i, "bibliography", None))
            return self._newlines(i, after), after
        args, after = self._args(k, end, limit=1)
        if not args:
            return "", k
        if name == "abstract":  # \abstract{...}, as some classes write it
            if record:
                self.events.append((i, "abstract_begin", None))
                self.events.append((after, "abstract_end", None))
            inner = self.clean(*args[0], record=False)
            return self._newlines(i, after, inner), after
        if record:
            if name == "title":
                self.title = " ".join(self.clean(*args[0], record=False).split())
            elif name == "author":
                self.authors.append(self.src[args[0][0] : args[0][1]])
            elif name == "doi":
                self.dois.append(self.src[args[0][0] : args[0][1]])
            elif name == "bibliography":
                self.events.append((i, "bibliography", None))
        return self._newlines(i, after), after


def _tex_authors(reader: _TexReader) -> list[str]:
    names: list[str] = []
    for raw in reader.authors:
        for part in re.split(r"\\(?:and|AND|And)\b", raw):
            sub = _TexReader(part)
            sub.macros = reader.macros
            text = sub.clean(0, len(part), record=False, breaks=True)
            first = next((line for line in text.splitlines() if line.strip()), "")
            for name in _authors_from_lines([first]):
                if name not in names:
                    names.append(name)
    return names


def _read_tex(path: str, text: str) -> ParsedDocument:
    stripped = _strip_tex_comments(text)
    if not stripped:
        return ParsedDocument(kind="paper", chunks=[], meta={})
    source = "\n".join(line for line, _ in stripped)
    reader = _TexReader(source)
    cleaned = reader.clean(0, len(source)).split("\n")
    # The pass keeps every line break, so line n of the output is line n of the file.
    assert len(cleaned) == len(stripped), "the LaTeX pass must keep every line"

    begins = [pos for pos, kind, _ in reader.events if kind == "document_begin"]
    first_line = reader.line_of(begins[0]) if begins else 1
    last_line = reader.line_of(reader.document_end) if begins else len(cleaned)
    lines: list[_Line] = []
    for number in range(1, len(cleaned) + 1):
        raw_line, comment_only = stripped[number - 1]
        shown = re.sub(r"(?<=\S) {2,}", " ", cleaned[number - 1]).rstrip()
        blank = not raw_line.strip() and not comment_only
        void = not blank and not shown.strip()
        lines.append(_Line(shown, number=number, void=void))

    events: dict[int, list[tuple[str, Any]]] = {}
    for position, kind, payload in reader.events:
        events.setdefault(reader.line_of(position), []).append((kind, payload))

    front = _Section(title="", role="front", has_heading=False)
    sections: list[_Section] = [front]
    current: _Section = front
    overlay: _Section | None = None
    # \bibitem entries are counted by the pass; a \bibliography{file} alone cannot be counted.
    references_found = reader.bibitems or None
    for number in range(first_line, min(last_line, len(lines)) + 1):
        line = lines[number - 1]
        ends: list[str] = []
        for kind, payload in events.get(number, []):
            if kind == "section":
                written, level, bare = payload
                normal = _normal_title(bare)
                if normal in _REFERENCE_TITLES:
                    role = "references"
                elif normal == "abstract":
                    role = "abstract"
                else:
                    role = "body"
                current = _Section("Abstract" if role == "abstract" else written, role, level=level)
                sections.append(current)
                overlay = None
            elif kind == "abstract_begin":
                overlay = _Section("Abstract", "abstract", has_heading=False)
                sections.append(overlay)
            elif kind == "thebibliography_begin":
                overlay = _Section("References", "references", has_heading=False)
                sections.append(overlay)
            elif kind.endswith("_end"):
                ends.append(kind)
        (overlay or current).lines.append(line)
        if ends and overlay is not None:
            overlay = None
            # Text after the environment continues the section it interrupted.
            resumed = _Section(current.title, current.role, has_heading=False, level=current.level)
            current = resumed
            sections.append(resumed)
    # A thebibliography's entries are counted from \bibitem, not from its text.
    for section in sections:
        if section.role == "references" and not section.has_heading and reader.bibitems:
            section.lines = []
    _with_parents(sections)

    kept = "\n".join(line.text for s in sections if s.role != "references" for line in s.lines)
    meta = _meta(
        title=reader.title,
        authors=_tex_authors(reader),
        doi=_find_doi([*reader.dois, source[: begins[0]] if begins else "", kept]),
        orcids=_find_orcids([source]),
    )
    return _build(path, sections, meta, reflow=False, references_found=references_found)
