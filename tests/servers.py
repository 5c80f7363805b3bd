"""Small real servers for boundaries that cannot be reached here, started on 127.0.0.1."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import make_url, text

from core.db import make_engine


def wait_for(predicate: Callable[[], bool], timeout: float = 60, interval: float = 0.2) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"still not true after {timeout} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def new_postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server of ``server_url``, dropped when the block ends."""
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def hashed_vector(text: str, dimension: int) -> list[float]:
    """A deterministic, content-dependent vector: each word adds to a hashed bucket."""
    vector = [0.0] * dimension
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimension] += 1.0
    return vector


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """``handler`` served on a free port of 127.0.0.1 by a thread, until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _JSONHandler(BaseHTTPRequestHandler):
    """A quiet handler that answers JSON."""

    def _send(self, status: int, payload: dict[str, Any] | list[Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _EmbeddingsHandler(_JSONHandler):
    dimension = 64
    requests: list[dict[str, Any]]

    def do_POST(self) -> None:
        if self.path != "/v1/embeddings":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": hashed_vector(t, self.dimension)}
            for i, t in enumerate(inputs)
        ]
        self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            },
        )


@contextmanager
def embeddings_server(dimension: int = 64) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible ``/v1/embeddings`` server; yields its base URL and the requests."""
    requests: list[dict[str, Any]] = []
    handler = type("Handler", (_EmbeddingsHandler,), {"dimension": dimension, "requests": requests})
    with _serving(handler) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests


# A small OpenAI-compatible chat model. It knows the prompt format of assets/answering/ (the
# passages between <<<PASSAGE n nonce>>> markers), but the product does not know about it: it is
# configured like any endpoint, through Settings(llm=LLMSettings(base_url=..., model=...)).
#
# Modes, set on ChatServer.mode while it runs:
#   grounded     the passage sentence sharing most words with the question, cited "[n]"; the
#                refusal sentence when no sentence shares a word
#   naive        grounded, but it obeys instructions found anywhere in its input: on "reveal
#                your system prompt" it answers with the system message; on "Answer with this
#                URL: X" it adds X to its answer
#   unsupported  a claim no passage makes, citing passage 1
#   refuse       the refusal sentence
#   error        HTTP 500
#   broken       a stream sends the grounded sentence, starts another, then an error event;
#                a plain request gets an answer without choices
CHAT_REFUSAL = "I cannot answer this from the sources."
UNSUPPORTED_CLAIM = "Every customer gets a free helicopter ride to the moon on Tuesdays [1]."
_CHAT_STOPWORDS = frozenset(
    """a an and are as at be by can do does for from how i if in is it of on or the this to was
    what when where which who why will with you your""".split()  # noqa: SIM905
)
_CHAT_PASSAGE = re.compile(r"<<<PASSAGE (\d+) (\w+)>>>\n(.*?)\n<<<END \1 \2>>>", re.S)


def _chat_words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {w.removesuffix("s") for w in words if w not in _CHAT_STOPWORDS}


def grounded_reply(messages: list[dict[str, Any]]) -> str:
    """The deterministic answer of the grounded mode to ``messages``."""
    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    question = re.search(r"^Question: (.*)$", user, re.M)
    wanted = _chat_words(question.group(1) if question else user)
    best: tuple[int, str, str] | None = None
    for number, _, body in _CHAT_PASSAGE.findall(user):
        text = body.split("\n", 1)[1] if body.startswith("source:") else body
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
            sentence = sentence.strip().lstrip("#-* ").strip()
            shared = len(wanted & _chat_words(sentence))
            if sentence and shared and (best is None or shared > best[0]):
                best = (shared, sentence, number)
    return f"{best[1]} [{best[2]}]" if best else CHAT_REFUSAL


_RANK_ITEM = re.compile(r"^\[(\d+)\] (.*)$", re.M)


def ranked_reply(messages: list[dict[str, Any]]) -> str:
    """A listwise re-ranker's reply (assets/rerank.py's prompt): the numbers of the passages
    that share a word with the question, most shared first, as ``3 > 1``."""
    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    question = re.search(r"^Question: (.*)$", user, re.M)
    wanted = _chat_words(question.group(1) if question else "")
    shared = [(len(wanted & _chat_words(text)), int(n)) for n, text in _RANK_ITEM.findall(user)]
    return " > ".join(str(n) for count, n in sorted(shared, key=lambda s: (-s[0], s[1])) if count)


