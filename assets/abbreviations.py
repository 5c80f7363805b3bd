"""The abbreviations an asset defines in its own text, and questions rewritten with them.

Learnt at ingestion from every chunk (regulations, papers, code docstrings and comments), in the
forms real corpora use::

    the data protection officer (DPO)            long form (ABBR)
    General Data Protection Regulation (the 'GDPR'), (hereinafter 'GDPR')
    LRU (least recently used) cache              ABBR (long form)
    'DPO' means the data protection officer      'ABBR' means / stands for / is short for ...

A definition is taken only when the abbreviation spells the long form: each word of the long
form gives its initial (small words such as "of", "and", "the" may be skipped), and a word
may give more letters in order when they are capitals (``general-purpose AI``: GPAI) or one
more letter of a lowercase word (``database management system``: DBMS). An abbreviation has
2-10 letters, two of them capitals, and no digits; a long form has at least two words and no
digits. Single letters, numbers and citations (``(a)``, ``(EU) 2016/679``, ``(Art. 37)``)
are never taken.

Matching uses the short form as the canonical one: MiniLM knows no abbreviation, so an opaque
"DPO" leaves the rest of the question to decide the meaning, whereas spelling out long noun
phrases makes different questions about one term look alike (see ``assets/review.py``).
"""

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

# Words a long form may skip (or spell with its initial: "Department of Energy (DoE)").
_SMALL = frozenset(
    "a an and as at by for from in into of on or per the to with within under via".split()  # noqa: SIM905
)
_QUOTES = "'\"\u2018\u2019\u201c\u201d\u00ab\u00bb`"
_Q = f"[{_QUOTES}]"
_ABBR = r"[A-Za-z]{2,10}"
# The parenthesis after a long form: "(DPO)", "(the 'GDPR')", "(hereinafter referred to as 'EDPB')".
_AFTER = re.compile(
    r"\(\s*(?:(?:hereinafter|hereafter)(?:\s+(?:referred\s+to\s+as|called))?\s*[:,]?\s*)?"
    rf"(?:(?:the|an?)\s+)?{_Q}?(?:the\s+)?(?P<abbr>{_ABBR}){_Q}?\s*\)"
)
# An abbreviation followed by its long form in parentheses: "LRU (least recently used)".
_BEFORE = re.compile(rf"(?<![\w.-]){_Q}?(?P<abbr>{_ABBR}){_Q}?\s+\((?P<long>[^()]{{3,120}})\)")
# "'DPO' means ...", "TTL stands for ...", "RAG is short for ...".
_MEANS = re.compile(
    rf"(?<![\w.-]){_Q}?(?P<abbr>{_ABBR}){_Q}?,?\s+(?:means|shall\s+mean|refers\s+to|"
    r"stands\s+for|is\s+short\s+for|is\s+an?\s+(?:abbreviation|acronym)\s+(?:of|for))\s+"
    rf"{_Q}?"
)
_TOKEN = re.compile("[A-Za-z][A-Za-z'\u2019]*|[^A-Za-z]+")
_JOIN = re.compile(r"\s+|\s*-\s*")  # what may stand between two words of a long form
# A word of a question, as long forms are matched in it ("hepatitis B virus", "Alzheimer's").
_WORD = re.compile("[A-Za-z0-9][A-Za-z0-9'\u2019]*")
_MAX_WORDS = 12
_WINDOW = 200


def _abbreviation(text: str) -> bool:
    return 2 <= len(text) <= 10 and text.isalpha() and sum(c.isupper() for c in text) >= 2


def _plural_abbreviation(abbr: str) -> bool:
    return len(abbr) >= 3 and abbr[-1] == "s" and abbr[-2].isupper()


def _letters(word: str, loose: bool) -> list[list[str]]:
    """The runs of letters ``word`` may give after its initial: its later capitals in order,
    or (``loose``, a lowercase word) one more letter."""
    rest = word[1:]
    capitals = [c.lower() for c in rest if c.isupper()]
    runs = [capitals[:n] for n in range(len(capitals) + 1)]
    if loose and not capitals:
        runs += [[c.lower()] for c in dict.fromkeys(rest) if c.isalpha()]
    return runs


