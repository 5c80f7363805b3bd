"""The chat client against a real OpenAI-compatible server: answers, streams, clear failures."""

from collections.abc import Iterator

import httpx
import pytest

from assets.errors import LLMUnavailable
from assets.llm import Message, OpenAIChat, build_llm
from core.config import LLMSettings
from tests.servers import CHAT_REFUSAL, ChatServer, chat_server, free_port

MESSAGES: list[Message] = [
    {"role": "system", "content": "Answer from the passages."},
    {
        "role": "user",
        "content": "Question: When is the store closed?\n\nPassages:\n\n"
        "<<<PASSAGE 1 abc>>>\nsource: policies.md\nOn Sundays the store is closed.\n"
        "<<<END 1 abc>>>",
    },
]


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with chat_server() as server:
        yield server


@pytest.fixture
def llm(chat: ChatServer) -> Iterator[OpenAIChat]:
    client = build_llm(LLMSettings(base_url=chat.url, model=chat.model, timeout_seconds=10))
    yield client
    client.close()


def test_the_test_server_lists_its_model(chat: ChatServer) -> None:
    models = httpx.get(f"{chat.url}/models").json()
    assert [m["id"] for m in models["data"]] == [chat.model]


def test_complete_returns_text_model_and_finish_reason(llm: OpenAIChat, chat: ChatServer) -> None:
    result = llm.complete(MESSAGES, 100)
    assert result.text == "On Sundays the store is closed. [1]"
    assert result.model == chat.model
    assert result.finish_reason == "stop"
    (sent,) = chat.requests
    assert sent["messages"] == MESSAGES
    assert sent["max_tokens"] == 100
    assert sent["temperature"] == 0


def test_stream_yields_the_text_in_pieces(llm: OpenAIChat, chat: ChatServer) -> None:
    pieces = list(llm.stream(MESSAGES, 100))
    assert len(pieces) > 3
    assert "".join(pieces) == "On Sundays the store is closed. [1]"
    assert chat.requests[0]["stream"] is True


def test_refusing_model(llm: OpenAIChat, chat: ChatServer) -> None:
    chat.mode = "refuse"
    assert llm.complete(MESSAGES, 100).text == CHAT_REFUSAL


def test_server_error_is_a_clear_503(llm: OpenAIChat, chat: ChatServer) -> None:
    chat.mode = "error"
    with pytest.raises(LLMUnavailable) as caught:
        llm.complete(MESSAGES, 100)
    assert caught.value.status_code == 503
    assert caught.value.message == (
        "the language model endpoint failed with HTTP 500: the model crashed"
    )
    with pytest.raises(LLMUnavailable, match="HTTP 500"):
        list(llm.stream(MESSAGES, 100))


def test_answer_without_choices_is_a_bad_answer(llm: OpenAIChat, chat: ChatServer) -> None:
    chat.mode = "broken"
    with pytest.raises(LLMUnavailable, match="gave no usable answer: it returned no answer"):
        llm.complete(MESSAGES, 100)


def test_failure_midway_through_a_stream_raises(llm: OpenAIChat, chat: ChatServer) -> None:
    chat.mode = "broken"
    stream = llm.stream(MESSAGES, 100)
    assert next(stream)  # some text comes before the failure
    with pytest.raises(LLMUnavailable, match="the model fell over"):
        list(stream)


def test_unreachable_endpoint() -> None:
    client = OpenAIChat(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout_seconds=5)
    try:
        with pytest.raises(LLMUnavailable, match="could not be reached"):
            client.complete(MESSAGES, 10)
    finally:
        client.close()


def test_no_llm_configured_is_refused() -> None:
    assert not LLMSettings().enabled
    with pytest.raises(LLMUnavailable, match="VOUCH_LLM__BASE_URL"):
        build_llm(LLMSettings())
