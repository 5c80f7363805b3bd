"""The clients: ``Vouch`` (sync) and ``AsyncVouch``, over one description of each request.

``_Api`` builds every request (``_Call``) and decodes every answer; the two clients only send
them, with the same retry rule: a request that is safe to send again (a read, or an ask or a
search with its Idempotency-Key) is retried on a lost connection, a 5xx or a 429, waiting as
Retry-After says up to ``max_retry_wait`` seconds. An ask or a search makes its key once, so
every retry of it is the same request to the server: charged once.
"""

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from vouch_client import errors
from vouch_client.models import (
    AskDelta,
    AskPublic,
    AskRequest,
    AssetPublic,
    ChargePublic,
    ClientSummary,
    FlagCreated,
    FlagIn,
    PlanIn,
    PlanPublic,
    PricePublic,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SubscriptionPublic,
)

__version__ = "0.1.0"
DEFAULT_URL = "http://127.0.0.1:8000"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_STREAM = "text/event-stream"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")

# The shape of each answer, built once.
_ASSETS: TypeAdapter[list[AssetPublic]] = TypeAdapter(list[AssetPublic])
_MAYBE_PLAN: TypeAdapter[PlanPublic | None] = TypeAdapter(PlanPublic | None)
_ASSET_PUBLIC: TypeAdapter[AssetPublic] = TypeAdapter(AssetPublic)
_PRICE_PUBLIC: TypeAdapter[PricePublic] = TypeAdapter(PricePublic)
_PLAN_PUBLIC: TypeAdapter[PlanPublic] = TypeAdapter(PlanPublic)
_SUBSCRIPTION_PUBLIC: TypeAdapter[SubscriptionPublic] = TypeAdapter(SubscriptionPublic)
_CLIENT_SUMMARY: TypeAdapter[ClientSummary] = TypeAdapter(ClientSummary)
_SEARCH_RESPONSE: TypeAdapter[SearchResponse] = TypeAdapter(SearchResponse)
_ASK_PUBLIC: TypeAdapter[AskPublic] = TypeAdapter(AskPublic)
_CHARGE_PUBLIC: TypeAdapter[ChargePublic] = TypeAdapter(ChargePublic)
_FLAG_CREATED: TypeAdapter[FlagCreated] = TypeAdapter(FlagCreated)

AskEvent = AskDelta | AskPublic
"""What ``ask_stream`` yields: pieces of the answer's text, then the whole answer once."""


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Safe to send again: a read, or an ask or a search carrying its Idempotency-Key.
    retry: bool = False


def _slug(value: str) -> str:
    return quote(value, safe="")


def _body(model: Any) -> Any:
    return model.model_dump(mode="json", exclude_unset=True)


class _Api:
    """Requests and decoding shared by both clients: no I/O here."""

    @staticmethod
    def assets(mine: bool) -> _Call:
        return _Call("GET", "/v1/assets", params={"mine": "true"} if mine else None, retry=True)

    @staticmethod
    def asset(slug: str) -> _Call:
        return _Call("GET", f"/v1/assets/{_slug(slug)}", retry=True)

    @staticmethod
    def price(slug: str) -> _Call:
        return _Call("GET", f"/v1/assets/{_slug(slug)}/price", retry=True)

    @staticmethod
    def plan(slug: str) -> _Call:
        return _Call("GET", f"/v1/assets/{_slug(slug)}/plan", retry=True)

    @staticmethod
    def set_plan(slug: str, plan: PlanIn) -> _Call:
        # PUT sets the whole plan: sending it again sets the same plan.
        return _Call("PUT", f"/v1/assets/{_slug(slug)}/plan", json=_body(plan), retry=True)

    @staticmethod
    def subscribe(slug: str) -> _Call:
        return _Call("POST", f"/v1/assets/{_slug(slug)}/subscribe")

    @staticmethod
    def balance() -> _Call:
        return _Call("GET", "/v1/billing/balance", retry=True)

    @staticmethod
    def search(slug: str, request: SearchRequest, idempotency_key: str | None) -> _Call:
        # A priced search is charged: one key per search, carried by every retry of it.
        headers = {IDEMPOTENCY_HEADER: idempotency_key or uuid.uuid4().hex}
        return _Call(
            "POST",
            f"/v1/assets/{_slug(slug)}/search",
            json=_body(request),
            headers=headers,
            retry=True,
        )

    @staticmethod
    def ask(slug: str, question: str, idempotency_key: str | None, *, stream: bool) -> _Call:
        # The key is made here, once per ask: every retry of this call carries it.
        headers = {IDEMPOTENCY_HEADER: idempotency_key or uuid.uuid4().hex}
        body = AskRequest(question=question)
        if stream:
            body.stream = True
            headers["Accept"] = EVENT_STREAM
        return _Call(
            "POST", f"/v1/assets/{_slug(slug)}/ask", json=_body(body), headers=headers, retry=True
        )

    @staticmethod
    def consultation(consultation_id: str) -> _Call:
        return _Call("GET", f"/v1/consultations/{_slug(consultation_id)}", retry=True)

    @staticmethod
    def settle(consultation_id: str, action: str, body: Any = None) -> _Call:
        return _Call("POST", f"/v1/consultations/{_slug(consultation_id)}/{action}", json=body)

    @staticmethod
    def decode(response: httpx.Response, shape: TypeAdapter[T]) -> T:
        return shape.validate_json(response.content)

    @staticmethod
    def error(response: httpx.Response) -> errors.VouchError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return errors.from_response(response.status_code, body, response.headers.get("retry-after"))


