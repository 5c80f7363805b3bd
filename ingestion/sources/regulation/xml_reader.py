"""XML read by its elements: EUR-Lex Formex, USLM, Akoma Ntoso and article-shaped XML.

``_XmlReader`` finds the dialect, the elements that are units (articles, sections) and walks
the element tree: divisions above units, units into the paragraph tree (tree.py), with their
numbers, headings and the text of inline elements flattened; notes, tables of contents and
other apparatus are skipped. ``_read_xml`` parses with defusedxml and rejects what it cannot
read.
"""

import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from ingestion.errors import FileRejected
from ingestion.sources.regulation.text_helpers import _pieces, _ws
from ingestion.sources.regulation.tree import _Doc, _Loose, _Node, _Unit

_SKIP = frozenset(
    {
        "note",
        "notes",
        "authorialnote",
        "footnote",
        "meta",
        "bib.instance",
        "toc",
        "sourcecredit",
        "comment",
        "remark",
        "proprietary",
        "lifecycle",
        "analysis",
        "identification",
    }
)
_NUM_TAGS = frozenset({"num", "no.parag", "no.p", "no", "nr", "number", "label"})
_UNIT_NUM_TAGS = _NUM_TAGS | {"ti.art"}
_UNIT_HEADING_TAGS = frozenset({"heading", "sti.art", "caption", "title", "subtitle", "head"})
_DIVISION_HEADING_TAGS = frozenset(
    {"num", "heading", "title", "ti", "sti", "subheading", "caption", "label", "head", "subtitle"}
)
_INLINE = frozenset(
    {
        "quot.start",
        "quot.end",
        "hi",
        "ft",
        "date",
        "ref",
        "ref.doc",
        "ref.doc.oj",
        "term",
        "def",
        "i",
        "b",
        "u",
        "em",
        "strong",
        "sup",
        "sub",
        "span",
        "a",
        "abbr",
        "inline",
        "marker",
        "noteref",
        "docnumber",
        "docdate",
        "doctype",
        "shorttitle",
        "entity",
        "person",
        "organization",
        "location",
        "mref",
        "rref",
        "br",
        "eol",
    }
)
_BLOCKISH = frozenset(
    {
        "p",
        "alinea",
        "txt",
        "content",
        "chapeau",
        "continuation",
        "intro",
        "wrapup",
        "list",
        "item",
        "np",
        "parag",
        "paragraph",
        "point",
        "subparagraph",
        "subpoint",
        "clause",
        "subclause",
        "indent",
        "blocklist",
        "listintroduction",
        "listwrapup",
        "tbl",
        "table",
        "row",
        "tr",
        "td",
        "li",
        "ul",
        "ol",
        "div",
        "consid",
        "recital",
        "recitals",
        "gr.consid",
        "gr.visa",
        "visa",
        "preamble.init",
        "preamble.final",
        "gr.seq",
        "text",
        "para",
        "subsection",
        "heading",
        "title",
        "ti",
        "sti",
        "doctitle",
        "longtitle",
        "formula",
    }
)
_PARAGRAPHISH = frozenset(
    {"paragraph", "para", "parag", "point", "item", "subparagraph", "subpoint", "clause"}
)
_LABEL_ATTRS = ("num", "number", "n", "nr", "no", "label")
_CONTAINERS = frozenset(
    {
        "act",
        "enacting.terms",
        "body",
        "main",
        "mainbody",
        "akomantoso",
        "uscdoc",
        "lawdoc",
        "doc",
        "document",
        "regulation",
        "law",
        "bill",
        "statute",
    }
)
_DIVISION_NAMES = frozenset(
    {"part", "title", "chapter", "section", "subsection", "subpart", "subchapter", "subtitle"}
)
_LOOSE_NAMES = {
    "preamble": "Preamble",
    "preface": "Preamble",
    "annex": "Annex",
    "attachment": "Annex",
    "appendix": "Appendix",
    "schedule": "Schedule",
    "final": "Final provisions",
    "conclusions": "Final provisions",
}
_UNIT_TAG_GROUPS = (
    frozenset({"article", "art"}),
    frozenset({"section", "sec"}),
    frozenset({"rule"}),
)
_KEYWORD = re.compile(
    r"^(PART|TITLE|CHAPTER|SECTION|SUB-SECTION|SUBSECTION|SUBPART|SUBCHAPTER|SUBTITLE|BOOK"
    r"|ANNEX|APPENDIX|SCHEDULE)\b",
    re.IGNORECASE,
)