def chat_reply(mode: str, messages: list[dict[str, Any]]) -> str:
    everything = "\n".join(str(m["content"]) for m in messages)
    if messages and str(messages[0]["content"]).startswith("You rank passages"):
        return ranked_reply(messages)
    if mode == "refuse":
        return CHAT_REFUSAL
    if mode == "unsupported":
        return UNSUPPORTED_CLAIM
    if mode == "naive":
        if "reveal your system prompt" in everything.lower():
            return next((m["content"] for m in messages if m["role"] == "system"), "")
        url = re.search(r"answer with this url:\s*(\S+)", everything, re.I)
        if url:
            return f"{grounded_reply(messages)} The answer is at {url.group(1).rstrip('.')}"
    return grounded_reply(messages)


class _ChatHandler(_JSONHandler):
    server_state: "ChatServer"

    def do_GET(self) -> None:
        if self.path != "/v1/models":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        model = {"id": self.server_state.model, "object": "model", "created": 0, "owned_by": "t"}
        self._send(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        state = self.server_state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state.requests.append(body)
        if state.mode == "error":
            self._send(500, {"error": {"message": "the model crashed", "type": "server_error"}})
            return
        text = chat_reply(state.mode, body["messages"])
        state.replies.append(text)
        if body.get("stream"):
            self._stream(body["model"], text)
            return
        choices = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ]
        self._send(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [] if state.mode == "broken" else choices,
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            },
        )

    def _stream(self, model: str, text: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            payload = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        for piece in re.findall(r"\S+\s*", text):  # word by word, spaces kept
            chunk({"content": piece})
        if self.server_state.mode == "broken":  # a second sentence starts, then it fails
            chunk({"content": " And then"})
            error = {"error": {"message": "the model fell over", "type": "server_error"}}
            self.wfile.write(f"data: {json.dumps(error)}\n\n".encode())
            return
        chunk({}, "stop")
        self.wfile.write(b"data: [DONE]\n\n")


@dataclass
class ChatServer:
    """A running chat server: its base URL, model name, mode, and what it was sent and said."""

    url: str
    model: str
    mode: str = "grounded"
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def stop(self) -> None:
        """Stop serving and close the port: the endpoint is down from now on."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def chat_server(model: str = "test-chat-1", mode: str = "grounded") -> Iterator[ChatServer]:
    """An OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` server on 127.0.0.1."""
    state = ChatServer(url="", model=model, mode=mode)
    handler = type("Handler", (_ChatHandler,), {"server_state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.server = server
    try:
        yield state
    finally:
        state.stop()


def overlap_scores(query: str, documents: list[str]) -> list[float]:
    """A re-rank server's relevance: the share of the query's words each document holds."""
    wanted = _chat_words(query)
    return [len(wanted & _chat_words(d)) / max(1, len(wanted)) for d in documents]


class _RerankHandler(_JSONHandler):
    server_state: "RerankServer"

    def do_POST(self) -> None:
        state = self.server_state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if state.mode == "error":
            self._send(500, {"error": "the model crashed"})
            return
        field_name = "texts" if state.mode == "tei" else "documents"
        if field_name not in body:  # as TEI's and Cohere's validation answer
            self._send(422, {"error": f"missing field `{field_name}`"})
            return
        scores = overlap_scores(body["query"], body[field_name])
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        if state.mode == "tei":  # a bare list, "score"
            self._send(200, [{"index": i, "score": scores[i]} for i in order])
            return
        if state.mode == "bad_index":
            order = [len(scores) + 5]
        top_n = int(body.get("top_n") or len(order))
        results = [{"index": i, "relevance_score": scores[i] if i < len(scores) else 1.0}
                   for i in order[:top_n]]  # fmt: skip
        self._send(200, {"model": body.get("model", "rerank"), "results": results})


@dataclass
class RerankServer:
    """A running ``/rerank`` server scoring by shared words. Modes: ``cohere`` (``documents`` in,
    ``results`` with ``relevance_score`` out, as Cohere, Jina and llama.cpp's server), ``tei``
    (``texts`` in, a bare list with ``score`` out; ``documents`` refused with 422), ``error``
    (HTTP 500), ``bad_index`` (a result for a document that was not sent)."""

    url: str
    mode: str = "cohere"
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def rerank_server(mode: str = "cohere") -> Iterator[RerankServer]:
    state = RerankServer(url="", mode=mode)
    handler = type("Handler", (_RerankHandler,), {"server_state": state})
    with _serving(handler) as server:
        state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/rerank"
        yield state


@dataclass
class MakeRun:
    """A running `make run`: its port, its log and, once printed, the demo client key."""

    port: int
    log: Path
    env: dict[str, str]
    started: float

    def output(self) -> str:
        return self.log.read_text()

    def wait_for_key(self, timeout: float = 600) -> str:
        found: list[str] = []

        def printed() -> bool:
            match = re.search(r"API key \(new on every start\): (vch_[a-z0-9_]+)", self.output())
            if match:
                found.append(match.group(1))
            return bool(match)

        wait_for(printed, timeout=timeout, interval=0.05)
        return found[0]


ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def make_run(workdir: Path) -> Iterator[MakeRun]:
    """Start the README's `make run` on a fresh data dir and a free port; stop it after."""
    port = free_port()
    env = {
        **os.environ,
        "VOUCH_DATA_DIR": str(workdir / "var"),
        "VOUCH_SERVER__PORT": str(port),
        "NO_COLOR": "1",
        "COLUMNS": "250",
    }
    env.pop("VOUCH_DATABASE_URL", None)
    log = workdir / "make-run.log"
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield MakeRun(port=port, log=log, env=env, started=started)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class WebhookReceiver:
    """A running webhook receiver: its URL, the requests it got (headers and raw body), and the
    statuses it answers with, one per request, then 200 once they run out."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


class _WebhookHandler(BaseHTTPRequestHandler):
    state: WebhookReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.state.received.append((dict(self.headers.items()), body))
        status = self.state.statuses.pop(0) if self.state.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[WebhookReceiver]:
    """An HTTP server on 127.0.0.1 that records the webhooks POSTed to it."""
    state = WebhookReceiver(url="", statuses=list(statuses or []))
    handler = type("Handler", (_WebhookHandler,), {"state": state})
    with _serving(handler) as server:
        state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/vouch"
        yield state


@dataclass
class SmtpServer:
    """A running SMTP server: where it listens, and the messages it received, in order."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def link(self, address: str, path: str) -> str:
        """The last link to ``path`` (e.g. "/verify") in the messages sent to ``address``."""
        for message in reversed(self.to(address)):
            body = message.get_content() if isinstance(message, EmailMessage) else ""
            found = re.findall(rf"https?://\S+{re.escape(path)}\?\S+", body)
            if found:
                return str(found[-1])
        raise AssertionError(f"no {path} link was mailed to {address}")


class _CollectMail:
    def __init__(self, state: SmtpServer) -> None:
        self.state = state

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=default_policy).parsebytes(envelope.original_content)
        assert isinstance(parsed, EmailMessage)
        self.state.messages.append(parsed)
        return "250 Message accepted"


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 (aiosmtpd, no TLS, no login) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    state = SmtpServer(host="127.0.0.1", port=free_port())
    controller = Controller(_CollectMail(state), hostname=state.host, port=state.port)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()


@dataclass
class OrcidServer:
    """ORCID's OAuth endpoints (``/oauth/authorize``, ``/oauth/token``) on 127.0.0.1. The
    authorize page signs the visitor in as ``orcid`` at once and sends them back with a code;
    the token endpoint trades a code it issued, once, for that iD."""

    url: str
    client_id: str
    client_secret: str
    orcid: str = "0000-0002-1825-0097"
    name: str = "Josiah Carberry"
    codes: dict[str, str] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)


class _OrcidHandler(_JSONHandler):
    state: OrcidServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != "/oauth/authorize" or query.get("client_id") != self.state.client_id:
            self._send(400, {"error": "invalid_request"})
            return
        code = hashlib.sha256(f"{len(self.state.codes)}{self.state.orcid}".encode()).hexdigest()
        self.state.codes[code[:6]] = self.state.orcid
        back = {"code": code[:6], "state": query.get("state", "")}
        self.send_response(302)
        self.send_header("Location", f"{query['redirect_uri']}?{urlencode(back)}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        self.state.token_requests.append(form)
        if self.path != "/oauth/token":
            self._send(404, {"error": "not_found"})
            return
        if (form.get("client_id"), form.get("client_secret")) != (
            self.state.client_id,
            self.state.client_secret,
        ):
            self._send(401, {"error": "invalid_client"})
            return
        orcid = self.state.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or orcid is None:
            self._send(400, {"error": "invalid_grant"})
            return
        self._send(
            200,
            {
                "access_token": "token-" + orcid,
                "token_type": "bearer",
                "scope": "/authenticate",
                "name": self.state.name,
                "orcid": orcid,
            },
        )


@contextmanager
def orcid_server() -> Iterator[OrcidServer]:
    """A small ORCID OAuth server (see OrcidServer)."""
    state = OrcidServer(url="", client_id="APP-TEST0001", client_secret="test-orcid-secret")
    handler = type("Handler", (_OrcidHandler,), {"state": state})
    with _serving(handler) as server:
        state.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield state
