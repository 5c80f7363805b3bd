"""What an extractive answer quotes: the kind of answer a question wants, the passage that
holds it, and the part of that passage to quote, by kind of corpus.

A question is read for what it wants (``intent_of``): a number, a duration, an amount, a
default, the cases or conditions, how something is computed, a definition, an error, where
something is implemented. Each passage is cut into units (sentences of prose; statements of
code, a multi-line call or signature kept whole) and each unit is scored by the question's words
it holds (weighted by how rare they are among the passages), by whether it is the kind of
thing the question wants, and by how close its passage came in retrieval. Then, by kind:

The answer quotes the passages whose best units score best (up to three, none that holds few of
the question's words), by kind (assets/answering/):

* code: the best statement with the lines around it (most passages whole), cited by the exact
  lines quoted; implementation before tests and docstrings, unless the question is about tests;
* regulation: the whole provision that holds the best unit (the paragraph with its points,
  its opening words with the amounts), articles before recitals unless the question asks why;
* papers and text: the whole paragraph when it is short enough (formulas kept whole), else the
  best sentence and the ones that follow it; every sentence cited.
"""

import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

# What a question can want, from its wording (lower-cased).
_WANTS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "number": r"\bhow (many|much|long|often|old|large|big|far|soon|frequently)\b|"
        r"\b(maximum|minimum|max|min|limit|threshold|deadline|percentage|proportion|how "
        r"soon|what age|which year|what year|what value|what size|what number|how big|"
        r"block size|chunk size|at most|at least|up to what|upper bound|lower bound|cap)\b",
        "duration": r"\bhow (long|soon|often)\b|\b(deadline|period|duration|timeout|valid|"
        r"wait|within|days?|weeks?|months?|years?|hours?|minutes?|seconds?)\b",
        "amount": r"\b(fine|fines|fined|penalt\w*|price|cost|fee|fees|amount|how much|turnover|"
        r"sanction\w*)\b",
        "default": r"\b(default|defaults|by default|out of the box|without (any )?argument|"
        r"if (i|you|we) (don'?t|do not|never) (pass|set|give|specify|configure)|unless)\b",
        "cases": r"\b(which|what|in which|in what) (cases|situations|circumstances|conditions|"
        r"status|codes|methods|verbs|headers|exceptions|errors|types|kinds|uses|practices|"
        r"models|candidates|options|ones)\b|\bwhen (must|may|does|do|is|are|will|can|should|"
        r"would)\b|\bunder what\b|\bwhat (do|does|must|should) .{0,40}\b(check|include|"
        r"contain|cover)\b",
        "computation": r"\bhow (is|are|does|do|exactly)\b.{0,80}\b(comput|calculat|determin|"
        r"deriv|estimat|chos|choos|select|decid|pick|obtain|measur|scor|turn|convert|"
        r"produc|work|built|fit)\w*|\bformula\b|\bequation\b|\bhow exactly\b",
        "definition": r"\bwhat (is|are) (a |an |the )?['\"\u2018\u201c]|\bwhat counts as\b|"
        r"\bdefin(e|es|ed|ition)\b|\bmeaning of\b|\bwhat kind of\b|\bwhat does .{0,40} mean\b",
        "error": r"\b(exception|exceptions|error|errors|raise|raises|raised|fail|fails|"
        r"failure|invalid)\b",
        "location": r"\bwhere (is|are|does|do)\b|\bwhich (function|method|class|module|file)\b",
        "tests": r"\b(test|tests|tested|testing|test suite)\b",
        "reason": r"\bwhy\b|\bpurpose\b|\brationale\b|\breason\b",
    }.items()
}
# What a unit of text can be, for what a question wants.
_NUMBER = re.compile(
    r"(?<![\w.])\d[\d,. ]*\d(?![\w])|(?<![\w.])\d(?![\w])|\b(one|two|three|four|five|six|"
    r"seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|hundred|thousand|million)\b",
    re.I,
)
_DURATION = re.compile(
    r"\b\d[\d.,]*\s*(-\s*)?(days?|weeks?|months?|years?|hours?|minutes?|seconds?|ms)\b|"
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty)"
    r"[ -](days?|weeks?|months?|years?|hours?|minutes?|seconds?)\b|\bimmediately\b",
    re.I,
)
_AMOUNT = re.compile(r"(EUR|€|\$|USD|GBP|£)\s*\d|\d\s*(%|per ?cent|percent)|\bturnover\b", re.I)
_ENUMERATION = re.compile(
    r"(^|\s)\([a-z]{1,3}\)\s|(^|\n)\s*([-*•]|\d+[.)])\s|\bfollowing\b|:\s*$|;\s*(and|or)?\s*$|"
    r"\b(either|any of|one of|both of)\b",
    re.I | re.M,
)
_FORMULA = re.compile(r"[=<>≤≥\u00d7∑Σ√^]|\*\*|\b(log|exp|sqrt)\b|\d\s*[*/+\u2212-]\s*\d", re.I)
_DEFINITION = re.compile(
    r"\bmeans\b|\bis defined as\b|\brefers? to\b|\bdenotes?\b|\bis called\b|"
    r"\u2018[^\u2019]+\u2019 means",
    re.I,
)
_ERROR = re.compile(r"\b\w+(Error|Exception|Warning)\b|\braise\b|\braises\b")
_CODE_DEFAULT = re.compile(r"^\s*[\w.]+\s*(:[^=]+)?=\s*[^=]|\w\s*(:[^=,()]+)?=\s*[^=\s]")
_CODE_CASES = re.compile(r"\b(if|elif|case)\b|\bfrozenset\(|[\[{]\s*[^\]}\s][^\]}]*,")
_CODE_DEF = re.compile(r"^\s*(async\s+)?(def|class)\s+\w+")
_TEST_PATH = re.compile(r"(^|/)(tests?|testing)(/|$)|(^|/)test_[^/]*$|_test\.\w+$")
_RECITAL = re.compile(r"^recital\b", re.I)
_WORD = re.compile(r"[A-Za-z0-9_]+")
_STOPWORDS = frozenset(
    """a about an and are as at be by can could do does for from has have how i if in into is
    it its me my of on or should that the their them then there these this to was what when
    where which who why will with would you your we our us much many long get gets""".split()  # noqa: SIM905
)
_IDENTIFIER_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