def _local(element: Element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _children(element: Element) -> list[Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _quote(element: Element, default: str) -> str:
    code = element.get("CODE") or element.get("code") or ""
    try:
        return chr(int(code, 16))
    except ValueError:
        return default


def _flat(element: Element | None) -> str:
    """All the text of an element on one line (Formex quotation marks restored)."""
    if element is None:
        return ""
    pieces: list[str] = []

    def visit(node: Element) -> None:
        name = _local(node)
        if name in _SKIP:
            return
        if name == "quot.start":
            pieces.append(_quote(node, "\u2018"))
            return
        if name == "quot.end":
            pieces.append(_quote(node, "\u2019"))
            return
        pieces.append(node.text or "")
        for child in node:
            gap = "" if _local(child) in _INLINE else " "
            pieces.append(gap)
            visit(child)
            pieces.append(gap)
            pieces.append(child.tail or "")

    visit(element)
    return _ws("".join(pieces))


def _has_text(element: Element) -> bool:
    return bool((element.text or "").strip()) or any((c.tail or "").strip() for c in element)


def _clean_label(raw: str) -> str:
    match = re.fullmatch(
        r"\s*[\[(]?\s*([0-9]+[A-Za-z]{0,3}|[A-Za-z]{1,6})\s*[.)\]]?\s*[.:\u2014\u2013\-]*\s*", raw
    )
    return match[1] if match else ""


def _number_in(text: str) -> str:
    match = re.search(r"\d+[A-Za-z]{0,3}(?:[.\-]\d+[A-Za-z]{0,3})*", text)
    return match[0] if match else ""


def _division_label(name: str, text: str) -> str:
    """ "CHAPTER III Rights of the data subject" -> "Chapter III Rights of the data subject"."""
    text = _ws(text)
    keyword = _KEYWORD.match(text)
    if keyword:
        text = keyword[1].capitalize() + text[keyword.end() :]
    elif name in _DIVISION_NAMES:
        text = f"{name.capitalize()} {text}"
    return re.sub(r"^(\S+ [\w.\-]+?)[.:]?\s*[\u2014\u2013:-]+\s*", r"\1 ", text).strip()


class _XmlReader:
    """Walks the element tree: divisions above units, units into the paragraph tree."""

    def __init__(self, root: Element) -> None:
        self.root = root
        self.doc = _Doc()
        names = {_local(e) for e in root.iter()}
        self.unit_tags = next((g & names for g in _UNIT_TAG_GROUPS if g & names), frozenset())
        self.dialect = self._dialect(names)
        self.with_units: set[int] = set()
        self.texty: dict[int, bool] = {}  # element id -> has text of its own (memoised)
        self._mark_units(root)
        self.title_element = self._title_element()
        self.seen_unit = False

    def _dialect(self, names: set[str]) -> str:
        tag = self.root.tag if isinstance(self.root.tag, str) else ""
        namespace = tag[1:].split("}")[0].lower() if tag.startswith("{") else ""
        name = _local(self.root)
        if "uslm" in namespace or name in ("uscdoc", "lawdoc"):
            return "uslm"
        if "akn" in namespace or "akomantoso" in namespace or name == "akomantoso":
            return "akoma-ntoso"
        if "enacting.terms" in names or "ti.art" in names:
            return "formex"
        return "xml"

    def _mark_units(self, element: Element) -> bool:
        found = False
        for child in _children(element):
            if _local(child) in self.unit_tags:
                found = True
            if self._mark_units(child):
                found = True
        if found:
            self.with_units.add(id(element))
        return found

    def _title_element(self) -> Element | None:
        for element in self.root.iter():
            if _local(element) in ("doctitle", "longtitle"):
                return element
        for element in self.root.iter():
            if _local(element) == "meta":
                for inner in element.iter():
                    if _local(inner) == "title":
                        return inner
        for child in _children(self.root):
            if _local(child) in ("title", "heading", "name") and id(child) not in self.with_units:
                return child
        return None

    def read(self) -> _Doc:
        self._outer(self.root, (), "")
        self.doc.title = _flat(self.title_element)
        return self.doc

    def _default_section(self, parents: tuple[str, ...]) -> str:
        if parents:
            return " > ".join(parents)
        if not self.unit_tags:
            return ""
        return "Final provisions" if self.seen_unit else "Preamble"

    def _outer(self, element: Element, parents: tuple[str, ...], section: str) -> None:
        name = _local(element)
        if name in _SKIP or element is self.title_element:
            return
        if name in self.unit_tags:
            self.doc.parts.append(self._unit(element, parents))
            self.seen_unit = True
            return
        children = _children(element)
        if id(element) in self.with_units:
            division = element is not self.root and name not in _CONTAINERS
            heads = [
                c
                for c in children
                if division and _local(c) in _DIVISION_HEADING_TAGS and id(c) not in self.with_units
            ]
            if heads:
                text = " ".join(_flat(h) for h in heads)
                parents = (*parents, _division_label(name, text))
            for child in children:
                if not any(child is h for h in heads):
                    self._outer(child, parents, section)
            return
        if name in ("consid", "recital"):
            # Formex numbers a recital inside its NP: CONSID/NP/NO.P "(1)".
            label = next((found for e in element.iter() if (found := self._label(e))), None)
            recital = f"Recital {label[1]}" if label else section or "Preamble"
            self._loose(element, recital)
            return
        if name in _LOOSE_NAMES:
            heads = [c for c in children if _local(c) in _DIVISION_HEADING_TAGS]
            text = " ".join(_flat(h) for h in heads)
            section = _division_label(name, text) if text else _LOOSE_NAMES[name]
            for child in children:
                if not any(child is h for h in heads):
                    self._outer(child, parents, section)
            return
        if _has_text(element) or not children or self._label(element) is not None:
            self._loose(element, section or self._default_section(parents))
            return
        for child in children:
            self._outer(child, parents, section)

    def _loose(self, element: Element, section: str) -> None:
        start = len(self.doc.lines)
        self._walk(element, _Node())
        for index in range(start, len(self.doc.lines)):
            self.doc.parts.append(_Loose(section, (index, index + 1)))

    def _unit(self, element: Element, parents: tuple[str, ...]) -> _Unit:
        children = _children(element)
        num = next((c for c in children if _local(c) in _UNIT_NUM_TAGS), None)
        head = next((c for c in children if _local(c) in _UNIT_HEADING_TAGS and c is not num), None)
        num_text = _flat(num)
        number = (num.get("value") if num is not None else None) or _number_in(num_text)
        if not number:
            for attr in (*_LABEL_ATTRS, "identifier", "IDENTIFIER", "id", "eId"):
                number = _number_in(element.get(attr) or "").lstrip("0")
                if number:
                    break
        name = _local(element)
        if name in ("article", "art"):
            prefix = "Art."
        elif name == "rule":
            prefix = "Rule"
        else:
            prefix = "§" if "§" in num_text or self.dialect == "uslm" else "Section"
        unit = _Unit(prefix, number or "?", _flat(head), parents)
        skip = {id(num), id(head)} - {id(None)}
        self._mixed(element, unit.root, skip)
        return unit

    def _label(self, element: Element) -> tuple[Element | None, str, str] | None:
        """(number element, label, number as printed) of a numbered paragraph or point."""
        name = _local(element)
        if name in self.unit_tags:
            return None
        for child in _children(element):
            if _local(child) in _NUM_TAGS:
                printed = _flat(child)
                value = _clean_label(child.get("value") or printed)
                if value:
                    return child, value, printed or f"({value})"
        if name in _PARAGRAPHISH:
            for attr in _LABEL_ATTRS:
                value = _clean_label(element.get(attr) or "")
                if value:
                    numbered = value.isdigit() and name in ("paragraph", "para", "parag")
                    return None, value, f"{value}." if numbered else f"({value})"
        return None

    def _walk(self, element: Element, node: _Node) -> None:
        if _local(element) in _SKIP:
            return
        label = self._label(element)
        if label is None:
            self._mixed(element, node, set())
            return
        num, value, printed = label
        heading = next((c for c in _children(element) if _local(c) == "heading"), None)
        child = _Node(value, prefix=_ws(f"{printed} {_flat(heading)}"))
        self._flush_prefix(node)
        node.items.append(child)
        self._mixed(element, child, {id(num), id(heading)} - {id(None)})
        self._flush_prefix(child)

    def _mixed(self, element: Element, node: _Node, skip: set[int]) -> None:
        """Text and inline elements form runs; structural children are walked in between."""
        buffer = [element.text or ""]
        for child in element:
            if not isinstance(child.tag, str) or id(child) in skip or _local(child) in _SKIP:
                buffer.append(child.tail or "")
            elif self._inline(child, element):
                buffer.append(_flat(child))
                buffer.append(child.tail or "")
            else:
                self._emit(node, "".join(buffer))
                buffer = [child.tail or ""]
                self._walk(child, node)
        self._emit(node, "".join(buffer))

    def _inline(self, child: Element, parent: Element) -> bool:
        name = _local(child)
        if name in _INLINE:
            return True
        if name in _BLOCKISH or name in self.unit_tags or self._label(child) is not None:
            return False
        if any(not self._inline(grandchild, child) for grandchild in _children(child)):
            return False
        if id(parent) not in self.texty:
            self.texty[id(parent)] = _has_text(parent)
        return self.texty[id(parent)]

    def _emit(self, node: _Node, text: str) -> None:
        text = _ws(text)
        if not text:
            return
        if node.prefix:
            text, node.prefix = f"{node.prefix} {text}", ""
        for piece in _pieces(text):
            self.doc.lines.append(piece)
            node.items.append((len(self.doc.lines) - 1, len(self.doc.lines)))

    def _flush_prefix(self, node: _Node) -> None:
        if node.prefix:
            self.doc.lines.append(node.prefix)
            node.items.append((len(self.doc.lines) - 1, len(self.doc.lines)))
            node.prefix = ""


def _read_xml(data: bytes) -> tuple[_Doc, str]:
    try:
        root: Element = SafeElementTree.fromstring(data)
    except DefusedXmlException as exc:
        raise FileRejected(
            f"unsafe XML refused ({type(exc).__name__}): entity declarations and external "
            "references are not read"
        ) from exc
    except ParseError as exc:
        raise FileRejected(f"malformed XML: {exc}") from exc
    try:
        reader = _XmlReader(root)
        return reader.read(), reader.dialect
    except RecursionError as exc:
        raise FileRejected("XML nested too deeply to read") from exc
