"""An OpenAI-compatible API: any OpenAI client asks an asset as if it were a model.

``model`` is the asset's slug; the question is the last user message (earlier messages are not
read: each question stands alone, as on ``/v1/assets/{slug}/ask``), charged and recorded as an
ask is. Vouch's own fields ride along as extensions: ``citations`` and ``vouch``. Errors come in
OpenAI's shape (``app.errors.openai_error``) so that its clients show their message.
"""

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app import assistants, querying, sse
from app.api.schemas import AskIdempotencyKey, ChargePublic
from app.deps import CurrentAccount, RuntimeDep, SessionDep
from app.errors import openai_error
from assets.schemas import CitationPublic
from core.clock import utcnow
from core.errors import VouchError
from core.patterns import NOT_BLANK, documented


class NoQuestion(VouchError):
    """The messages hold no user message, so there is no question to ask."""

    status_code = 400


class OpenAIError(BaseModel):
    message: str = Field(description="What went wrong and how to fix it")
    type: str = Field(examples=["not_found_error", "insufficient_quota", "rate_limit_error"])
    param: str | None = None
    code: str | None = Field(description="Vouch's name of the error", examples=["AssetNotFound"])


class OpenAIErrorBody(BaseModel):
    """An error as OpenAI's clients read it."""

    error: OpenAIError


def _error(description: str) -> dict[str, Any]:
    return {"model": OpenAIErrorBody, "description": description}


router = APIRouter(
    tags=["openai"],
    responses={
        "4XX": _error("Refused; `error.message` says why"),
        "5XX": _error("Failed; `error.message` says why"),
        401: _error("No, malformed, unknown or revoked API key"),
    },
)


class ModelVouch(BaseModel):
    """Vouch's extension of a model: the asset behind it and what a question costs."""

    title: str
    price: str = Field(description="What the next question costs you, in a sentence")
    can_ask: bool = Field(description="Whether you could ask it now")


class ModelPublic(BaseModel):
    id: str = Field(description="The asset's slug: pass it as `model`")
    object: Literal["model"] = "model"
    created: int = Field(description="When the asset was created, Unix seconds")
    owned_by: str = Field(description="The expert's name")
    vouch: ModelVouch


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelPublic]


def _model(found: assistants.Askable) -> ModelPublic:
    asset = found.asset
    return ModelPublic(
        id=asset.slug,
        created=int(asset.created_at.timestamp()),
        owned_by=found.price["expert"]["name"] or asset.owner_id,
        vouch=ModelVouch(
            title=asset.title, price=found.price_line(), can_ask=found.price["can_ask"]
        ),
    )


@router.get("/models")
def list_models(session: SessionDep, runtime: RuntimeDep, account: CurrentAccount) -> ModelList:
    """The assets your key may ask (published ones and your own), as OpenAI models."""
    found = assistants.askable_assets(session, runtime, account=account)
    return ModelList(data=[_model(a) for a in found])


@router.get("/models/{slug}", responses={404: _error("No such asset, or not one you may ask")})
def get_model(
    session: SessionDep, runtime: RuntimeDep, account: CurrentAccount, slug: str
) -> ModelPublic:
    return _model(assistants.askable(session, runtime, account=account, slug=slug))


# Up to 4 parts of up to 499 characters, joined by newlines: within a question's 2000.
_PART_CHARS = 499


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=_PART_CHARS, json_schema_extra=documented(NOT_BLANK))


class UserMessage(BaseModel):
    role: Literal["user"]
    content: (
        Annotated[
            str, Field(min_length=1, max_length=2000, json_schema_extra=documented(NOT_BLANK))
        ]
        | Annotated[list[TextPart], Field(min_length=1, max_length=4)]
    ) = Field(description="The question: text, or text parts joined by newlines")
    name: str | None = None

    def question(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)


class OtherMessage(BaseModel):
    """A system, assistant or tool message: accepted, and not read."""

    role: Literal["system", "developer", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    include_usage: bool = Field(
        default=False, description="Send a last chunk with `usage` (and no choices)"
    )


_IGNORED = "Accepted and ignored: an answer is drawn from the asset's sources"


class ChatCompletionRequest(BaseModel):
    model: str = Field(description="The slug of the asset to ask (see `GET /v1/models`)")
    messages: list[Annotated[UserMessage | OtherMessage, Field(discriminator="role")]] = Field(
        min_length=1,
        description="The last user message is the question; earlier messages are not read",
        json_schema_extra={
            "contains": {
                "type": "object",
                "properties": {"role": {"const": "user"}},
                "required": ["role"],
            }
        },
    )
    stream: bool = Field(default=False, description="Answer as `chat.completion.chunk` events")
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, description=_IGNORED)
    temperature: float | None = Field(default=None, description=_IGNORED)
    top_p: float | None = Field(default=None, description=_IGNORED)
    max_tokens: int | None = Field(default=None, description=_IGNORED)
    max_completion_tokens: int | None = Field(default=None, description=_IGNORED)
    n: int | None = Field(default=None, description=f"{_IGNORED}: one choice is returned")
    seed: int | None = Field(default=None, description=_IGNORED)
    stop: str | list[str] | None = Field(default=None, description=_IGNORED)
    presence_penalty: float | None = Field(default=None, description=_IGNORED)
    frequency_penalty: float | None = Field(default=None, description=_IGNORED)

    def question(self) -> str:
        for message in reversed(self.messages):
            if isinstance(message, UserMessage):
                return message.question()
        raise NoQuestion("the messages hold no user message: send the question as one")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The answer, citing its sources as [n]")


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class VouchExtension(BaseModel):
    """Vouch's extension of an answer: the consultation, how sure it is, what it cost."""

    consultation_id: str
    status: str = Field(description="final, pending_review (the expert reviews it) or abstained")
    confidence: float = Field(description="The calibrated probability that the answer is right")
    review_reason: str | None
    charge: ChargePublic | None
    answer: str | None = Field(
        default=None,
        description="Streams only, when the checked answer differs from the text streamed: "
        "the answer as recorded",
    )