DOC_LINES = 6  # a docstring paragraph is cut after this many lines


def _stem(word: str) -> str:
    if len(word) <= 4 or word.isdigit():
        return word
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ed", "es", "er", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def words(text: str) -> Iterator[str]:
    """The words of ``text``, lower-cased; an identifier also by its parts (``backoff_max``:
    backoff_max, backoff, max; ``PoolManager``: poolmanager, pool, manager)."""
    for word in _WORD.findall(text):
        parts = {word}
        if "_" in word or not (word.islower() or word.isupper()):
            parts.update(_IDENTIFIER_PART.findall(word))
        for part in parts:
            yield part.lower().strip("_")


def terms(text: str) -> set[str]:
    """Content words, stemmed (``words``, less stopwords)."""
    return {
        _stem(word)
        for word in words(text)
        if word not in _STOPWORDS and (len(word) > 1 or word.isdigit())
    }


@dataclass(frozen=True, slots=True)
class Intent:
    """What a question wants: some of number, duration, amount, default, cases, computation,
    definition, error, location, tests, reason."""

    wants: frozenset[str]

    def __contains__(self, name: str) -> bool:
        return name in self.wants


_QUOTED = re.compile(r"['\"\u2018\u201c]([^'\"\u2019\u201d]{2,60})['\"\u2019\u201d]")
_ASKED_TERM = re.compile(
    r"\b(?:what counts as|define|definition of|meaning of|what is meant by)\s+(?:an? |the )?"
    r"([\w -]{2,60}?)(?:\?|$| in | under | for )",
    re.I,
)


def defined_term(question: str) -> str | None:
    """The term a question asks the definition of, when it names one: quoted, or after
    "what counts as", "define", "definition of"."""
    if (quoted := _QUOTED.search(question)) is not None:
        return quoted.group(1).strip().lower()
    if (asked := _ASKED_TERM.search(question)) is not None:
        return asked.group(1).strip().lower()
    return None


_DEFINES = re.compile(
    r"['\"\u2018\u201c]([^'\"\u2019\u201d]{2,60})['\"\u2019\u201d]\s+(?:means|is defined as|"
    r"refers to)\b",
    re.I,
)