def _spells(abbr: str, words: Sequence[str], loose: bool = False) -> bool:
    """Whether ``abbr`` spells ``words``: every word but a small one gives its initial and
    perhaps more letters (see ``_letters``); the first and last words are not small. A last
    lowercase letter is an initial ("SBTi": Science-Based Targets initiative), never a
    letter from inside a word ("SDi" is a formula's subscript, not "supervisory duration")."""
    if len(words) < 2 or words[0].lower() in _SMALL or words[-1].lower() in _SMALL:
        return False
    if _plural_abbreviation(abbr) and words[-1].endswith("s"):
        abbr = abbr[:-1]  # "FIs": Financial Institutions
    target = abbr.lower()
    subscript = abbr[-1].islower()
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if j == len(words):
            return i == len(target)
        if (i, j) in memo:
            return memo[(i, j)]
        word = words[j]
        found = word.lower() in _SMALL and match(i, j + 1)
        if not found and i < len(target) and word[0].lower() == target[i]:
            for run in _letters(word, loose):
                end = i + 1 + len(run)
                if run and subscript and end == len(target):
                    continue
                if target[i + 1 : end] == "".join(run) and match(end, j + 1):
                    found = True
                    break
        memo[(i, j)] = found
        return found

    return match(0, 0)


def _split(text: str) -> list[tuple[str, int, int]]:
    """The words of ``text`` (hyphenated parts apart) with their spans, up to the first thing
    that is neither a word nor a space or hyphen between words."""
    words: list[tuple[str, int, int]] = []
    position = 0
    for token in _TOKEN.findall(text):
        if token[0].isalpha():
            words.append((token, position, position + len(token)))
        elif not (_JOIN.fullmatch(token) if words else token.isspace()):
            break
        position += len(token)
    return words[:_MAX_WORDS]


def _long_before(text: str, abbr: str) -> str | None:
    """The shortest run of words at the end of ``text`` that ``abbr`` spells."""
    window = text[-_WINDOW:].rstrip().rstrip(_QUOTES).rstrip()
    words: list[re.Match[str]] = []
    for token in reversed(list(_TOKEN.finditer(window))):
        if not token.group(0)[0].isalpha():
            if not words or not _JOIN.fullmatch(token.group(0)):
                break
        elif len(words) == _MAX_WORDS:
            break
        else:
            words.insert(0, token)
    # Initials only first: "DPO" is "data protection officer", not "protection officer".
    for loose in (False, True):
        for start in range(len(words) - 2, -1, -1):
            if _spells(abbr, [w.group(0) for w in words[start:]], loose):
                return window[words[start].start() : words[-1].end()]
    return None


def _long_after(text: str, abbr: str, *, whole: bool) -> str | None:
    """The shortest run of words at the start of ``text`` (all of it when ``whole``) that
    ``abbr`` spells, leading small words left out."""
    words = _split(text[:_WINDOW])
    while words and words[0][0].lower() in _SMALL:
        words.pop(0)
    if whole:
        rest = text[words[-1][2] :].strip() if words else text
        if rest or not words:
            return None
        spans = [words]
    else:
        spans = [words[:n] for n in range(2, len(words) + 1)]
    for loose in (False, True):
        for span in spans:
            if _spells(abbr, [w for w, _, _ in span], loose):
                return text[span[0][1] : span[-1][2]]
    return None


def _clean(long: str) -> str:
    return " ".join(long.split())


def extract(text: str) -> list[tuple[str, str]]:
    """The (abbreviation, long form) definitions in ``text``, in order."""
    found: list[tuple[int, str, str]] = []
    for match in _AFTER.finditer(text):
        abbr = match.group("abbr")
        if _abbreviation(abbr):
            long = _long_before(text[: match.start()], abbr)
            if long:
                found.append((match.start(), abbr, _clean(long)))
    for match in _BEFORE.finditer(text):
        abbr = match.group("abbr")
        if _abbreviation(abbr):
            inside = match.group("long").strip().strip(_QUOTES).strip()
            inside = re.sub(r"^(?:i\.e\.,?|ie,?)\s+", "", inside)
            long = _long_after(inside, abbr, whole=True)
            if long:
                found.append((match.start(), abbr, _clean(long)))
    for match in _MEANS.finditer(text):
        abbr = match.group("abbr")
        if _abbreviation(abbr):
            long = _long_after(text[match.end() :], abbr, whole=False)
            if long:
                found.append((match.start(), abbr, _clean(long)))
    return [(abbr, long) for _, abbr, long in sorted(found)]


def _key(long: str) -> str:
    return " ".join(re.split(r"[\s-]+", long.lower().replace("\u2019", "'")))


def _singular(abbr: str, long: str) -> tuple[str, str]:
    """A plural definition ("FIs": "Financial Institutions") as its singular, so that both
    numbers are one term."""
    if not _plural_abbreviation(abbr) or not long.endswith("s"):
        return abbr, long
    if long.endswith("ies"):
        return abbr[:-1], long[:-3] + "y"
    return abbr[:-1], long[:-1]


