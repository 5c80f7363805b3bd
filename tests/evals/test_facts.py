"""Facts an answer must state, found the way a reader would read them."""

import pytest

from evals.facts import facts_stated, normalise


@pytest.mark.parametrize(
    ("fact", "text"),
    [
        (["20 000 000"], "fines of up to EUR 20,000,000 [1]"),
        (["20,000,000"], "up to EUR 20 000 000"),
        (["20000000"], "up to EUR 20\u202f000\u202f000"),  # narrow no-break spaces
        (["4 %"], "or 4% of its turnover"),
        (["4%"], "or 4 % of its turnover"),
        (["DEFAULT_BACKOFF_MAX"], "`DEFAULT_BACKOFF_MAX = 120` [2]"),
        (["effective"], "the e\ufb00ective date"),  # a PDF ligature
        (["-1"], "returns \u22121 when closed"),  # a minus sign
        (["x", "120 seconds"], "waits at most 120 seconds."),
        (["Retry"], "a RETRY counts"),
        (["429"], "RETRY_AFTER_STATUS_CODES = frozenset([413, 429, 503]) [4]"),  # a list in code
    ],
)
def test_stated(fact: list[str], text: str) -> None:
    assert facts_stated([fact], text) == [True]


@pytest.mark.parametrize(
    ("fact", "text"),
    [
        (["3"], "it retries 30 times"),  # 3 is not in 30
        (["3"], "version 1.3.0"),
        (["retry"], "retryable errors"),
        (["20 000 000"], "EUR 200 000 000"),
        (["7 %"], "17 % of it"),
        (["12"], "see [12]"),  # a citation marker is not a number of the answer
        (["2"], "as [1, 2] say"),
    ],
)
def test_not_stated(fact: list[str], text: str) -> None:
    assert facts_stated([fact], text) == [False]


def test_each_fact_needs_one_of_its_alternatives() -> None:
    text = "Retry.DEFAULT is Retry(3): three retries, then MaxRetryError."
    assert facts_stated([["3", "three"], ["MaxRetryError"], ["backoff"]], text) == [
        True,
        True,
        False,
    ]


def test_normalise_collapses_space_and_case() -> None:
    assert normalise("  The  Fine\nIS  1 000 000 [3] ") == "the fine is 1000000"
