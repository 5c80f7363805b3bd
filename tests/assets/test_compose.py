"""What the extractive answerer quotes, by kind of corpus: the answer the question wants."""

from typing import Any

from assets.answering import answer
from assets.answering.code_quotes import _constants_named
from assets.compose import defined_term, intent_of
from assets.retrieval import Passage


def _passage(text: str, kind: str, score: float = 0.7, **locator: Any) -> Passage:
    return Passage(id=f"p-{hash(text)}", text=text, kind=kind, locator=locator, score=score)


def test_a_question_is_read_for_the_kind_of_answer_it_wants() -> None:
    assert {"number", "duration"} <= intent_of("How long does urllib3 wait by default?").wants
    assert "default" in intent_of("How long does urllib3 wait by default?").wants
    assert "amount" in intent_of("What is the maximum fine for a breach?").wants
    assert "cases" in intent_of("When must a provider notify the authority?").wants
    assert "computation" in intent_of("How is the score computed?").wants
    assert "tests" not in intent_of("How is the score computed?").wants
    assert defined_term("What counts as a 'deployer'?") == "deployer"


def test_code_answers_a_default_with_its_assignment_not_with_a_test() -> None:
    implementation = _passage(
        "class PoolManager:\n"
        "    def __init__(self, num_pools=10, headers=None):\n"
        "        self.pools = RecentlyUsedContainer(num_pools)\n",
        "code",
        score=0.62,
        path="src/poolmanager.py",
        symbol="PoolManager",
        lines=[40, 42],
    )
    test = _passage(
        "def test_pool_manager_default_pools():\n"
        "    manager = PoolManager()\n"
        "    assert manager is not None  # pools default\n",
        "code",
        score=0.66,
        path="tests/test_poolmanager.py",
        symbol="test_pool_manager_default_pools",
        lines=[10, 12],
    )
    result = answer(
        "How many pools does a PoolManager keep by default?",
        [test, implementation],
        review_threshold=0.4,
    )
    assert result.citations[0].locator["path"] == "src/poolmanager.py"
    assert "num_pools=10" in result.text.split("```")[1]


def test_code_answers_with_the_value_of_a_constant_it_reads() -> None:
    init = _passage(
        "    def __init__(\n"
        "        self,\n"
        "        total=10,\n"
        "        allowed_methods=DEFAULT_ALLOWED_METHODS,\n"
        "        status_forcelist=None,\n"
        "    ):\n"
        "        self.total = total\n"
        "        self.allowed_methods = allowed_methods\n",
        "code", score=0.62, path="util/retry.py", symbol="Retry.__init__", lines=[222, 229],
    )  # fmt: skip
    check = _passage(
        "    def _is_method_retryable(self, method):\n"
        '        """Checks if a given HTTP method should be retried upon."""\n'
        "        if self.allowed_methods and method.upper() not in self.allowed_methods:\n"
        "            return False\n"
        "        return True\n",
        "code", score=0.6, path="util/retry.py", symbol="Retry._is_method_retryable",
        lines=[415, 419],
    )  # fmt: skip
    is_retry = _passage(
        "    def is_retry(self, method, status_code):\n"
        '        """Is this method and status code retryable?"""\n'
        "        if not self._is_method_retryable(method):\n"
        "            return False\n"
        "        return status_code in self.status_forcelist\n",
        "code", score=0.58, path="util/retry.py", symbol="Retry.is_retry", lines=[423, 427],
    )  # fmt: skip
    constants = _passage(  # a docstring's tail, then the class's constants
        "    :param int retry_after_max: Number of seconds to allow as the maximum for\n"
        "        Retry-After headers.\n"
        '    """\n'
        "\n"
        "    #: Status codes that trigger a retry when a Retry-After header is present.\n"
        "    RETRY_AFTER_STATUS_CODES = frozenset([413, 429, 503])\n"
        "\n"
        "    DEFAULT_ALLOWED_METHODS = frozenset(\n"
        '        ["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE"]\n'
        "    )\n",
        "code", score=0.41, path="util/retry.py", symbol="Retry", lines=[190, 199],
    )  # fmt: skip
    question = "Which HTTP methods does Retry allow by default? Is POST retried?"
    result = answer(question, [init, check, is_retry, constants], review_threshold=0.4)
    assert "frozenset(\n" in result.text  # quoted whole, from its passage or on its own
    assert '["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE"]' in result.text
    # When the passage holding the constants is not among those quoted, the assignment of the
    # constant the quoted code reads is quoted on its own, cited by its own lines; a constant
    # whose name shares no word with the question (RETRY_AFTER_STATUS_CODES) is left out.
    quoted = "\n".join(p.text for p in (init, check, is_retry))
    (definition,) = _constants_named(question, quoted, [init, check, is_retry, constants])
    assert definition.text == (
        'DEFAULT_ALLOWED_METHODS = frozenset(\n    ["HEAD", "GET", "PUT", "DELETE", "OPTIONS", '
        '"TRACE"]\n)'
    )
    assert definition.locator == {"path": "util/retry.py", "symbol": "Retry", "lines": [197, 199]}
    assert _constants_named(question, constants.text, [constants]) == []  # assigned in the quote


def test_a_regulation_answer_quotes_the_whole_provision_with_its_amounts() -> None:
    provision = (
        "Non-compliance with the prohibition of the AI practices referred to in Article 5 "
        "shall be subject to administrative fines of up to EUR 35 000 000 or, if the offender "
        "is an undertaking, up to 7 % of its total worldwide annual turnover, whichever is "
        "higher.\n"
        "(a) the nature, gravity and duration of the infringement shall be taken into account;\n"
        "(b) whether fines were already applied by other authorities."
    )
    recital = (
        "(150) Penalties should be effective. Member States should lay down rules on fines "
        "for the infringement of this Regulation."
    )
    result = answer(
        "What is the maximum fine for using a prohibited AI practice?",
        [
            _passage(recital, "regulation", score=0.66, path="act.md", section="Recital 150"),
            _passage(provision, "regulation", score=0.64, path="act.md", section="Article 99(3)"),
        ],
        review_threshold=0.4,
    )
    assert result.citations[0].locator["section"] == "Article 99(3)"
    assert "EUR 35 000 000" in result.text
    assert "7 %" in result.text
    assert "(b) whether fines were already applied" in result.text  # with all its points


def test_a_paper_answer_keeps_the_formula_whole_with_its_page() -> None:
    paragraph = (
        "The smoothing parameter is chosen by minimising the criterion "
        "AIC = -2 log L + 2k, where L is the likelihood and k the number of parameters. "
        "Models with lower AIC are preferred."
    )
    other = "We thank the reviewers for their comments on an earlier draft of this paper."
    result = answer(
        "How is the smoothing parameter chosen?",
        [
            _passage(paragraph, "paper", score=0.6, path="forecast.pdf", page=7, section="3.2"),
            _passage(other, "paper", score=0.5, path="forecast.pdf", page=30),
        ],
        review_threshold=0.4,
    )
    assert "AIC = -2 log L + 2k" in result.text
    assert [c.locator["page"] for c in result.citations] == [7]
