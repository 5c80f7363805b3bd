"""The per-asset vector collections: the one module that imports chromadb.

Embedded default: a ``PersistentClient`` in the data dir. With ``VOUCH_CHROMA__HOST`` set, an
``HttpClient`` talks to a Chroma server instead. Vouch always passes its own vectors; Chroma's
default embedding function would download a model and is never used.
"""

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assets.errors import IndexUnavailable
from core.config import ChromaSettings

if TYPE_CHECKING:  # chromadb takes ~0.4 s to import; commands that never touch vectors skip it
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

Metadata = Mapping[str, str | int | float | bool]
# Chroma caps the records of one call; this stays well inside it.
_WRITE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    text: str
    metadata: dict[str, Any]
    score: float  # cosine similarity, higher is closer


class AssetCollection:
    """One asset's vectors, documents and metadata."""

    def __init__(self, collection: "Collection") -> None:
        self._collection = collection

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[Metadata],
    ) -> None:
        for start in range(0, len(ids), _WRITE_BATCH):
            end = start + _WRITE_BATCH
            vectors: list[Sequence[float]] = [list(e) for e in embeddings[start:end]]
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=vectors,
                documents=list(documents[start:end]),
                metadatas=[dict(m) for m in metadatas[start:end]],
            )

    def ids(self) -> list[str]:
        return list(self._collection.get(include=[])["ids"])

    def ids_where(self, **where: str | int) -> list[str]:
        result = self._collection.get(where=_where(where), include=[])
        return list(result["ids"])

    def ids_of_files(self, source: str, paths: Sequence[str]) -> dict[str, list[str]]:
        """The chunk ids of each of ``paths`` of ``source``, in one read."""
        found: dict[str, list[str]] = {path: [] for path in paths}
        for start in range(0, len(paths), _WRITE_BATCH):
            part = list(dict.fromkeys(paths[start : start + _WRITE_BATCH]))
            where: Any = {"$and": [{"source": source}, {"path": {"$in": part}}]}
            result = self._collection.get(where=where, include=["metadatas"])
            for chunk_id, metadata in zip(result["ids"], result["metadatas"] or [], strict=True):
                found.setdefault(str((metadata or {}).get("path", "")), []).append(chunk_id)
        return found

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _WRITE_BATCH):
            self._collection.delete(ids=list(ids[start : start + _WRITE_BATCH]))

    def count(self) -> int:
        return self._collection.count()

    def query(
        self, embedding: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` nearest chunks, optionally only those whose metadata matches ``where``.

        Fewer when the collection holds fewer (Chroma copes; counting first costs 5 ms at 50k).
        """
        vectors: list[Sequence[float]] = [list(embedding)]
        result = self._collection.query(
            query_embeddings=vectors,
            n_results=k,
            where=where or None,
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        documents = (result["documents"] or [[]])[0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            Hit(id=i, text=d or "", metadata=dict(m or {}), score=1.0 - float(dist))
            for i, d, m, dist in zip(ids, documents, metadatas, distances, strict=True)
        ]

    def nearest(
        self, embedding: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """Ids and cosine similarities of the ``k`` nearest chunks, without their records
        (reading 50 documents and metadata costs more than the search itself)."""
        vectors: list[Sequence[float]] = [list(embedding)]
        result = self._collection.query(
            query_embeddings=vectors, n_results=k, where=where or None, include=["distances"]
        )
        distances = (result["distances"] or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], distances, strict=True)]

    def documents(self, ids: Sequence[str]) -> list[Hit]:
        """Chunks by id with their text and metadata (score 0: no vector compared)."""
        if not ids:
            return []
        result = self._collection.get(ids=list(ids), include=["documents", "metadatas"])
        return [
            Hit(id=i, text=d or "", metadata=dict(m or {}), score=0.0)
            for i, d, m in zip(
                result["ids"], result["documents"] or [], result["metadatas"] or [], strict=True
            )
        ]

    def matching(self, where: dict[str, Any], limit: int) -> list[Hit]:
        """Up to ``limit`` chunks whose metadata matches ``where`` (score 0)."""
        result = self._collection.get(where=where, limit=limit, include=["documents", "metadatas"])
        return [
            Hit(id=i, text=d or "", metadata=dict(m or {}), score=0.0)
            for i, d, m in zip(
                result["ids"], result["documents"] or [], result["metadatas"] or [], strict=True
            )
        ]

    def get(self, ids: Sequence[str], embedding: Sequence[float]) -> list[Hit]:
        """Chunks by id, scored by cosine similarity to ``embedding`` (vectors are unit length)."""
        if not ids:
            return []
        result = self._collection.get(
            ids=list(ids), include=["documents", "metadatas", "embeddings"]
        )
        query = np.asarray(embedding, dtype=np.float32)
        vectors = result["embeddings"] if result["embeddings"] is not None else []
        return [
            Hit(id=i, text=d or "", metadata=dict(m or {}), score=float(np.dot(query, v)))
            for i, d, m, v in zip(
                result["ids"],
                result["documents"] or [],
                result["metadatas"] or [],
                vectors,
                strict=True,
            )
        ]

    def records(self, batch: int = 5000) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every chunk's id, text and metadata, in pages."""
        offset = 0
        while True:
            page = self._collection.get(
                include=["documents", "metadatas"], limit=batch, offset=offset
            )
            ids = page["ids"]
            if not ids:
                return
            documents = page["documents"] or [""] * len(ids)
            metadatas = page["metadatas"] or [{}] * len(ids)
            for i, d, m in zip(ids, documents, metadatas, strict=True):
                yield i, d or "", dict(m or {})
            offset += len(ids)


def _where(conditions: Mapping[str, str | int]) -> Any:
    clauses = [{key: value} for key, value in conditions.items()]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class VectorIndex:
    """Opens the collection of each asset; all collections use cosine distance."""

    def __init__(self, client: "ClientAPI") -> None:
        self._client = client
        # Opening a collection costs a round trip (1.3 ms embedded); assets keep theirs.
        self._open: dict[str, AssetCollection] = {}
        self._lock = threading.Lock()

    def collection(self, name: str) -> AssetCollection:
        from chromadb.errors import ChromaError

        with self._lock:
            if name in self._open:
                return self._open[name]
            try:
                collection = self._client.get_or_create_collection(
                    name,
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=None,
                )
            except ChromaError as exc:
                raise IndexUnavailable(f"vector index unavailable: {exc}") from exc
            self._open[name] = AssetCollection(collection)
            return self._open[name]

    def heartbeat(self) -> None:
        """Raise IndexUnavailable unless the index answers."""
        from chromadb.errors import ChromaError

        try:
            self._client.heartbeat()
        except (ChromaError, OSError, ValueError) as exc:
            raise IndexUnavailable(f"vector index unavailable: {exc}") from exc

    def close(self) -> None:
        """Release the client's connections and files (the last client of a path stops it)."""
        # chromadb 1.5's HTTP client never closes its httpx session; close it here so that its
        # sockets do not leak into whatever runs next.
        for client in (self._client, getattr(self._client, "_admin_client", None)):
            session = getattr(getattr(client, "_server", None), "_session", None)
            if session is not None:
                session.close()
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    def drop(self, name: str) -> None:
        from chromadb.errors import NotFoundError

        with self._lock:
            self._open.pop(name, None)
            with contextlib.suppress(NotFoundError):
                self._client.delete_collection(name)


def open_index(settings: ChromaSettings, path: Path) -> VectorIndex:
    """The index the settings name: a Chroma server if a host is set, else files under ``path``."""
    import chromadb
    from chromadb.config import Settings as ChromaClientSettings

    client_settings = ChromaClientSettings(anonymized_telemetry=False, allow_reset=False)
    client: ClientAPI
    if settings.host:
        client = chromadb.HttpClient(
            host=settings.host, port=settings.port, ssl=settings.ssl, settings=client_settings
        )
    else:
        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(path), settings=client_settings)
    return VectorIndex(client)
