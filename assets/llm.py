"""The chat model behind LLM answers: the one module that imports ``openai``.

Any OpenAI-compatible ``/chat/completions`` endpoint works (OpenAI, vLLM, llama.cpp's server,
Ollama). Every failure of the endpoint becomes ``LLMUnavailable`` (503) with a message that says
whether it could not be reached or answered badly; the endpoint's address is logged, not shown.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, cast

from assets.errors import LLMUnavailable
from core.config import LLMSettings

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger(__name__)
# One retry covers a dropped connection; more would keep a client waiting on a dead endpoint.
MAX_RETRIES = 1


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class LLMResult:
    text: str
    model: str
    finish_reason: str | None  # "stop", or "length" when max_tokens cut the answer off


class ChatModel(Protocol):
    """A chat model: a whole answer at once, or its text piece by piece."""

    @property
    def model(self) -> str: ...

    def complete(self, messages: Sequence[Message], max_tokens: int) -> LLMResult: ...

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]: ...

    def close(self) -> None: ...


class OpenAIChat:
    """``openai.OpenAI`` pointed at ``base_url``; deterministic sampling (temperature 0)."""

    def __init__(
        self, *, base_url: str, model: str, api_key: str = "", timeout_seconds: float = 60.0
    ) -> None:
        import openai  # only when an LLM is configured: it takes most of a second to import

        self._model = model
        self._base_url = base_url
        self._client: openai.OpenAI = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "none",  # local servers need no key, the SDK insists on one
            timeout=timeout_seconds,
            max_retries=MAX_RETRIES,
        )
        self._openai = openai

    @property
    def model(self) -> str:
        return self._model

    def complete(self, messages: Sequence[Message], max_tokens: int) -> LLMResult:
        """The whole answer to ``messages``, at most ``max_tokens`` long."""
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=_params(messages),
                max_tokens=max_tokens,
                temperature=0,
            )
        except self._openai.OpenAIError as exc:
            raise self._unavailable(exc) from exc
        if not response.choices or response.choices[0].message.content is None:
            raise self._bad_answer("it returned no answer text")
        choice = response.choices[0]
        return LLMResult(
            text=choice.message.content or "",
            model=response.model or self._model,
            finish_reason=choice.finish_reason,
        )

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        """The answer's text as it is generated, in pieces; failures raise as they happen."""
        try:
            chunks = self._client.chat.completions.create(
                model=self._model,
                messages=_params(messages),
                max_tokens=max_tokens,
                temperature=0,
                stream=True,
            )
            with chunks:
                for chunk in chunks:
                    for choice in chunk.choices:
                        if choice.index == 0 and choice.delta.content:
                            yield choice.delta.content
        except self._openai.OpenAIError as exc:
            raise self._unavailable(exc) from exc
        except ValueError as exc:  # a chunk that is not JSON
            raise self._bad_answer(f"its stream could not be read ({exc})") from exc

    def close(self) -> None:
        self._client.close()

    def _unavailable(self, exc: Exception) -> LLMUnavailable:
        log.warning("LLM endpoint %s failed: %r", self._base_url, exc)
        if isinstance(exc, self._openai.APITimeoutError):
            return LLMUnavailable("the language model endpoint did not answer in time")
        if isinstance(exc, self._openai.APIConnectionError):
            return LLMUnavailable("the language model endpoint could not be reached")
        if isinstance(exc, self._openai.APIStatusError):
            return LLMUnavailable(
                f"the language model endpoint failed with HTTP {exc.status_code}{_detail(exc.body)}"
            )
        return self._bad_answer(f"it failed with {type(exc).__name__}: {_clip(str(exc))}")

    def _bad_answer(self, why: str) -> LLMUnavailable:
        log.warning("LLM endpoint %s gave a bad answer: %s", self._base_url, why)
        return LLMUnavailable(f"the language model endpoint gave no usable answer: {why}")


def _params(messages: Sequence[Message]) -> "list[ChatCompletionMessageParam]":
    return cast("list[ChatCompletionMessageParam]", [dict(m) for m in messages])


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(body: Any) -> str:
    message = body.get("message") if isinstance(body, dict) else None
    return f": {_clip(message)}" if isinstance(message, str) and message else ""


def build_llm(settings: LLMSettings) -> OpenAIChat:
    """The chat model the settings name; refused when no endpoint and model are configured."""
    if not (settings.base_url and settings.model):
        raise LLMUnavailable(
            "no language model is configured: set VOUCH_LLM__BASE_URL and VOUCH_LLM__MODEL"
        )
    return OpenAIChat(
        base_url=settings.base_url,
        model=settings.model,
        api_key=settings.api_key.get_secret_value(),
        timeout_seconds=settings.timeout_seconds,
    )
