"""HTML read as lines: one per block element, a table row's cells joined on one line.

``_HtmlLines`` skips scripts, navigation and the like, gives headings their level, and hands
the lines to the line reader (line_parser.py); the page's ``<title>`` is the fallback title.
"""

from html.parser import HTMLParser

from ingestion.sources.regulation.line_parser import _LineParser
from ingestion.sources.regulation.markdown import _Line
from ingestion.sources.regulation.text_helpers import _pieces, _ws
from ingestion.sources.regulation.tree import _Doc

_HTML_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "nav", "head", "button", "select", "iframe"}
)
_HTML_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "aside",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "figure",
        "figcaption",
        "address",
        "hr",
        "center",
        "details",
        "summary",
        "body",
        "html",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    }
)
_HTML_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "wbr", "source"})


class _HtmlLines(HTMLParser):
    """HTML as lines: one per block element, a table row's cells joined on one line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[_Line] = []
        self.parts: list[str] = []
        self.level = 0
        self.title_hint = False
        self.skipping: list[str] = []
        self.rows = 0
        self.in_title = False
        self.page_title: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and "svg" not in self.skipping:
            self.in_title = True
            return
        if self.skipping == ["head"] and (tag == "body" or tag in _HTML_BLOCKS):
            self.skipping.pop()  # HTML may leave </head> out
        if tag in _HTML_SKIP or self.skipping:
            if tag in _HTML_SKIP and tag not in _HTML_VOID:
                self.skipping.append(tag)
            return
        if tag == "br":
            self._boundary()
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "tr":
            self._flush()
            self.rows += 1
        elif tag in _HTML_BLOCKS:
            self._boundary()
            if tag[0] == "h" and tag[1:].isdigit():
                self.level = int(tag[1:])
            classes = dict(attrs).get("class") or ""
            if "doc-ti" in classes:
                self.title_hint = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "tr":
            self._flush()
            self.rows = max(0, self.rows - 1)
        elif tag in _HTML_BLOCKS:
            self._boundary()
            if tag[0] == "h" and tag[1:].isdigit():
                self.level = 0

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.page_title.append(data)
        elif not self.skipping:
            self.parts.append(data)

    def _boundary(self) -> None:
        if self.rows:
            self.parts.append(" ")
        else:
            self._flush()

    def _flush(self) -> None:
        text = _ws("".join(self.parts))
        self.parts = []
        if text:
            for piece in _pieces(text):
                self.lines.append(_Line(piece, piece, self.level, title=self.title_hint))
        self.title_hint = False


def _read_html(text: str) -> _Doc:
    parser = _HtmlLines()
    parser.feed(text)
    parser.close()
    parser._flush()
    lines = parser.lines
    page_title = _ws("".join(parser.page_title))
    return _LineParser(lines, per_line=True, numbered=False).parse(page_title)