def _plural(form: str) -> str:
    if form.endswith("s"):
        return form
    if form.endswith("y") and form[-2:-1] not in tuple("aeiou"):
        return form[:-1] + "ies"
    return form + "s"


class Abbreviations:
    """An asset's abbreviations: each short form with the long form its text defines it as."""

    def __init__(self, pairs: Iterable[Sequence[str]] = ()) -> None:
        self.pairs: tuple[tuple[str, str], ...] = tuple(
            sorted((str(p[0]), str(p[1])) for p in pairs)
        )

    @classmethod
    def learn(cls, texts: Iterable[str]) -> "Abbreviations":
        """What ``texts`` define. An abbreviation defined two ways takes the long form seen
        most often (the first seen on a tie); one long form given two abbreviations keeps both."""
        counts: Counter[tuple[str, str]] = Counter()
        spelling: dict[tuple[str, str], str] = {}
        for text in texts:
            for abbr, long in (_singular(*pair) for pair in extract(text)):
                key = (abbr, _key(long))
                counts[key] += 1
                spelling.setdefault(key, long)
        best: dict[str, tuple[str, str]] = {}
        for key, _ in counts.most_common():  # ties keep the order first seen
            best.setdefault(key[0], key)
        return cls((abbr, spelling[key]) for abbr, key in best.items())

    def __len__(self) -> int:
        return len(self.pairs)

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Abbreviations) and self.pairs == other.pairs

    def __hash__(self) -> int:
        return hash(self.pairs)

    def __repr__(self) -> str:
        return f"Abbreviations({list(self.pairs)!r})"

    def to_json(self) -> list[list[str]]:
        return [list(p) for p in self.pairs]

    @classmethod
    def from_json(cls, data: Any) -> "Abbreviations":
        if not isinstance(data, list):
            return cls()
        return cls(p for p in data if isinstance(p, list) and len(p) == 2)

    @cached_property
    def _short_of(self) -> dict[str, str]:
        """Each long form, singular and plural (lowercase, single spaces), to its abbreviation
        in the same number."""
        shorts: dict[str, str] = {}
        for abbr, long in self.pairs:
            form = _key(long)
            shorts.setdefault(form, abbr)
            if _plural(form) != form:
                shorts.setdefault(_plural(form), abbr + "s")
        return shorts

    @cached_property
    def _longest(self) -> dict[str, int]:
        """The most words of a long form, by its first word."""
        longest: dict[str, int] = {}
        for form in self._short_of:
            first, n = form.split()[0], len(form.split())
            longest[first] = max(n, longest.get(first, 0))
        return longest

    @cached_property
    def _shorts(self) -> frozenset[str]:
        return frozenset(abbr for abbr, _ in self.pairs)

    def _contract_once(self, text: str) -> str:
        words = list(_WORD.finditer(text))
        # Whether word k and word k + 1 may belong to one long form.
        joined = [_JOIN.fullmatch(text[a.end() : b.start()]) is not None for a, b in
                  itertools.pairwise(words)]  # fmt: skip
        pieces: list[str] = []
        done = 0  # of text
        i = 0
        while i < len(words):
            longest = self._longest.get(_key(words[i].group(0)), 0)
            for n in range(min(longest, len(words) - i), 0, -1):
                if all(joined[i : i + n - 1]):
                    key = _key(" ".join(w.group(0) for w in words[i : i + n]))
                    short = self._short_of.get(key)
                    if short is not None:
                        pieces += [text[done : words[i].start()], short]
                        done = words[i + n - 1].end()
                        i += n
                        break
            else:
                i += 1
        return "".join([*pieces, text[done:]])

    def contract(self, text: str) -> str:
        """``text`` with every long form it spells out written as its abbreviation (a plural
        as a plural; nested ones too: "general-purpose artificial intelligence" is GPAI when
        both GPAI and AI are known)."""
        if not self.pairs:
            return text
        for _ in range(3):
            contracted = self._contract_once(text)
            if contracted == text:
                break
            text = contracted
        return text

    def terms(self, text: str) -> frozenset[str]:
        """The abbreviations ``text`` names, by their short or their long form."""
        if not self.pairs:
            return frozenset()
        found = set()
        for match in _WORD.finditer(self.contract(text)):
            word = match.group(0)
            if word in self._shorts:
                found.add(word)
            elif word.endswith("s") and word[:-1] in self._shorts:
                found.add(word[:-1])
        return frozenset(found)
