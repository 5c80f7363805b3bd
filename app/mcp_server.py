"""The Model Context Protocol server: assets as tools inside the client's own AI tools.

``/mcp`` speaks Streamable HTTP (stateless: every call carries its API key as a Bearer token);
``vouch mcp`` serves the same tools over stdio for desktop clients by relaying each call to a
Vouch server's ``/mcp`` (``serve_stdio``), so that both charge, hold and record alike.

Tools, listed per caller:
- ``ask``: a cited answer from an asset the key may ask, charged, held in escrow and recorded
  exactly as ``POST /v1/assets/{slug}/ask`` (the same code: ``querying.ask``); ``request_id`` is
  its Idempotency-Key. Its description lists each asset with what the caller's next question
  costs. Citations come as structured content (with their locators) and as embedded resources
  ``vouch://consultations/{id}/citations/{n}``, which can be read again later.
- ``search``: the passages of the assets the caller manages (their owner, or an admin), free,
  as ``POST /v1/assets/{slug}/search``; clients do not see it, since passages are the corpus.

``/mcp?asset=SLUG`` scopes the tools to one asset. Refusals (no credits 402, subscription 403,
too many questions 429, an asset the key may not use 404) come back as tool errors whose text
a client can show, with ``{"error", "detail", "status"}`` as structured content.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app import accounts, assistants, locators, querying
from app.accounts import viewer_of
from app.errors import RateLimited
from app.models import Account
from app.runtime import Runtime
from assets.schemas import AskRequest, SearchRequest
from assets.service import get_consultation
from core.db import session_scope
from core.errors import Forbidden, InvalidInput, NotFound, VouchError

log = logging.getLogger(__name__)
PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource" + PATH
_ACCOUNT = "vouch.account_id"  # set on the request's scope by ``KeyAuth``
_CITATION = re.compile(r"^vouch://consultations/([A-Za-z0-9_-]{1,40})/citations/(\d{1,3})$")
INSTRUCTIONS = (
    "Vouch: experts' knowledge assets. `ask` answers from one asset with numbered citations "
    "([n]) to the exact lines, articles or pages; each answer is charged (its price is in the "
    "tool's description), held in escrow and refunded if the expert finds it wrong. Quote the "
    "citations with the answer. An answer whose status is not `final` awaits the expert's review."
)


class ToolRefused(InvalidInput):
    """A tool call whose arguments do not fit its input schema."""


class KeyRefused(Exception):
    """``vouch mcp``: the server refused the API key."""


# Who is calling


class KeyAuth:
    """Lets through requests that carry a live API key as a Bearer token, with the key's
    account on the scope; anything else gets 401 (403 for a suspended account) before its body
    is read, with the ``WWW-Authenticate`` header that points MCP clients to the metadata."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    def _account_id(self, secret: str) -> str:
        with session_scope(self.runtime.engine) as session:
            account, key = accounts.authenticate_api_key(session, secret)
            if accounts.stale_last_use(key):
                accounts.touch_api_key(self.runtime.engine, key.id)
            return account.id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scheme, _, secret = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            await _refuse(
                scope, receive, send, 401, "send an API key as 'Authorization: Bearer vch_...'"
            )
            return
        try:
            account_id = await anyio.to_thread.run_sync(self._account_id, secret)
        except Forbidden as exc:  # a suspended account
            await _refuse(scope, receive, send, 403, exc.message)
            return
        except VouchError as exc:
            await _refuse(scope, receive, send, 401, exc.message)
            return
        await self.app({**scope, _ACCOUNT: account_id}, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    error = "invalid_token" if status == 401 else "insufficient_scope"
    metadata = str(Request(scope).base_url).rstrip("/") + METADATA_PATH
    quoted = message.replace('"', "'")
    challenge = (
        f'Bearer error="{error}", error_description="{quoted}", resource_metadata="{metadata}"'
    )
    response = JSONResponse(
        {"error": error, "error_description": message},
        status_code=status,
        headers={"WWW-Authenticate": challenge},
    )
    await response(scope, receive, send)


def resource_metadata(base_url: str) -> dict[str, Any]:
    """The OAuth protected-resource metadata (RFC 9728) of ``/mcp``, as the MCP authorization
    spec has clients read it. Vouch issues its own tokens, the API keys (made on /keys): there
    is no OAuth flow, so a client is given a key as a Bearer header."""
    base = base_url.rstrip("/")
    return {
        "resource": base + PATH,
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "resource_name": "Vouch knowledge assets",
        "resource_documentation": base + "/docs",
    }


# The tools


def _caller(ctx: ServerRequestContext[Any, Any]) -> tuple[str, str | None]:
    """The account of the request (set by ``KeyAuth``) and the asset it is scoped to, if any."""
    request = ctx.request
    if not isinstance(request, Request) or _ACCOUNT not in request.scope:
        raise RuntimeError("an MCP request reached the tools without KeyAuth")
    return request.scope[_ACCOUNT], request.query_params.get("asset") or None


def _askables(
    session: Session, runtime: Runtime, account: Account, only: str | None
) -> list[assistants.Askable]:
    if only is not None:
        return [assistants.askable(session, runtime, account=account, slug=only)]
    return assistants.askable_assets(session, runtime, account=account)


def _tools(askables: list[assistants.Askable]) -> list[types.Tool]:
    slugs = [a.asset.slug for a in askables]
    listing = "\n".join(f"- {a.asset.slug}: {a.asset.title}. {a.price_line()}" for a in askables)
    asset = {"type": "string", "enum": slugs, "description": "The asset's slug"}
    required = ["question"] if len(slugs) == 1 else ["asset", "question"]
    ask = types.Tool(
        name="ask",
        title="Ask an expert's knowledge asset",
        description=(
            "A cited answer from an expert's knowledge asset: [n] markers in the text, each "
            "citation naming the file and lines, article or page it quotes. Each answer is "
            "charged, held in escrow until it stands and refunded if the expert finds it wrong; "
            "an answer that abstains costs nothing. Repeat a call with the same request_id to "
            "get the first answer again without a second charge.\n"
            f"Assets and what your next question costs:\n{listing or '- none you may ask'}"
        ),
        input_schema={
            "type": "object",
            "properties": {
                "asset": asset,
                "question": {"type": "string", "minLength": 1, "maxLength": 2000},
                "request_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "description": "An idempotency key: the same key returns the first answer",
                },
            },
            "required": required,
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=False, open_world_hint=False),
    )
    managed = [a for a in askables if a.own]
    if not managed:
        return [ask]
    search = types.Tool(
        name="search",
        title="Search the passages of your assets",
        description=(
            "The passages of an asset you manage closest to a query (dense and word search, "
            "fused), each with its locator. Free; only an asset's expert sees its passages.\n"
            "Your assets: " + ", ".join(a.asset.slug for a in managed)
        ),
        input_schema={
            "type": "object",
            "properties": {
                "asset": {**asset, "enum": [a.asset.slug for a in managed]},
                "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                "k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
            },
            "required": ["query"] if len(managed) == 1 else ["asset", "query"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    return [ask, search]


def _slug(
    arguments: dict[str, Any], only: str | None, choices: Callable[[], list[assistants.Askable]]
) -> str:
    """The asset a call names, or the one it may name: the connection's, or the caller's only
    choice. The choices (each priced) are looked up only when the call names no asset."""
    slug = arguments.get("asset")
    if slug is None:
        if only is not None:
            return only
        found = choices()
        if len(found) == 1:
            return found[0].asset.slug
    if not isinstance(slug, str) or not slug:
        raise ToolRefused("say which asset to use: 'asset' is one of the slugs the tool lists")
    return slug


def _known(arguments: dict[str, Any], *names: str) -> None:
    unknown = set(arguments) - set(names)
    if unknown:
        raise ToolRefused(f"unknown arguments: {', '.join(sorted(unknown))}")


def _passage(uri: str, text: str, locator: dict[str, Any]) -> types.EmbeddedResource:
    """A quoted passage as a resource, its locator in ``_meta``."""
    return types.EmbeddedResource(
        resource=types.TextResourceContents(
            uri=uri, mime_type="text/plain", text=text, meta={"locator": locator}
        )
    )


def _citation_uri(consultation_id: str, n: int) -> str:
    return f"vouch://consultations/{consultation_id}/citations/{n}"


def _ask(
    runtime: Runtime, account_id: str, only: str | None, arguments: dict[str, Any]
) -> types.CallToolResult:
    _known(arguments, "asset", "question", "request_id")
    request_id = arguments.get("request_id")
    if request_id is not None and not (isinstance(request_id, str) and 0 < len(request_id) <= 255):
        raise ToolRefused("request_id is a string of 1 to 255 characters")
    with session_scope(runtime.engine) as session:
        account = _account(session, account_id)
        slug = _slug(arguments, only, lambda: _askables(session, runtime, account, None))
        if only is not None and slug != only:
            raise ToolRefused(f"this connection is scoped to the asset {only!r}")
        question = AskRequest.model_validate({"question": arguments.get("question")}).question
        result = querying.ask(
            session,
            runtime,
            account=account,
            slug=slug,
            question=question,
            idempotency_key=request_id,
        )
        answer = {"asset": slug, **result.public()}
    return types.CallToolResult(
        content=[
            types.TextContent(text=_answer_text(answer)),
            *(
                _passage(_citation_uri(answer["consultation_id"], c["n"]), c["text"], c["locator"])
                for c in answer["citations"]
            ),
        ],
        structured_content=answer,
    )


def _answer_text(answer: dict[str, Any]) -> str:
    """The answer as a person reads it: the text, its sources, its status and its charge."""
    lines = [answer["answer"], ""]
    if answer["citations"]:
        lines.append("Sources:")
        lines += [f"[{c['n']}] {locators.describe(c['locator'])}" for c in answer["citations"]]
        lines.append("")
    if answer["status"] != "final":
        lines.append(f"Status: {answer['status']} ({answer['review_reason']})")
    charge = answer["charge"]
    if charge and charge["amount"]:
        amount = f"{charge['amount'] / 100:.2f} {charge['currency'].upper()}"
        lines.append(
            f"Charged {amount} ({charge['source']}), held in escrow until "
            f"{charge['release_after']}; flag the answer to dispute it."
        )
    else:
        lines.append("No charge for this answer.")
    return "\n".join(lines).strip()


def _search(
    runtime: Runtime, account_id: str, only: str | None, arguments: dict[str, Any]
) -> types.CallToolResult:
    _known(arguments, "asset", "query", "k")
    with session_scope(runtime.engine) as session:
        account = _account(session, account_id)
        slug = _slug(
            arguments,
            only,
            lambda: [a for a in _askables(session, runtime, account, None) if a.own],
        )
        body = SearchRequest.model_validate({k: v for k, v in arguments.items() if k != "asset"})
        passages = querying.search(
            session, runtime, account=account, slug=slug, query=body.query, k=body.k
        )
    results: list[dict[str, Any]] = [
        {"rank": i, "score": p.rank_score, "text": p.text, "locator": p.locator}
        for i, p in enumerate(passages, 1)
    ]
    listing = "\n".join(f"{r['rank']}. {locators.describe(r['locator'])}" for r in results)
    return types.CallToolResult(
        content=[
            types.TextContent(text=listing or "No passage matches."),
            *(
                _passage(f"vouch://assets/{slug}/passages/{r['rank']}", r["text"], r["locator"])
                for r in results
            ),
        ],
        structured_content={"asset": slug, "results": results},
    )


def _account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("the API key's account is gone")
    accounts.ensure_active(account)
    return account


def _refusal(exc: VouchError) -> types.CallToolResult:
    status = 422 if isinstance(exc, ToolRefused) else exc.status_code
    error: dict[str, Any] = {"error": type(exc).__name__, "detail": exc.message, "status": status}
    text = exc.message
    if isinstance(exc, RateLimited):
        error["retry_after"] = exc.retry_after
        text += f" (try again in {exc.retry_after} s)"
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content=error, is_error=True
    )


def _invalid(exc: ValidationError) -> VouchError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "arguments"
    return ToolRefused(f"{where}: {first['msg']}")


_TOOLS: dict[str, Callable[[Runtime, str, str | None, dict[str, Any]], types.CallToolResult]] = {
    "ask": _ask,
    "search": _search,
}


def build_server(runtime: Runtime) -> Server[Any]:
    """The MCP server whose tools act as the account of each request's API key."""

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        account_id, only = _caller(ctx)

        def load() -> list[types.Tool]:
            with session_scope(runtime.engine) as session:
                account = _account(session, account_id)
                return _tools(_askables(session, runtime, account, only))

        return types.ListToolsResult(tools=await anyio.to_thread.run_sync(load))

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        account_id, only = _caller(ctx)
        tool = _TOOLS.get(params.name)
        if tool is None:
            return _refusal(ToolRefused(f"no tool {params.name!r}; the tools are ask and search"))
        arguments = dict(params.arguments or {})

        def run() -> types.CallToolResult:
            try:
                try:
                    return tool(runtime, account_id, only, arguments)
                except ValidationError as exc:
                    raise _invalid(exc) from exc
            except VouchError as exc:
                return _refusal(exc)

        return await anyio.to_thread.run_sync(run)

    async def list_templates(
        _ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    name="citation",
                    title="A passage an answer cites",
                    uri_template="vouch://consultations/{consultation_id}/citations/{n}",
                    description="The text of citation n of one of your answers, with its locator",
                    mime_type="text/plain",
                )
            ]
        )

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        account_id, _ = _caller(ctx)
        match = _CITATION.match(params.uri)
        if match is None:
            raise ValueError(f"no resource {params.uri}")

        def load() -> dict[str, Any] | None:
            with session_scope(runtime.engine) as session:
                account = _account(session, account_id)
                try:
                    found = get_consultation(
                        session, viewer=viewer_of(account), consultation_id=match[1]
                    )
                except VouchError:
                    return None
                return next((c for c in found.citations if c["n"] == int(match[2])), None)

        citation = await anyio.to_thread.run_sync(load)
        if citation is None:
            raise ValueError(f"no resource {params.uri}")
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=params.uri,
                    mime_type="text/plain",
                    text=citation["text"],
                    meta={"locator": citation["locator"]},
                )
            ]
        )

    return Server(
        "vouch",
        version="0.1.0",
        title="Vouch",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


class HttpEndpoint:
    """``/mcp``: the server over Streamable HTTP behind ``KeyAuth``. ``running()`` belongs in
    the app's lifespan (the session manager runs its transports in a task group of its own)."""

    def __init__(self, runtime: Runtime) -> None:
        self.manager = StreamableHTTPSessionManager(
            app=build_server(runtime),
            stateless=True,
            max_request_body_size=runtime.settings.server.max_body_bytes,
        )
        self.app = KeyAuth(StreamableHTTPASGIApp(self.manager), runtime)

    def running(self) -> Any:
        return self.manager.run()


# stdio, for desktop clients


async def serve_stdio(url: str, key: str, asset: str | None) -> None:
    """Serve the tools of ``url``'s ``/mcp`` over stdin/stdout, as ``key``'s account: each
    call is relayed to the server, which charges and records it as any other."""
    endpoint = url.rstrip("/") + PATH + (f"?asset={quote(asset)}" if asset else "")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=600)) as http:
        # The key is checked first, so that a refused one is said in words, not as a JSON-RPC
        # failure of the first call.
        me = await http.get(url.rstrip("/") + "/v1/me")
        if me.status_code in (401, 403):
            raise KeyRefused(f"{me.status_code}: {me.json().get('detail', me.text)}")
        async with Client(streamable_http_client(endpoint, http_client=http)) as remote:
            await _relay_stdio(remote)


async def _relay_stdio(remote: Client) -> None:
    server = _relay(remote)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def _relay(remote: Client) -> Server[Any]:
    def forward(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def handler(_ctx: ServerRequestContext[Any, Any], params: Any) -> Any:
            return await call(params)

        return handler

    return Server(
        "vouch",
        version="0.1.0",
        title="Vouch",
        instructions=INSTRUCTIONS,
        on_list_tools=forward(lambda _params: remote.list_tools(cache_mode="bypass")),
        on_call_tool=forward(lambda params: remote.call_tool(params.name, params.arguments)),
        on_list_resource_templates=forward(
            lambda _params: remote.list_resource_templates(cache_mode="bypass")
        ),
        on_read_resource=forward(lambda params: remote.read_resource(params.uri)),
    )
