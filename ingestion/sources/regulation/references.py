"""Cross references: the provisions a passage cites, normalised ("Art. 9(2)(a)", "§ 12(b)").

``_references`` reads references to articles, paragraphs and points (a bare "paragraph 2" or
"point (c)" resolved against the article the passage is in), US-style sections and their
paragraphs, and a rulebook's rules, expanding ranges and lists ("Articles 12 to 14", "points
(a) and (c)"). A reference to a named act carries its name ("Art. 5 TFEU"); one to an act named
earlier ("of that Directive") is left out.
"""

import re
from collections.abc import Callable

from ingestion.sources.regulation.text_helpers import _ws
from ingestion.sources.regulation.tree import _Unit

_PT = r"\((?:\d{1,3}[a-z]?|[a-z]{1,5})\)"
_SEP = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|to|through|and/or)\s+)"
_PTS = rf"{_PT}(?:{_SEP}{_PT})*"
_ANUM = r"\d{1,3}[a-z]?(?:\((?:\d{1,3}[a-z]?|[a-z]{1,5})\))*"
_SUBPARAGRAPH = r"(?:the\s+(?:first|second|third|fourth|fifth|last)\s+subparagraph\s+of\s+)?"
_ACT = (
    r"(?:(?:Council|Commission)\s+)?(?:(?:Implementing|Delegated)\s+)?"
    r"(?:Directive|Regulation|Decision)\s+(?:\((?:EU|EC|EEC|Euratom)\)\s+)?(?:No\s+)?"
    r"\d+/\d+(?:/(?:EU|EC|EEC|Euratom|JHA))?"
)
_AFTER = re.compile(
    r"(?:\s+of\s+this\s+(?:Regulation|Directive|Decision|Act)"
    rf"|\s+(?:of\s+)?(?:the\s+)?(?P<act>{_ACT}|TFEU|TEU"
    r"|Charter(?:\s+of\s+Fundamental\s+Rights(?:\s+of\s+the\s+European\s+Union)?)?"
    r"|Treaty\s+on\s+(?:the\s+Functioning\s+of\s+the\s+)?European\s+Union)"
    r"|(?P<other>\s+of\s+(?:that|the\s+said|the\s+same)\s+\w+|\s+of\s+(?:Directive|Regulation|Decision)\b))?"
)
_REF_POINTS_OF_ARTICLE = re.compile(
    rf"\b[Pp]oints?\s+(?P<pts>{_PTS})\s+of\s+{_SUBPARAGRAPH}"
    rf"(?:paragraph\s+(?P<par>\d{{1,3}}[a-z]?)\s+of\s+)?Article\s+(?P<art>{_ANUM})"
)
_REF_POINTS_OF_PARAGRAPH = re.compile(
    rf"\b[Pp]oints?\s+(?P<pts>{_PTS})\s+of\s+{_SUBPARAGRAPH}paragraph\s+(?P<par>\d{{1,3}}[a-z]?)"
)
_REF_PARAGRAPHS_OF_ARTICLE = re.compile(
    rf"\b[Pp]aragraphs?\s+(?P<pars>\d{{1,3}}[a-z]?(?:{_SEP}\d{{1,3}}[a-z]?)*)\s+of\s+"
    rf"Article\s+(?P<art>\d{{1,3}}[a-z]?)"
)
_REF_ARTICLES = re.compile(
    rf"\bArt(?:icles?|s?\.)\s+(?P<list>{_ANUM}(?:{_SEP}(?:{_ANUM}|(?:{_PT})+))*)(?![\w/])"
)
_REF_PARAGRAPHS = re.compile(
    rf"\b[Pp]aragraphs?\s+(?P<pars>\d{{1,3}}[a-z]?(?:{_SEP}\d{{1,3}}[a-z]?)*)\b(?!\()"
)
_REF_POINTS = re.compile(rf"\b[Pp]oints?\s+(?P<pts>{_PTS})")
_US_NUM = r"\d+(?:\.\d+)*[a-z]?(?:\([0-9A-Za-z]{1,5}\))*"
_REF_SECTIONS = re.compile(rf"§§?\s*(?P<list>{_US_NUM}(?:{_SEP}{_US_NUM})*)")
# Rulebooks cite "Rule 4.5.1(3)(b)"; exported texts put a left-to-right mark before numbers.
_RULE_CITED = r"(?:[A-Z]{1,3})?\d{1,3}[A-Z]?(?:\.\d{1,3}[A-Z]?){2,}(?:\([0-9A-Za-z]{1,5}\))*"
_RULE_REF = rf"[\u200e\u200f]?{_RULE_CITED}"
_REF_RULES = re.compile(rf"\bRules?[\s\u200e\u200f]+(?P<list>{_RULE_REF}(?:{_SEP}{_RULE_REF})*)")
_REF_US_PARAGRAPHS = re.compile(
    r"\b[Pp]aragraphs?\s+(?P<list>(?:\([0-9A-Za-z]{1,5}\))+"
    rf"(?:{_SEP}(?:\([0-9A-Za-z]{{1,5}}\))+)*)(?:\s+of\s+this\s+section)?"
)


