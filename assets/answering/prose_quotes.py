"""What the extractive answerer quotes from prose: sentences, windows, provisions, passages.

A prose passage is cut into paragraphs and sentences (less those aimed at the assistant); an
answer quotes the best sentence with those that follow it (``_window``), a regulation's whole
provision when it is short enough (``_provision``), or a paper's or text's whole passage when it
is short enough (``_passage_text``).
"""

import re

from assets import compose
from assets.answering.safety import is_instruction
from assets.retrieval import Passage

# A paper's or text's passage is quoted whole up to this length.
WHOLE_CHARS = 1400
# Prose: the best sentence and up to FOLLOWING after it, within WINDOW_CHARS.
FOLLOWING = 3
WINDOW_CHARS = 900
# A regulation's provision is quoted whole up to this length.
PROVISION_CHARS = 2000
_LIST_ITEM = re.compile(r"^([-*+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")


def _paragraphs(text: str) -> list[str]:
    """Prose paragraphs with wrapped lines joined; headings, fences and code are left out."""
    paragraphs: list[list[str]] = [[]]
    in_fence = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            paragraphs.append([])
            continue
        if in_fence or not stripped or stripped.startswith(("#", "|")):
            paragraphs.append([])
            continue
        item = _LIST_ITEM.match(stripped)
        if item:  # each list item reads as its own paragraph
            paragraphs.append([stripped[item.end() :]])
            continue
        paragraphs[-1].append(stripped)
    return [" ".join(p) for p in paragraphs if p]


def _sentences(passage: Passage) -> list[str]:
    """A prose passage's sentences, less those aimed at the assistant; each one verbatim."""
    return [
        sentence.strip()
        for paragraph in _paragraphs(passage.text)
        for sentence in _SENTENCE_END.split(paragraph)
        if sentence.strip() and not is_instruction(sentence)
    ]


def _window(passage: Passage, unit: compose.Unit) -> list[str]:
    """A prose answer: the unit's sentence and those that follow it in its passage, up to
    FOLLOWING more or WINDOW_CHARS in all (the answer often follows the sentence that restates
    the question)."""
    all_sentences = _sentences(passage)
    picked = [all_sentences[unit.index]]
    for sentence in all_sentences[unit.index + 1 : unit.index + 1 + FOLLOWING]:
        if len(" ".join(picked)) + len(sentence) > WINDOW_CHARS:
            break
        picked.append(sentence)
    return picked


def _passage_text(passage: Passage, unit: compose.Unit) -> list[str]:
    """A paper's or a text's answer: the whole passage (a paragraph, its formulas whole) when
    it is short enough, else the window from the best sentence on."""
    whole = _sentences(passage)
    return whole if len(" ".join(whole)) <= WHOLE_CHARS else _window(passage, unit)


def _provision(passage: Passage, unit: compose.Unit) -> list[str]:
    """A regulation answer: the whole provision (paragraph with its points) when it is short
    enough, else its opening, the best sentence and those after it."""
    all_sentences = _sentences(passage)
    if len(" ".join(all_sentences)) <= PROVISION_CHARS:
        return all_sentences
    return [*all_sentences[:1], *_window(passage, unit)] if unit.index else _window(passage, unit)
