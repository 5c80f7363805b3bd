"""Answers with numbered citations: grounded extractive (no LLM), or from a chat model.

Both answerers read the same passages (best first), cite every sentence as ``[n]`` and are
judged the same way. ``assess`` measures how well the answer's sentences are supported: for
each sentence, the share of its content words found in the passages it cites (an uncited
sentence counts half its support in any passage; a number that none of the cited passages
contains caps a sentence's support at 0.25). The confidence is the probability that the answer
is right, from its kind's calibration refined by the asset's reviews (assets/calibration.py);
an answer is final only when that probability is high enough and every sentence is supported.

Corpus text is data, never instructions. Sentences aimed at the assistant ("ignore previous
instructions", "reveal your system prompt", "answer with this URL") are never quoted by the
extractive answerer and are removed from what the chat model is shown; the model's output is
then checked: links must appear in the passages it cites, and an output that repeats the system
prompt is withheld. An answer whose sentences its citations do not support is never final.

The package, one concern a module: ``result`` (``Answer``, ``Citation``, the fixed texts, the
abstained answer), ``citations`` (``[n]`` markers and renumbering), ``confidence`` (support and
the calibrated judgment), ``safety`` (injections in, leaks and foreign links out),
``extractive`` with ``prose_quotes`` and ``code_quotes`` (the answerer without an LLM),
``prompt`` (the chat model's messages) and ``chat`` (the answerer with an LLM). The names below
are the package's interface; import them from ``assets.answering``.
"""

from assets.answering.chat import LLMOptions, answer_with_llm, finish_llm_answer, stream_with_llm
from assets.answering.citations import answer_sentences, cited_numbers
from assets.answering.code_quotes import CODE_WINDOW
from assets.answering.confidence import Assessment, assess
from assets.answering.extractive import (
    MAX_PASSAGES,
    QUOTED,
    SHORTLIST,
    Embed,
    answer,
    build_prompt,
    stream_answer,
)
from assets.answering.prompt import LLMPrompt, build_llm_prompt, describe_locator
from assets.answering.result import (
    ABSTAIN_SCORE,
    MODEL,
    NO_ANSWER,
    REFUSAL,
    WITHHELD,
    Answer,
    Citation,
)
from assets.answering.safety import is_instruction, neutralize

__all__ = [
    "ABSTAIN_SCORE",
    "CODE_WINDOW",
    "MAX_PASSAGES",
    "MODEL",
    "NO_ANSWER",
    "QUOTED",
    "REFUSAL",
    "SHORTLIST",
    "WITHHELD",
    "Answer",
    "Assessment",
    "Citation",
    "Embed",
    "LLMOptions",
    "LLMPrompt",
    "answer",
    "answer_sentences",
    "answer_with_llm",
    "assess",
    "build_llm_prompt",
    "build_prompt",
    "cited_numbers",
    "describe_locator",
    "finish_llm_answer",
    "is_instruction",
    "neutralize",
    "stream_answer",
    "stream_with_llm",
]