class ChatCompletion(BaseModel):
    id: str = Field(description="`chatcmpl-` and the consultation's id")
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[CitationPublic] = Field(
        description="Vouch's extension: the sources the answer's [n] markers cite"
    )
    vouch: VouchExtension


_STREAMED = (
    "The answer; with `stream: true`, server-sent `data:` lines of `chat.completion.chunk` "
    "JSON: the role, pieces of the answer, a last chunk with `finish_reason` and the "
    "`citations` and `vouch` extensions, a `usage` chunk when `stream_options.include_usage`, "
    "then `[DONE]`. An error once the stream started is a chunk with `error` instead."
)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {
            "description": _STREAMED,
            "content": {sse.MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        400: _error("No user message in `messages`"),
        402: _error("Not enough credits for the price"),
        403: _error("Subscription needed, or its questions used"),
        404: _error("No such asset (`model`), or not one you may ask"),
        409: _error("Idempotency-Key reused for another question"),
        422: _error("Invalid input"),
        429: _error("Too many questions; see Retry-After"),
        503: _error("The language model endpoint failed"),
    },
)
def chat_completions(
    session: SessionDep,
    runtime: RuntimeDep,
    account: CurrentAccount,
    body: ChatCompletionRequest,
    idempotency_key: AskIdempotencyKey = None,
) -> ChatCompletion | Response:
    """Ask the asset named by ``model``, as ``POST /v1/assets/{slug}/ask`` does: the same
    checks, price, escrow hold and recorded consultation, in OpenAI's chat completion shape."""
    question = body.question()
    if body.stream:
        started = querying.start_ask_stream(
            session,
            runtime,
            account=account,
            slug=body.model,
            question=question,
            idempotency_key=idempotency_key,
        )
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        if isinstance(started, querying.AskStream):
            chunks = _Chunks(f"chatcmpl-{uuid.uuid4().hex}", body.model, include_usage)
            return sse.response(chunks.of(started.events()))
        chunks = _Chunks(f"chatcmpl-{started.consultation.id}", body.model, include_usage)
        return sse.response(chunks.of(_replayed(started)))
    result = querying.ask(
        session,
        runtime,
        account=account,
        slug=body.model,
        question=question,
        idempotency_key=idempotency_key,
    )
    public = result.public()
    return ChatCompletion(
        id=f"chatcmpl-{result.consultation.id}",
        created=int(result.consultation.created_at.timestamp()),
        model=body.model,
        choices=[Choice(message=AssistantMessage(content=public["answer"]))],
        usage=_usage(public),
        citations=public["citations"],
        vouch=_vouch(public),
    )


def _usage(public: dict[str, Any]) -> Usage:
    prompt, completion = public["tokens"]["prompt"], public["tokens"]["completion"]
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _vouch(public: dict[str, Any], answer: str | None = None) -> VouchExtension:
    return VouchExtension(
        consultation_id=public["consultation_id"],
        status=public["status"],
        confidence=public["confidence"],
        review_reason=public["review_reason"],
        charge=public["charge"],
        answer=answer,
    )


def _replayed(result: querying.AskResult) -> Iterator[querying.AskEvent]:
    """An earlier answer (a known Idempotency-Key) as the events of a stream."""
    public = result.public()
    yield querying.AskEvent("delta", {"text": public["answer"]})
    yield querying.AskEvent("done", public)


def _data(payload: Any) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


class _Chunks:
    """A streamed answer's events as OpenAI's ``chat.completion.chunk`` stream."""

    def __init__(self, chunk_id: str, model: str, include_usage: bool) -> None:
        self._base: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": int(utcnow().timestamp()),
            "model": model,
        }
        # As OpenAI does: with include_usage, every chunk says "usage": null but the last.
        if include_usage:
            self._base["usage"] = None
        self._include_usage = include_usage

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _data({**self._base, "choices": [choice], **extra})

    def of(self, events: Iterable[querying.AskEvent]) -> Iterator[str]:
        yield self._chunk({"role": "assistant", "content": ""})
        streamed: list[str] = []
        done: dict[str, Any] | None = None
        for event in events:
            if event.name == "delta":
                streamed.append(event.data["text"])
                yield self._chunk({"content": event.data["text"]})
            elif event.name == "error":
                # The status was sent already: OpenAI's clients raise on a chunk with "error".
                yield _data(openai_error(None, event.data["error"], event.data["detail"]))
                yield "data: [DONE]\n\n"
                return
            else:
                done = event.data
        if done is None:  # pragma: no cover - an answer stream ends with done or error
            raise RuntimeError("the answer stream ended without an answer")
        text, answer = "".join(streamed), done["answer"]
        differs = None
        if answer != text:
            # Checks on the whole answer may change it: send what was missing, or else the
            # recorded answer whole in the extension.
            if answer.startswith(text):
                yield self._chunk({"content": answer[len(text) :]})
            else:
                differs = answer
        citations = [CitationPublic.model_validate(c).model_dump() for c in done["citations"]]
        vouch = _vouch(done, differs).model_dump(mode="json")
        yield self._chunk({}, "stop", citations=citations, vouch=vouch)
        if self._include_usage:
            usage = _usage(done).model_dump()
            yield _data({**self._base, "choices": [], "usage": usage})
        yield "data: [DONE]\n\n"
