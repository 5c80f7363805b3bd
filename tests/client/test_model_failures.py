"""When the asset's language model fails: a streamed answer ends in ``ServerError`` with the
server's message, a plain one is refused 503 after the client's retries; nothing is charged."""

from collections.abc import Iterator

import pytest
from vouch_client import AskDelta, ServerError

from core.config import LLMSettings, Settings
from tests.client.conftest import QUESTION, SLUG, Demo
from tests.servers import ChatServer, chat_server


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with chat_server() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, chat: ChatServer) -> Settings:
    llm = LLMSettings(base_url=chat.url, model=chat.model, timeout_seconds=10)
    return settings.model_copy(update={"llm": llm})


def test_a_model_failing_midway_ends_the_stream_with_a_server_error(
    served: Demo, chat: ChatServer
) -> None:
    chat.mode = "broken"
    received: list[str] = []

    def read() -> None:
        for event in served.vouch().ask_stream(SLUG, QUESTION):
            assert isinstance(event, AskDelta)
            received.append(event.text)

    with pytest.raises(ServerError) as failed:
        read()
    assert received  # the answer had started
    assert "the model fell over" in failed.value.message
    assert failed.value.status is None  # the stream had begun with 200
    assert served.charges() == []
    assert served.credits() == 1000


def test_a_failing_model_is_retried_with_the_same_key_then_a_503(
    served: Demo, chat: ChatServer
) -> None:
    chat.mode = "error"
    with pytest.raises(ServerError):
        served.vouch(max_retries=0).ask(SLUG, QUESTION)
    per_ask = len(chat.requests)  # the server tries its model more than once itself
    with pytest.raises(ServerError) as failed:
        served.vouch(max_retries=2, max_retry_wait=0.1).ask(SLUG, QUESTION)
    assert failed.value.status == 503
    assert failed.value.message
    assert len(chat.requests) == 4 * per_ask  # the first ask, then this one sent 3 times
    assert served.charges() == []
    chat.mode = "grounded"
    answer = served.vouch().ask(SLUG, QUESTION)  # the model is back
    assert answer.citations
    assert len(served.charges()) == 1