class _Retry:
    """When to send a request again, and after how long."""

    def __init__(self, max_retries: int, max_wait: float) -> None:
        self.max_retries = max_retries
        self.max_wait = max_wait

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_wait, 0.5 * 2**attempt))

    def after_error(self, call: _Call, attempt: int) -> float | None:
        if not call.retry or attempt >= self.max_retries:
            return None
        return self._backoff(attempt)

    def after_response(self, call: _Call, attempt: int, response: httpx.Response) -> float | None:
        if (
            not call.retry
            or attempt >= self.max_retries
            or response.status_code not in _RETRY_STATUSES
        ):
            return None
        asked = errors.retry_after_seconds(response.headers.get("retry-after"))
        if asked is None:
            return self._backoff(attempt)
        # Waiting less than the server asks would only be refused again.
        return asked if asked <= self.max_wait else None


class _EventParser:
    """Server-sent events, line by line: ``feed`` returns (name, data) when one is complete."""

    def __init__(self) -> None:
        self.name = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self.data:
                return None
            done = (self.name, "\n".join(self.data))
            self.name, self.data = "message", []
            return done
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            self.name = value
        elif key == "data":
            self.data.append(value)
        return None


def _event(name: str, data: str) -> AskEvent | None:
    if name == "delta":
        return AskDelta.model_validate_json(data)
    if name == "done":
        return AskPublic.model_validate_json(data)
    if name == "error":
        body = json.loads(data)
        raise errors.ServerError(
            str(body.get("detail", "the answer failed midway")), None, body, error=body.get("error")
        )
    return None