def defines(text: str, asked: str) -> bool:
    """Whether ``text`` defines the term ``asked`` is about ("'term' means", as regulations
    and papers write): a term it defines is ``asked`` or begins it."""
    return any(
        asked == term or asked.startswith(term + " ")
        for term in (m.group(1).strip().lower() for m in _DEFINES.finditer(text))
    )


def intent_of(question: str) -> Intent:
    lowered = question.lower()
    return Intent(frozenset(name for name, pattern in _WANTS.items() if pattern.search(lowered)))


def fits(intent: Intent, text: str, *, code: bool) -> float:
    """How well ``text`` is the kind of answer ``intent`` wants, from 0 to 1."""
    checks: list[bool] = []
    if "duration" in intent and "number" in intent:
        checks.append(bool(_DURATION.search(text)) or (code and bool(_NUMBER.search(text))))
    elif "number" in intent:
        checks.append(bool(_NUMBER.search(text)))
    if "amount" in intent:
        checks.append(bool(_AMOUNT.search(text)) or (code and bool(_NUMBER.search(text))))
    if "default" in intent:
        checks.append(bool(_CODE_DEFAULT.search(text)) if code else "default" in text.lower())
    if "cases" in intent:
        pattern = _CODE_CASES if code else _ENUMERATION
        checks.append(bool(pattern.search(text)))
    if "computation" in intent:
        checks.append(bool(_FORMULA.search(text)))
    if "definition" in intent:
        checks.append(bool(_DEFINITION.search(text)) or (code and bool(_CODE_DEF.search(text))))
    if "error" in intent:
        checks.append(bool(_ERROR.search(text)))
    if "location" in intent and code:
        checks.append(bool(_CODE_DEF.search(text)))
    return sum(checks) / len(checks) if checks else 0.0


# Units


@dataclass(frozen=True, slots=True)
class Unit:
    """A quotable piece of a passage: a sentence, or a code statement (lines ``first..last``,
    0-based within the passage)."""

    rank: int  # the passage's position among the passages answered from
    index: int  # the unit's position within its passage
    text: str
    first: int = 0
    last: int = 0


def code_statements(text: str) -> list[tuple[int, int]]:
    """Line spans (0-based, inclusive) of a code passage's statements: a line, or the lines of
    one call, signature or literal whose brackets close on a later line."""
    lines = text.split("\n")
    spans: list[tuple[int, int]] = []
    start = 0
    depth = 0
    for i, line in enumerate(lines):
        code = re.sub(r"(\"[^\"]*\"|'[^']*'|#.*$)", "", line)
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if depth <= 0 or i - start >= 12:
            if "".join(lines[start : i + 1]).strip():
                spans.append((start, i))
            start, depth = i + 1, 0
    if start < len(lines) and "".join(lines[start:]).strip():
        spans.append((start, len(lines) - 1))
    return spans


_CODE_START = re.compile(
    r"^(def|class|return|if|elif|else|for|while|try|except|finally|with|raise|import|from|"
    r"assert|yield|async|await|pass|break|continue|lambda|global|nonlocal|@|self\.|\)|\]|\})"
)


def _prose(line: str) -> bool:
    """Whether a line reads as text rather than code."""
    stripped = line.strip()
    words = re.findall(r"[A-Za-z]{2,}", stripped)
    if len(words) < 3 or _CODE_START.match(stripped) or stripped.endswith(("(", ",", "[", "{")):
        return False
    if re.search(r"\s=\s|==|!=|\w\(|\)\s*:$", stripped):
        return False
    return sum(len(w) for w in words) / max(len(stripped), 1) > 0.6


def _in_docstring(lines: list[str]) -> list[bool]:
    """Which lines of a code passage are inside a docstring (or are comments). A passage may
    start inside a docstring: then the text before its first triple quote reads as prose."""
    opening = next((i for i, line in enumerate(lines) if '"""' in line or "'''" in line), None)
    before = lines[:opening] if opening is not None else []
    inside = sum(_prose(line) for line in before) > len([ln for ln in before if ln.strip()]) / 2
    marks = []
    for line in lines:
        stripped = line.strip()
        quotes = stripped.count('"""') + stripped.count("'''")
        marks.append(inside or quotes > 0 or stripped.startswith("#"))
        if quotes % 2 == 1:
            inside = not inside
    return marks


