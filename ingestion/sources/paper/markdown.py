"""Markdown papers: ATX headings as sections, a YAML header's title and authors, the abstract.

``_read_markdown`` takes ``#`` headings outside code fences as sections and a first level-1
heading that is not a known section name as the title, reads title, authors and DOI from a
YAML front-matter block when there is one (``_yaml_header``), and finds an abstract before the
first heading marked by a line such as "**Abstract.** We ..." (``_md_abstract_marker``).
"""

import re

from ingestion.sources.base import ParsedDocument
from ingestion.sources.paper.headings import (
    _KNOWN_SECTIONS,
    _NUMBERED,
    _REFERENCE_TITLES,
    _normal_title,
)
from ingestion.sources.paper.metadata import (
    _authors_from_field,
    _authors_from_lines,
    _find_doi,
    _find_orcids,
)
from ingestion.sources.paper.sections import (
    _build,
    _Line,
    _meta,
    _Section,
    _source_lines,
    _with_parents,
)

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_MD_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_MD_ABSTRACT = re.compile(
    r"^\s*(?P<open>\*\*|__|\*|_)?abstract\b(?:\*\*|__|\*|_)?(?P<sep>\s*[.:\u2014\u2013-])?"
    r"(?:\*\*|__|\*|_)?\s*(?P<rest>.*)$",
    re.IGNORECASE,
)


def _md_abstract_marker(line: str) -> bool:
    """A line starting an abstract ("**Abstract.** We ..."), not "Abstract interpretation"."""
    match = _MD_ABSTRACT.match(line)
    if not match:
        return False
    rest = match.group("rest")
    return not rest or bool(match.group("sep") or match.group("open")) or rest[0].isupper()


def _md_plain(text: str) -> str:
    """Markdown inline markup removed: links, emphasis, superscripts, HTML tags."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<sup>.*?</sup>|\^[^^\s]+\^", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\{#[^}]*\}", "", text)
    return " ".join(re.sub(r"[*_`]", "", text).split())


def _yaml_header(lines: list[str]) -> tuple[dict[str, str | list[str]], int]:
    """A leading YAML block's top-level keys (strings, folded strings and lists of strings or
    of names); returns them and the number of lines the block takes."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    end = next(
        (i for i, line in enumerate(lines[1:200], start=1) if line.strip() in ("---", "...")),
        None,
    )
    if end is None:
        return {}, 0
    values: dict[str, str | list[str]] = {}
    key = ""
    folded = False
    for line in lines[1:end]:
        pair = re.match(r"^([A-Za-z_][\w-]*):\s*(.*)$", line)
        if pair:
            key = pair.group(1).lower()
            value = pair.group(2).strip()
            folded = value in ("|", ">", "|-", ">-", "|+", ">+")
            if value.startswith("[") and value.endswith("]"):
                values[key] = [v.strip().strip("\"'") for v in value[1:-1].split(",") if v.strip()]
            else:
                values[key] = "" if folded else value.strip("\"'")
                if not value:
                    values[key] = []
            continue
        current = values.get(key)
        item = re.match(r"^\s*-\s+(?:name:\s*)?(.*)$", line)
        if item and isinstance(current, list):
            current.append(item.group(1).strip().strip("\"'"))
        elif folded and isinstance(current, str) and line.strip():
            values[key] = f"{current} {line.strip()}".strip()
    return values, end + 1


def _read_markdown(path: str, text: str) -> ParsedDocument:
    raw = _source_lines(text)
    lines = [_Line(line.rstrip(), number=i) for i, line in enumerate(raw, start=1)]
    header, start = _yaml_header(raw)

    headings: list[tuple[int, int, str]] = []  # (index, level, text as written)
    fence: str | None = None
    for i in range(start, len(raw)):
        fence_match = _MD_FENCE.match(raw[i])
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
            continue
        heading = _MD_HEADING.match(raw[i]) if fence is None else None
        if heading:
            headings.append((i, len(heading.group(1)), _md_plain(heading.group(2))))

    yaml_title = header.get("title")
    title = yaml_title if isinstance(yaml_title, str) else ""
    title_index = -1
    if headings:
        index, level, first = headings[0]
        plain = _normal_title(first)
        numbered = _NUMBERED.match(first) is not None
        known = plain in _KNOWN_SECTIONS | _REFERENCE_TITLES or plain == "abstract"
        only_front_before = not any(_md_plain(line) for line in raw[start:index])
        adopted = not title or _normal_title(_md_plain(title)) == plain
        if level == 1 and not numbered and not known and only_front_before and adopted:
            title, title_index = first, index
            headings = headings[1:]

    numbered_depths = [
        len(m.group("num").split(".")) for _, _, t in headings if (m := _NUMBERED.match(t))
    ]
    min_level = min((level for _, level, _ in headings), default=1)
    sections: list[_Section] = []
    front = _Section(title="", role="front", has_heading=False)
    sections.append(front)
    first_heading = headings[0][0] if headings else len(raw)
    abstract_at = next(
        (
            i
            for i in range(max(start, title_index + 1), first_heading)
            if _md_abstract_marker(raw[i])
        ),
        None,
    )
    for i in range(start, first_heading):
        if i == title_index:
            continue
        if abstract_at is not None and i == abstract_at:
            sections.append(_Section("Abstract", "abstract", has_heading=False))
        sections[-1].lines.append(lines[i])
    references_level = 0
    bounds = [index for index, _, _ in headings[1:]] + [len(raw)] if headings else []
    for (index, level, heading_text), end in zip(headings, bounds, strict=True):
        normal = _normal_title(heading_text)
        number = _NUMBERED.match(heading_text)
        if number and numbered_depths:
            depth = len(number.group("num").split("."))
        else:
            depth = level - min_level + 1
        if references_level and level > references_level:
            role = "references"
        elif normal in _REFERENCE_TITLES or (
            number and _normal_title(number.group("title")) in _REFERENCE_TITLES
        ):
            role, references_level = "references", level
        elif normal == "abstract":
            role, references_level = "abstract", 0
        else:
            role, references_level = "body", 0
        if role == "references" and sections[-1].role == "references" and level > references_level:
            sections[-1].lines.extend(lines[index:end])
            continue
        section_title = "Abstract" if role == "abstract" else heading_text
        sections.append(_Section(section_title, role, lines[index:end], level=depth))
    _with_parents(sections)

    front_texts = [_md_plain(line.text) for line in front.lines]
    kept = [s for s in sections if s.role != "references"]
    authors = header.get("authors") or header.get("author") or []
    author_names = (
        _authors_from_field(authors)
        if isinstance(authors, str)
        else [name for name in authors if isinstance(name, str)]
    )
    yaml_doi = str(header.get("doi") or "")
    yaml_abstract = header.get("abstract")
    meta = _meta(
        title=_md_plain(title),
        authors=author_names or _authors_from_lines(front_texts[:30]),
        doi=_find_doi(
            [
                yaml_doi,
                "\n".join(front_texts),
                "\n".join(line.text for s in kept for line in s.lines),
            ]
        ),
        orcids=_find_orcids([line.text for line in lines]),
    )
    if yaml_abstract:
        meta["abstract"] = (
            yaml_abstract if isinstance(yaml_abstract, str) else " ".join(yaml_abstract)
        )
    return _build(path, sections, meta, reflow=False)
