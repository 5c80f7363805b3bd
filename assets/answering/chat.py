"""The answerer backed by a chat model: ask it, check its output, stream it checked.

``answer_with_llm`` asks the model only when a passage is close enough, then
``finish_llm_answer`` checks the output: withheld if it repeats the system prompt, abstained if
it refuses or cites nothing, citations renumbered, foreign links removed, and judged like the
extractive answer. ``stream_with_llm`` lets the answer out a sentence at a time through the same
checks (``_StreamGuard``); the final ``Answer`` it ends with is authoritative.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from assets.answering.citations import _Renumbering
from assets.answering.confidence import _judged, assess
from assets.answering.extractive import answer
from assets.answering.prompt import LLMPrompt, build_llm_prompt
from assets.answering.result import (
    ABSTAIN_SCORE,
    MODEL,
    REFUSAL,
    WITHHELD,
    Answer,
    Citation,
    _abstain,
)
from assets.answering.safety import _contains_phrase, _leak_shingles, _leaks, _strip_links
from assets.llm import ChatModel
from assets.retrieval import Passage


def finish_llm_answer(
    question: str,
    raw: str,
    prompt: LLMPrompt,
    *,
    model: str,
    review_threshold: float,
    cut_off: bool = False,
    passages: list[Passage] | None = None,
    offset: float = 0.0,
) -> Answer:
    """The checked ``Answer`` from a model's output ``raw`` to ``prompt``.

    Withheld if it repeats the system prompt; abstained if it refuses or cites nothing;
    citations renumbered by first mention; links not in a cited passage removed; pending
    review when a sentence is unsupported, a link was removed, the answer was cut off, or the
    confidence is below ``review_threshold``.
    """
    passages = prompt.sources if passages is None else passages
    common: dict[str, Any] = {"prompt": prompt.text, "model": model, "passages": passages}
    if _leaks(raw, shingles=_leak_shingles(prompt.system), nonce=prompt.nonce):
        return Answer(
            text=WITHHELD,
            citations=[],
            confidence=0.0,
            status="pending_review",
            review_reason="the model's output repeated its instructions; withheld",
            completion=raw,
            **common,
        )
    renumber = _Renumbering(len(prompt.sources))
    text = renumber(raw.strip()).strip()
    if _contains_phrase(text, REFUSAL) or not renumber.numbers:
        why = "the model found no answer" if _contains_phrase(text, REFUSAL) else None
        return _abstain(
            prompt.text,
            passages,
            model=model,
            why=why or "the model's answer cites no passage",
            completion=raw,
        )
    order = sorted(renumber.numbers.items(), key=lambda item: item[1])
    cited = {new: prompt.sources[old - 1] for old, new in order}
    allowed = [prompt.shown[old - 1] for old, _ in order]
    text, removed = _strip_links(text, allowed)
    assessment = assess(text, cited=cited, shown=prompt.shown)
    reasons = assessment.reasons()
    if removed:
        reasons.append(f"removed {removed} link(s) not found in the cited passages")
    if cut_off:
        reasons.append("the answer was cut off at the token limit")
    return Answer(
        text=text,
        citations=[Citation(n=n, text=p.text, locator=p.locator) for n, p in cited.items()],
        completion=raw,
        **common,
        **_judged(
            question,
            text,
            read=prompt.sources,
            cited=sorted(old - 1 for old, _ in order),
            assessment=assessment,
            reasons=reasons,
            review_threshold=review_threshold,
            offset=offset,
        ),
    )


@dataclass(frozen=True, slots=True)
class LLMOptions:
    """What the LLM answerer needs besides the question: the model, a token counter, limits."""

    llm: ChatModel
    count_tokens: Callable[[str], int]
    max_context_tokens: int
    max_answer_tokens: int


def _prepare(
    question: str,
    passages: list[Passage],
    options: LLMOptions,
    review_threshold: float,
    offset: float = 0.0,
) -> LLMPrompt | Answer:
    if max((p.score for p in passages), default=0.0) < ABSTAIN_SCORE:
        # Nothing close enough: no call, and no chance for the model to answer from memory.
        return answer(question, passages, review_threshold=review_threshold, offset=offset)
    prompt = build_llm_prompt(
        question,
        passages,
        count_tokens=options.count_tokens,
        max_context_tokens=options.max_context_tokens,
    )
    if not prompt.sources:
        return _abstain(prompt.text, passages, model=MODEL, why="no passage fits the context")
    return prompt


def answer_with_llm(
    question: str,
    passages: list[Passage],
    *,
    options: LLMOptions,
    review_threshold: float,
    offset: float = 0.0,
) -> Answer:
    """An answer written by the chat model from ``passages``, checked before it is returned."""
    prompt = _prepare(question, passages, options, review_threshold, offset)
    if isinstance(prompt, Answer):
        return prompt
    result = options.llm.complete(prompt.messages, options.max_answer_tokens)
    return finish_llm_answer(
        question,
        result.text,
        prompt,
        model=options.llm.model,
        review_threshold=review_threshold,
        cut_off=result.finish_reason == "length",
        passages=passages,
        offset=offset,
    )


class _StreamGuard:
    """Lets a streamed answer out a sentence at a time, after the checks a whole answer gets.

    Citations are renumbered as in the final answer; links not in a passage cited so far are
    removed; once the output repeats the system prompt or refuses, nothing more goes out.
    """

    def __init__(self, prompt: LLMPrompt) -> None:
        self.prompt = prompt
        self.renumber = _Renumbering(len(prompt.sources))
        self.shingles = _leak_shingles(prompt.system)
        self.pending = ""
        self.raw = ""  # everything let out, as the model wrote it
        self.stopped = False

    def feed(self, delta: str) -> str:
        self.pending += delta
        cut = 0
        for match in re.finditer(r"(?<=[.!?:\]\n])\s+(?=[^\s\[])", self.pending):
            cut = match.end()  # after a sentence, unless a citation of it may still be coming
        if not cut:
            return ""
        piece, self.pending = self.pending[:cut], self.pending[cut:]
        return self._release(piece)

    def flush(self) -> str:
        piece, self.pending = self.pending, ""
        return self._release(piece)

    def _release(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.raw += piece
        if _leaks(self.raw, shingles=self.shingles, nonce=self.prompt.nonce) or _contains_phrase(
            self.raw, REFUSAL
        ):
            self.stopped = True
            return ""
        text = self.renumber(piece)
        allowed = [self.prompt.shown[old - 1] for old in self.renumber.numbers]
        return _strip_links(text, allowed)[0]


def stream_with_llm(
    question: str,
    passages: list[Passage],
    *,
    options: LLMOptions,
    review_threshold: float,
    offset: float = 0.0,
) -> Iterator[str | Answer]:
    """The chat model's answer as it is written, in checked pieces, then the final ``Answer``.

    The final answer is authoritative: when the checks change it after pieces went out (a
    withheld or abstained answer, a link removed late), clients show the final text.
    """
    prompt = _prepare(question, passages, options, review_threshold, offset)
    if isinstance(prompt, Answer):  # abstained without asking the model
        yield prompt.text
        yield prompt
        return
    guard = _StreamGuard(prompt)
    raw: list[str] = []
    sent: list[str] = []
    for delta in options.llm.stream(prompt.messages, options.max_answer_tokens):
        raw.append(delta)
        if piece := guard.feed(delta):
            sent.append(piece)
            yield piece
    if piece := guard.flush():
        sent.append(piece)
        yield piece
    output = "".join(raw)
    final = finish_llm_answer(
        question,
        output,
        prompt,
        model=options.llm.model,
        review_threshold=review_threshold,
        cut_off=options.count_tokens(output) >= options.max_answer_tokens,
        passages=passages,
        offset=offset,
    )
    if not sent and final.text:
        yield final.text  # nothing went out (a refusal, a withheld answer): say so
    yield final
