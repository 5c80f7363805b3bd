"""Corpus text is data, never instructions: prompt injections in, leaks and foreign links out.

``is_instruction`` spots text aimed at the assistant rather than at a reader ("ignore previous
instructions", "reveal your system prompt"), and ``neutralize`` removes such sentences from what
the chat model is shown. On the way out, ``_leaks`` finds an output that repeats a run of the
system prompt (or its nonce), and ``_strip_links`` removes links that none of the cited
passages holds.
"""

import re
from collections.abc import Sequence

from assets.answering.result import REFUSAL

# An output sharing this many consecutive words with the system prompt is a leak.
LEAK_WORDS = 8
LINK_REMOVED = "[link removed]"
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]+)\)")
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'`)\]]+", re.I)

# Text aimed at the assistant rather than at a reader. Deliberately narrow: corpora talk to
# "you" all the time ("you can return an item within 30 days") and that stays quotable.
_ADDRESSEE = r"(?:ai|assistant|chat ?bot|bot|language model|llm|model|gpt|agent)"
_INSTRUCTIONS = r"(?:instructions?|prompts?|rules|guidelines|directions|directives)"
_INJECTION = [
    re.compile(p, re.I)
    for p in (
        rf"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{{0,60}}\b{_INSTRUCTIONS}\b",
        r"\b(?:reveal|print|show|output|repeat|display|leak|dump|tell me|give me|share)\b"
        r"[^.!?\n]{0,40}\b(?:system|developer|hidden|initial|original|your)\s+"
        r"(?:prompt|message|instructions)\b",
        r"\b(?:answer|respond|reply|end|start|begin)\b[^.!?\n]{0,30}\bwith\s+(?:this|the "
        r"following)\s+(?:url|link|website|address|text|sentence|message|phrase)\b",
        r"\b(?:include|insert|add|append|output|print|mention|recommend)\b[^.!?\n]{0,30}"
        r"\b(?:this|the following)\s+(?:url|link|website)\b",
        r"^\W*(?:system|assistant|developer)\s*:",
        r"\b(?:you are|you're|act as|pretend to be|pretend you are)\s+(?:now\s+)?"
        r"(?:an?\s+|the\s+)?(?:[a-z-]+\s+){0,2}(?:ai|assistant|chat ?bot|language model|llm|gpt|"
        r"dan)\b",
        rf"\b{_ADDRESSEE}s?\b[^.!?\n]{{0,20}}\b(?:must|should|shall|will|needs? to|has to)\s+"
        r"(?:now\s+|always\s+|only\s+)?(?:ignore|answer|respond|reply|say|output|print|reveal|"
        r"include|pretend|act|obey|follow)\b",
        rf"\b(?:new|updated|real|actual|hidden)\s+{_INSTRUCTIONS}\s*:",
        rf"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?{_ADDRESSEE}s?\b",
    )
]


def _plain_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _contains_phrase(text: str, phrase: str) -> bool:
    return f" {' '.join(_plain_words(phrase))} " in f" {' '.join(_plain_words(text))} "


def is_instruction(text: str) -> bool:
    """Whether ``text`` addresses the assistant (a prompt injection) rather than a reader."""
    return any(pattern.search(text) for pattern in _INJECTION)


def neutralize(text: str) -> str:
    """``text`` without its sentences aimed at the assistant; line breaks are kept."""
    out: list[str] = []
    for line in text.split("\n"):
        if is_instruction(line):
            kept = [s for s in re.split(r"(?<=[.!?])\s+", line) if not is_instruction(s)]
            line = " ".join(kept)
        out.append(line)
    return "\n".join(out)


def _strip_links(text: str, allowed: Sequence[str]) -> tuple[str, int]:
    """``text`` with links that appear in none of ``allowed`` replaced; and how many were."""
    removed = 0

    def ok(url: str) -> bool:
        return any(url in source for source in allowed)

    def markdown(match: re.Match[str]) -> str:
        nonlocal removed
        if ok(match.group(2)):
            return match.group(0)
        removed += 1
        return f"{match.group(1)} {LINK_REMOVED}".strip()

    def bare(match: re.Match[str]) -> str:
        nonlocal removed
        url = match.group(0).rstrip(".,;:!?")
        tail = match.group(0)[len(url) :]
        if ok(url):
            return match.group(0)
        removed += 1
        return LINK_REMOVED + tail

    text = _MARKDOWN_LINK.sub(markdown, text)
    return _URL.sub(bare, text), removed


def _leak_shingles(system: str) -> set[tuple[str, ...]]:
    shingles: set[tuple[str, ...]] = set()
    # The refusal is part of the rules and a legitimate answer, so it is not a leak.
    for part in re.split(re.escape(REFUSAL), system, flags=re.I):
        words = _plain_words(part)
        shingles.update(tuple(words[i : i + LEAK_WORDS]) for i in range(len(words)))
    return {s for s in shingles if len(s) == LEAK_WORDS}


def _leaks(output: str, *, shingles: set[tuple[str, ...]], nonce: str) -> bool:
    """Whether ``output`` repeats a run of LEAK_WORDS words of the system prompt, or its nonce."""
    if nonce in output:
        return True
    for part in re.split(re.escape(REFUSAL), output, flags=re.I):
        words = _plain_words(part)
        if any(tuple(words[i : i + LEAK_WORDS]) in shingles for i in range(len(words))):
            return True
    return False
