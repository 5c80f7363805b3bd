"""Bibliographic metadata found in a paper's text: DOIs, ORCID iDs, arXiv ids and author names.

``orcid_valid`` checks an ORCID iD's ISO 7064 check digit (only verified iDs are kept);
``_find_doi`` and ``_find_orcids`` search the title block before the body; author names are read
from the lines under the title (``_authors_from_lines``), dropping emails, URLs, affiliation
markers and words that are not names, or from a metadata field (``_authors_from_field``).
"""

import re
from collections.abc import Iterable

_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>{}\\|]+)", re.IGNORECASE)
_ORCID = re.compile(r"(?<![\d-])(\d{4}-\d{4}-\d{4}-\d{3}[\dXx])(?![\d-])")
_ARXIV = re.compile(r"\barXiv:\s?\d{4}\.\d{4,5}(?:v\d+)?\b|\barxiv\.org/abs/\d{4}\.\d{4,5}", re.I)


def orcid_valid(orcid: str) -> bool:
    """True when the 16-character ORCID iD passes its ISO 7064 MOD 11-2 check digit."""
    digits = orcid.replace("-", "").upper()
    if len(digits) != 16 or not digits[:15].isdigit():
        return False
    total = 0
    for char in digits[:15]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[15] == ("X" if check == 10 else str(check))


def _find_orcids(texts: Iterable[str]) -> list[str]:
    found: list[str] = []
    for text in texts:
        for match in _ORCID.finditer(text):
            orcid = match.group(1).upper()
            if orcid_valid(orcid) and orcid not in found:
                found.append(orcid)
    return found


def _clean_doi(raw: str) -> str:
    doi = raw.rstrip(".,;:")
    # A closing bracket belongs to the DOI only when the DOI opened it: "10.1002/(SICI)...".
    for opening, closing in ("()", "[]"):
        while doi.endswith(closing) and doi.count(closing) > doi.count(opening):
            doi = doi[:-1].rstrip(".,;:")
    return doi.lower()


def _find_doi(texts: Iterable[str]) -> str:
    for text in texts:
        match = _DOI.search(text)
        if match:
            return _clean_doi(match.group(1))
    return ""


_PARTICLES = {
    "van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "dos", "das", "le",
    "la", "bin", "ibn", "al", "el", "ter", "ten", "y", "zu", "st.",
}  # fmt: skip
_NOT_NAME = {
    "university", "universität", "université", "universidad", "institute", "institut",
    "department", "dept", "laboratory", "laboratories", "lab", "school", "college", "faculty",
    "center", "centre", "hospital", "inc", "ltd", "gmbh", "corporation", "corp", "company",
    "group", "research", "foundation", "academy", "society", "ministry", "council", "email",
    "e-mail", "orcid", "doi", "abstract", "keywords", "preprint", "journal", "proceedings",
    "conference", "vol", "received", "accepted", "published", "arxiv", "et", "al", "and", "the",
    "of", "for", "in", "on", "with", "to", "a", "an", "is", "are", "we", "our", "by", "street",
    "road", "avenue", "campus", "division", "program", "programme", "unit", "usa", "uk",
}  # fmt: skip
_NAME_WORD = re.compile(r"^(?:[^\W\d_][\w'\u2019\-]*\.?|[^\W\d_]\.(?:-?[^\W\d_]\.)*)$")
_EMAIL = re.compile(r"\S+@\S+")
_URL = re.compile(r"https?://\S+|www\.\S+")
_MARKERS = re.compile(r"[\d*†‡§¶⁰¹²³⁴⁵⁶⁷⁸⁹⁺#]+")


def _name_like(text: str) -> bool:
    words = text.split()
    if not 2 <= len(words) <= 5:
        return False
    for word in words:
        lower = word.lower()
        if lower.strip(".,") in _NOT_NAME:
            return False
        if lower in _PARTICLES:
            continue
        if not _NAME_WORD.match(word) or not word[0].isupper():
            return False
    return True


def _names_in_line(line: str) -> tuple[list[str], int]:
    """The names in one line of an author block, and how many comma-separated parts it had."""
    text = _ORCID.sub(" ", line)
    text = _EMAIL.sub(" ", _URL.sub(" ", text))
    text = re.sub(r"\b(?:orcid(?: id| ids| ids?:)?|e-?mail|emails?)\s*:?", " ", text, flags=re.I)
    text = re.sub(r"^\s*(?:authors?|by)\s*[:.]?\s+", "", text, flags=re.I)
    parts = re.split(r"\s*(?:,|;|&|\band\b|·|•|\|)\s*", text)
    names: list[str] = []
    count = 0
    for part in parts:
        cleaned = " ".join(_MARKERS.sub(" ", part).split()).strip(" .,*")
        if not cleaned:
            continue
        count += 1
        if _name_like(cleaned):
            names.append(cleaned)
    return names, count


def _authors_from_lines(lines: Iterable[str]) -> list[str]:
    """Names from a title block's lines; a line counts when at least half of its parts are names."""
    authors: list[str] = []
    for line in lines:
        names, parts = _names_in_line(line)
        if names and len(names) * 2 >= parts:
            authors.extend(name for name in names if name not in authors)
    return authors


def _authors_from_field(value: str) -> list[str]:
    """Names from a metadata field such as a PDF's /Author ("A. One; B. Two" or "A, B and C")."""
    separators = r"\s*;\s*" if ";" in value else r"\s*(?:,|&|\band\b)\s*"
    names: list[str] = []
    for part in re.split(separators, value):
        name = " ".join(part.split())
        if name and len(name.split()) <= 6 and name not in names:
            names.append(name)
    return names
