"""docs/client.md is true: each Python example runs as written against the demo with the demo
client's key (where it searches, on a plan that sells the passages), and the install line
names the package's real extras."""

import re
import tomllib
from typing import Any

import pytest
from vouch_client import AsyncVouch, Vouch

from tests.client.conftest import SEARCH_PRICE, Demo
from tests.servers import ROOT

DOC = (ROOT / "docs" / "client.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC, re.S)
SEARCHES = ("VouchRetriever", "VouchLangChainRetriever")


def _clients(names: dict[str, Any]) -> list[Vouch]:
    """The clients an example made, to close them after it."""
    found = list(names.values())
    found += [getattr(v, "client", None) for v in names.values()]
    return [v for v in found if isinstance(v, Vouch)]


def test_there_is_an_example_for_the_client_and_each_adapter() -> None:
    # The most specific call each example makes (an adapter's example asks or searches too).
    calls = ("VouchRetriever(", "VouchQueryEngine(", "VouchLangChainRetriever(", "ask_stream(")
    made = [next((c for c in calls if c in e), "ask(") for e in EXAMPLES]
    assert sorted(made) == sorted([*calls, "ask("])


def test_the_install_line_names_the_packages_extras() -> None:
    pyproject = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    line = re.search(r"pip install -e '\./clients/python\[(.*?)\]'", DOC)
    assert line is not None
    assert set(line.group(1).split(",")) == extras == {"llama-index", "langchain"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_example_runs_against_the_demo(
    example: str,
    served: Demo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    searches = any(f"{name}(" in example for name in SEARCHES)  # the demo sells its passages
    monkeypatch.setenv("VOUCH_API_KEY", served.client_key)
    monkeypatch.setenv("VOUCH_URL", served.base)
    names: dict[str, Any] = {}
    try:
        exec(compile(example, "docs/client.md", "exec"), names)
    finally:
        for client in _clients(names):
            client.close()
    printed = capsys.readouterr().out
    assert "'path': 'ingestion.md'" in printed
    if searches:
        assert served.charges() == []
        assert served.credits() == 1000 - SEARCH_PRICE  # one search, paid at once
    else:
        (charge,) = served.charges()
        assert (charge.amount, charge.status) == (25, "held")
    assert not any(isinstance(v, AsyncVouch) for v in names.values())
