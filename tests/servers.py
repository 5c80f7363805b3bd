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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


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


def hashed_vector(text: str, dimension: int) -> list[float]:
    """A deterministic, content-dependent vector: each word adds to a hashed bucket."""
    vector = [0.0] * dimension
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimension] += 1.0
    return vector


class _EmbeddingsHandler(BaseHTTPRequestHandler):
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

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def embeddings_server(dimension: int = 64) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible ``/v1/embeddings`` server; yields its base URL and the requests."""
    requests: list[dict[str, Any]] = []
    handler = type("Handler", (_EmbeddingsHandler,), {"dimension": dimension, "requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
        server.server_close()


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