def _range(first: str, last: str) -> list[str]:
    """The labels after ``first`` up to ``last``: "15 to 18", "(h) to (j)"."""
    if first.isdigit() and last.isdigit() and 0 < int(last) - int(first) <= 30:
        return [str(n) for n in range(int(first) + 1, int(last) + 1)]
    if len(first) == len(last) == 1 and first.isalpha() and 0 < ord(last) - ord(first) <= 26:
        return [chr(c) for c in range(ord(first) + 1, ord(last) + 1)]
    return [last]


def _expand(spec: str, item: str) -> list[str]:
    """The labels of a list such as "(a), (b) and (d)" or "1 to 3"."""
    values: list[str] = []
    ranged = False
    for match in re.finditer(rf"(?P<range>\b(?:to|through)\b)|{item}", spec):
        if match["range"]:
            ranged = True
            continue
        value = match["v"]
        values.extend(_range(values[-1], value) if ranged and values else [value])
        ranged = False
    return values


def _article_items(spec: str) -> list[str]:
    """ "6(1) and (4)" -> ["6(1)", "6(4)"]; "15 to 17" -> ["15", "16", "17"]."""
    items: list[str] = []
    ranged = False
    pattern = (
        r"(?P<range>\bto\b)|(?P<num>\d{1,3}[a-z]?)(?P<sub>(?:\([0-9a-z]{1,5}\))*)"
        r"|(?P<bare>(?:\([0-9a-z]{1,5}\))+)"
    )
    for match in re.finditer(pattern, spec):
        if match["range"]:
            ranged = True
            continue
        if match["num"]:
            if ranged and items and items[-1].isdigit() and match["num"].isdigit():
                items.extend(_range(items[-1], match["num"]))
                if match["sub"]:
                    items[-1] += match["sub"]
            else:
                items.append(match["num"] + match["sub"])
        elif items:
            base = re.sub(r"\([0-9a-z]{1,5}\)$", "", items[-1])
            items.append(base + match["bare"])
        ranged = False
    return items


def _act_name(act: str) -> str:
    if act.startswith("Charter"):
        return "Charter"
    if act.startswith("Treaty on the Functioning"):
        return "TFEU"
    if act.startswith("Treaty on European Union"):
        return "TEU"
    return _ws(act)


def _references(text: str, unit: _Unit | None, labels: tuple[str, ...]) -> list[str]:
    """Citations a passage refers to, normalised ("Art. 9(2)(a)"), in the order they appear."""
    found: list[tuple[int, str]] = []
    masked = text
    eu = unit is None or unit.prefix == "Art."
    paragraph = labels[0] if labels and labels[0][:1].isdigit() else ""

    def take(pattern: re.Pattern[str], refs: Callable[[re.Match[str]], list[str]]) -> None:
        nonlocal masked
        spans: list[tuple[int, int]] = []
        for match in pattern.finditer(masked):
            after = _AFTER.match(masked, match.end())
            end = after.end() if after else match.end()
            spans.append((match.start(), end))
            if after and after["other"]:
                continue  # an article of some other act, named earlier
            act = f" {_act_name(after['act'])}" if after and after["act"] else ""
            for ref in refs(match):
                found.append((match.start(), ref + act))
        if spans:
            pieces, last = [], 0
            for start, end in spans:
                start = max(start, last)
                pieces += [masked[last:start], " " * (end - start)]
                last = max(end, last)
            masked = "".join([*pieces, masked[last:]])

    point = r"\((?P<v>[0-9a-z]{1,5})\)"
    number = r"(?P<v>\d{1,3}[a-z]?)"
    if eu:
        take(
            _REF_POINTS_OF_ARTICLE,
            lambda m: [
                f"Art. {m['art']}" + (f"({m['par']})" if m["par"] else "") + f"({p})"
                for p in _expand(m["pts"], point)
            ],
        )
        take(
            _REF_PARAGRAPHS_OF_ARTICLE,
            lambda m: [f"Art. {m['art']}({p})" for p in _expand(m["pars"], number)],
        )
        take(_REF_ARTICLES, lambda m: [f"Art. {item}" for item in _article_items(m["list"])])
    if unit is not None and unit.prefix == "Art.":
        article = unit
        base = (paragraph,) if paragraph else ()
        take(
            _REF_POINTS_OF_PARAGRAPH,
            lambda m: [article.cite((m["par"], p)) for p in _expand(m["pts"], point)],
        )
        take(_REF_PARAGRAPHS, lambda m: [article.cite((p,)) for p in _expand(m["pars"], number)])
        take(_REF_POINTS, lambda m: [article.cite((*base, p)) for p in _expand(m["pts"], point)])
    take(_REF_SECTIONS, lambda m: [f"§ {n}" for n in re.findall(_US_NUM, m["list"])])
    if unit is not None and not unit.prefix:
        take(_REF_RULES, lambda m: re.findall(_RULE_CITED, m["list"]))
    if unit is not None and unit.prefix == "§":
        section = unit.cite()
        take(
            _REF_US_PARAGRAPHS,
            lambda m: [
                section + path for path in re.findall(r"(?:\([0-9A-Za-z]{1,5}\))+", m["list"])
            ],
        )
    found.sort(key=lambda pair: pair[0])
    return list(dict.fromkeys(ref for _, ref in found))