def code_units(rank: int, text: str) -> list[Unit]:
    """A code passage's statements, and the paragraphs of its docstrings and comments (at most
    DOC_LINES lines each), in order."""
    lines = text.split("\n")
    docs = _in_docstring(lines)
    spans: list[tuple[int, int]] = []
    paragraph: list[int] = []

    def close() -> None:
        if paragraph:
            spans.append((paragraph[0], paragraph[-1]))
            paragraph.clear()

    for first, last in code_statements(text):
        if all(docs[first : last + 1]) and first == last:
            if not lines[first].strip().strip("\"'#") or len(paragraph) >= DOC_LINES:
                close()
            if lines[first].strip().strip("\"'#"):
                paragraph.append(first)
            continue
        close()
        spans.append((first, last))
    close()
    return [
        Unit(rank, n, "\n".join(lines[first : last + 1]), first, last)
        for n, (first, last) in enumerate(spans)
    ]


def docstring_lines(text: str) -> list[bool]:
    """Which lines of a code passage are inside a docstring or are comments."""
    return _in_docstring(text.split("\n"))


def is_doc(unit: Unit, marks: list[bool]) -> bool:
    """Whether a code unit lies inside a docstring or comment of its passage (``marks``:
    ``docstring_lines`` of the passage)."""
    return all(marks[unit.first : unit.last + 1])


def prose_units(rank: int, text: str, split: Callable[[str], list[str]]) -> list[Unit]:
    return [Unit(rank, n, sentence) for n, sentence in enumerate(split(text))]


# Scoring

# What a unit is scored on (``unit_features``); a linear model over them per kind of corpus
# (assets/answer_model.json, hand-set; ``bench/fit_answers.py`` fits and compares others)
# gives the log-odds that the unit states what a right answer states.
FEATURES = (
    "bias", "overlap", "context", "fit", "meaning", "closeness", "rank", "doc", "test",
    "recital", "defines", "long",
)  # fmt: skip


@dataclass
class Scored:
    unit: Unit
    features: dict[str, float]
    score: float = 0.0  # log-odds, from the kind's model

    @property
    def overlap(self) -> float:
        return self.features["overlap"]


def idf_weights(question: str, texts: Sequence[str]) -> dict[str, float]:
    """The question's words, weighted by how few of ``texts`` hold them; two words in a row
    also count written as one (``block size``: ``blocksize``), as identifiers write them."""
    wanted = terms(question)
    words = [w.lower() for w in _WORD.findall(question) if w.lower() not in _STOPWORDS]
    wanted |= {a + b for a, b in itertools.pairwise(words) if len(a + b) >= 6}
    held = [terms(t) for t in texts]
    return {t: 1 + math.log((1 + len(held)) / (1 + sum(t in h for h in held))) for t in wanted}


def overlap(weights: dict[str, float], text: str) -> float:
    total = sum(weights.values())
    if not total:
        return 0.0
    have = terms(text)
    prefixes = {t[:5] for t in have if len(t) >= 5}
    return (
        sum(w for t, w in weights.items() if t in have or (len(t) >= 5 and t[:5] in prefixes))
        / total
    )


def unit_features(
    unit: Unit,
    *,
    weights: dict[str, float],
    intent: Intent,
    rank: int,
    closeness: float,
    context: str,
    code: bool,
    doc: bool,
    test: bool,
    recital: bool,
    term: str | None,
) -> dict[str, float]:
    """What a unit is scored on: the share of the question's words it holds (weighted by
    rarity) and that what names its passage holds; whether it is the kind of answer wanted;
    its passage's cosine and rank; whether it is a docstring or comment, in a test, a recital,
    the definition asked for; its length. ``meaning`` is filled in later, for the best units
    only (it costs an embedding)."""
    return {
        "bias": 1.0,
        "overlap": overlap(weights, unit.text),
        "context": overlap(weights, context) if context else 0.0,
        "fit": fits(intent, unit.text, code=code),
        "meaning": 0.0,
        "closeness": closeness,
        "rank": 1 / (1 + rank),
        "doc": float(doc),
        "test": float(test and "tests" not in intent),
        "recital": float(recital and "reason" not in intent),
        "defines": float(bool(term) and defines(unit.text, term or "")),
        "long": min(math.log1p(len(unit.text)) / 8, 1.0),
    }


def linear(model: dict[str, float], features: dict[str, float]) -> float:
    return sum(model.get(name, 0.0) * value for name, value in features.items())


def is_test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path))


def is_recital(section: str) -> bool:
    return bool(_RECITAL.match(section))
