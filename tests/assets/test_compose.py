"""What the extractive answerer quotes, by kind of corpus: the answer the question wants."""

from typing import Any

from assets.answering import answer
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