def _is_stream(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith(EVENT_STREAM)


class _Options:
    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get("VOUCH_API_KEY")
        self.base_url = (base_url or os.environ.get("VOUCH_URL") or DEFAULT_URL).rstrip("/")
        self.retry = _Retry(max_retries, max_retry_wait)

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"vouch-client/{__version__}", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


class Vouch:
    """A synchronous client of a Vouch server.

    ``api_key`` defaults to ``VOUCH_API_KEY``, ``base_url`` to ``VOUCH_URL`` or
    http://127.0.0.1:8000. Reads and asks are retried ``max_retries`` times (see the module).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        max_retry_wait: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._options = _Options(api_key, base_url, max_retries, max_retry_wait)
        self._http = httpx.Client(
            base_url=self._options.base_url,
            headers=self._options.headers(),
            timeout=timeout,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return self._options.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, call: _Call, *, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method, call.path, json=call.json, params=call.params, headers=call.headers
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self._options.retry.after_error(call, attempt)
                if delay is None:
                    raise errors.ConnectionError(f"{type(exc).__name__}: {exc}") from exc
            else:
                if response.is_success:
                    return response
                response.read()
                response.close()
                delay = self._options.retry.after_response(call, attempt, response)
                if delay is None:
                    raise _Api.error(response)
            time.sleep(delay)
            attempt += 1

    def _get(self, call: _Call, shape: TypeAdapter[T]) -> T:
        return _Api.decode(self._send(call), shape)

    def assets(self, *, mine: bool = False) -> list[AssetPublic]:
        """Published assets and your own (``mine=True``: only yours)."""
        return self._get(_Api.assets(mine), _ASSETS)

    def asset(self, slug: str) -> AssetPublic:
        return self._get(_Api.asset(slug), _ASSET_PUBLIC)

    def price(self, slug: str) -> PricePublic:
        """What your next question costs and what would pay for it (``can_ask``, ``detail``)."""
        return self._get(_Api.price(slug), _PRICE_PUBLIC)

    def plan(self, slug: str) -> PlanPublic | None:
        """The asset's prices; None when it is free to ask."""
        return self._get(_Api.plan(slug), _MAYBE_PLAN)

    def set_plan(self, slug: str, plan: PlanIn) -> PlanPublic:
        """Set your asset's prices (its owner)."""
        return self._get(_Api.set_plan(slug, plan), _PLAN_PUBLIC)

    def subscribe(self, slug: str) -> SubscriptionPublic:
        """Buy a month of the asset's subscription from your credits."""
        return self._get(_Api.subscribe(slug), _SUBSCRIPTION_PUBLIC)

    def balance(self) -> ClientSummary:
        """Your credits by currency, subscriptions and latest charges."""
        return self._get(_Api.balance(), _CLIENT_SUMMARY)

    def credits(self, currency: str = "usd") -> int:
        """Your credits in ``currency``, in minor units (cents)."""
        return self.balance().credits.get(currency.lower(), 0)

    def search(
        self,
        slug: str,
        query: str,
        *,
        k: int = 5,
        kinds: list[Any] | None = None,
        path_prefix: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[SearchResult]:
        """The passages of the asset closest to ``query``, each with its locator: free for its
        expert, for a client as the asset's plan says (``per_search``: not sold, free, or paid
        from credits); retried under one Idempotency-Key, so charged once."""
        request = SearchRequest(query=query, k=k, kinds=kinds, path_prefix=path_prefix)
        return self._get(_Api.search(slug, request, idempotency_key), _SEARCH_RESPONSE).results

    def ask(self, slug: str, question: str, *, idempotency_key: str | None = None) -> AskPublic:
        """A cited answer, charged and held in escrow; retried under one Idempotency-Key."""
        return self._get(_Api.ask(slug, question, idempotency_key, stream=False), _ASK_PUBLIC)

    def ask_stream(
        self, slug: str, question: str, *, idempotency_key: str | None = None
    ) -> Iterator[AskEvent]:
        """The answer as it is written: ``AskDelta`` pieces, then the ``AskPublic`` once.

        Retried like ``ask`` until the stream starts; a replayed key yields the answer at once.
        """
        response = self._send(_Api.ask(slug, question, idempotency_key, stream=True), stream=True)
        try:
            if not _is_stream(response):
                response.read()
                yield _Api.decode(response, _ASK_PUBLIC)
                return
            parser = _EventParser()
            try:
                for line in response.iter_lines():
                    done = parser.feed(line)
                    event = _event(*done) if done else None
                    if event is not None:
                        yield event
            except httpx.TransportError as exc:
                raise errors.ConnectionError(f"the stream broke: {exc}") from exc
        finally:
            response.close()

    def consultation(self, consultation_id: str) -> AskPublic:
        """An answer you were given, as it stands now (status, charge)."""
        return self._get(_Api.consultation(consultation_id), _ASK_PUBLIC)

    def accept(self, consultation_id: str) -> ChargePublic:
        """Accept an answer: its money goes to the expert now."""
        return self._get(_Api.settle(consultation_id, "accept"), _CHARGE_PUBLIC)

    def flag(self, consultation_id: str, note: str = "") -> FlagCreated:
        """Flag an answer for the expert's review; its money stays in escrow until then."""
        call = _Api.settle(consultation_id, "flag", _body(FlagIn(note=note)))
        return self._get(call, _FLAG_CREATED)

    def dispute(self, consultation_id: str) -> ChargePublic:
        """Dispute an answer without a note (``flag`` with one)."""
        return self._get(_Api.settle(consultation_id, "dispute"), _CHARGE_PUBLIC)


class AsyncVouch:
    """``Vouch`` for asyncio: the same methods, awaited (``ask_stream`` is an async iterator)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        max_retry_wait: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._options = _Options(api_key, base_url, max_retries, max_retry_wait)
        self._http = httpx.AsyncClient(
            base_url=self._options.base_url,
            headers=self._options.headers(),
            timeout=timeout,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return self._options.base_url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _send(self, call: _Call, *, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method, call.path, json=call.json, params=call.params, headers=call.headers
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self._options.retry.after_error(call, attempt)
                if delay is None:
                    raise errors.ConnectionError(f"{type(exc).__name__}: {exc}") from exc
            else:
                if response.is_success:
                    return response
                await response.aread()
                await response.aclose()
                delay = self._options.retry.after_response(call, attempt, response)
                if delay is None:
                    raise _Api.error(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def _get(self, call: _Call, shape: TypeAdapter[T]) -> T:
        return _Api.decode(await self._send(call), shape)

    async def assets(self, *, mine: bool = False) -> list[AssetPublic]:
        return await self._get(_Api.assets(mine), _ASSETS)

    async def asset(self, slug: str) -> AssetPublic:
        return await self._get(_Api.asset(slug), _ASSET_PUBLIC)

    async def price(self, slug: str) -> PricePublic:
        return await self._get(_Api.price(slug), _PRICE_PUBLIC)

    async def plan(self, slug: str) -> PlanPublic | None:
        return await self._get(_Api.plan(slug), _MAYBE_PLAN)

    async def set_plan(self, slug: str, plan: PlanIn) -> PlanPublic:
        return await self._get(_Api.set_plan(slug, plan), _PLAN_PUBLIC)

    async def subscribe(self, slug: str) -> SubscriptionPublic:
        return await self._get(_Api.subscribe(slug), _SUBSCRIPTION_PUBLIC)

    async def balance(self) -> ClientSummary:
        return await self._get(_Api.balance(), _CLIENT_SUMMARY)

    async def credits(self, currency: str = "usd") -> int:
        return (await self.balance()).credits.get(currency.lower(), 0)

    async def search(
        self,
        slug: str,
        query: str,
        *,
        k: int = 5,
        kinds: list[Any] | None = None,
        path_prefix: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[SearchResult]:
        request = SearchRequest(query=query, k=k, kinds=kinds, path_prefix=path_prefix)
        call = _Api.search(slug, request, idempotency_key)
        return (await self._get(call, _SEARCH_RESPONSE)).results

    async def ask(
        self, slug: str, question: str, *, idempotency_key: str | None = None
    ) -> AskPublic:
        return await self._get(_Api.ask(slug, question, idempotency_key, stream=False), _ASK_PUBLIC)

    async def ask_stream(
        self, slug: str, question: str, *, idempotency_key: str | None = None
    ) -> AsyncIterator[AskEvent]:
        call = _Api.ask(slug, question, idempotency_key, stream=True)
        response = await self._send(call, stream=True)
        try:
            if not _is_stream(response):
                await response.aread()
                yield _Api.decode(response, _ASK_PUBLIC)
                return
            parser = _EventParser()
            try:
                async for line in response.aiter_lines():
                    done = parser.feed(line)
                    event = _event(*done) if done else None
                    if event is not None:
                        yield event
            except httpx.TransportError as exc:
                raise errors.ConnectionError(f"the stream broke: {exc}") from exc
        finally:
            await response.aclose()

    async def consultation(self, consultation_id: str) -> AskPublic:
        return await self._get(_Api.consultation(consultation_id), _ASK_PUBLIC)

    async def accept(self, consultation_id: str) -> ChargePublic:
        return await self._get(_Api.settle(consultation_id, "accept"), _CHARGE_PUBLIC)

    async def flag(self, consultation_id: str, note: str = "") -> FlagCreated:
        call = _Api.settle(consultation_id, "flag", _body(FlagIn(note=note)))
        return await self._get(call, _FLAG_CREATED)

    async def dispute(self, consultation_id: str) -> ChargePublic:
        return await self._get(_Api.settle(consultation_id, "dispute"), _CHARGE_PUBLIC)
