"""Detection: a cheap guess whether a document's text is a scientific paper (for kind "auto").

``looks_like_paper`` scores the signs of a paper (an abstract, a reference list, a DOI or arXiv
id near the top, ORCID iDs, numbered sections, citations) against those of a README and of
legislation.
"""

import re

from ingestion.sources.paper.metadata import _ARXIV, _DOI, _find_orcids

_PAPER_ABSTRACT = re.compile(
    # "Abstract" alone or followed by punctuation: not "Abstract Syntax Notation"
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__|\*|_)?abstract(?:\*\*|__|\*|_)?[ \t]*"
    r"(?:$|[.:\u2014\u2013-])|\\begin\{abstract\}|^[ \t]*\\abstract\b",
    re.IGNORECASE | re.MULTILINE,
)
_PAPER_REFERENCES = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\d+\.?[ \t]+)?(?:\*\*)?(?:references|bibliography|works cited|"
    r"literature cited)(?:\*\*)?[ \t]*:?[ \t]*$|\\begin\{thebibliography\}|\\bibliography\{"
    r"|\\printbibliography",
    re.IGNORECASE | re.MULTILINE,
)
_PAPER_SECTIONS = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\d+\.?[ \t]+)?(?:introduction|related work|background|methods?|"
    r"methodology|materials and methods|experiments|results|discussion|conclusions?)[ \t]*$"
    r"|\\section\*?\{",
    re.IGNORECASE | re.MULTILINE,
)
_PAPER_CITATIONS = re.compile(r"\[\d{1,3}(?:\s*[,\u2013-]\s*\d{1,3})*\]|\bet al\.|\\cite[pt]?\{")
_README_SIGNS = (
    re.compile(r"^#{1,6}\s*(?:installation|install|usage|getting started|quick ?start|"
               r"contributing|license|requirements|build)\b", re.I | re.M),
    re.compile(r"\b(?:pip|npm|yarn|cargo|brew|apt(?:-get)?|go) (?:install|add|get)\b"),
    re.compile(r"^\s*(?:```|~~~)", re.M),
    re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]"),
)  # fmt: skip
_REGULATION_ARTICLE = re.compile(
    # a heading line ("Article 2", "Article 2 - Definitions"), not "Article 17 of the GDPR ..."
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:Article|Art\.)[ \t]+\d+[a-z]?[ \t]*(?:[-\u2013\u2014:.].*)?$",
    re.M,
)
_REGULATION_SIGNS = re.compile(
    r"HA(?:S|VE) ADOPTED TH(?:IS|E PRESENT)|^\s*Whereas\b|^[ \t]*§[ \t]*\d+|"
    r"\bshall (?:apply|enter into force)\b",
    re.M,
)


def looks_like_paper(text: str) -> bool:
    """A cheap guess whether a document's text is a scientific paper (for kind "auto")."""
    head = text[:4000]
    score = 0
    if _PAPER_ABSTRACT.search(head):
        score += 3
    if _PAPER_REFERENCES.search(text):
        score += 2
    doi = _DOI.search(text)
    if doi:
        score += 3 if doi.start() < 4000 else 1
    arxiv = _ARXIV.search(text)
    if arxiv:
        score += 3 if arxiv.start() < 4000 else 1
    if _find_orcids([head]):
        score += 1
    if len(_PAPER_SECTIONS.findall(text)) >= 2:
        score += 1
    if len(_PAPER_CITATIONS.findall(text)) >= 3:
        score += 1
    score -= 2 * sum(1 for sign in _README_SIGNS if sign.search(text))
    if len(_REGULATION_ARTICLE.findall(text)) >= 2:
        score -= 5
    if _REGULATION_SIGNS.search(text):
        score -= 3
    return score >= 3
