"""BM25 over one asset's chunks: the one module that imports bm25s and PyStemmer.

The lexical index is rebuilt from the collection after each ingest, since bm25s indexes are not
updated in place, and kept in the database as a versioned snapshot that every process copies
into its own data dir (``<data dir>/lexical/<collection>``) when its copy is older: replicas on
other machines search what the last ingest built (``LexicalStore``).

Tokens suit each kind: identifiers are kept whole and also split into their parts
(``getAppDir`` -> ``getappdir get app dir``), and citation forms stay whole (``Art. 17(3)(b)``
-> ``art17 art17(3) art17(3)(b)``, ``§ 164.512`` -> ``§164.512``, rule ``1.1.2``).

The abbreviations the chunks define (``assets/abbreviations.py``) are learnt in the same pass
and stored with the index, so that they follow the documents: a re-ingest that changes or
removes the text defining one rebuilds them.
"""

import io
import json
import re
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer
from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from assets.abbreviations import Abbreviations
from assets.models import LexicalSnapshot
from core.clock import utcnow

_STEMMER = Stemmer.Stemmer("english")
_STOPWORDS = frozenset(
    """a an and are as at be but by for from has have how i if in into is it its of on or
    that the their then there these they this to was what when where which who why will with
    would you your does do can could should may shall""".split()  # noqa: SIM905
)
_ARTICLE = re.compile(r"\bart(?:icle)?s?\.?\s*(\d+[a-z]?)((?:\s?\([0-9a-z]+\))*)", re.I)
_SECTION = re.compile(r"§+\s*(\d+(?:\.\d+)*[a-z]?)((?:\s?\([0-9a-z]+\))*)", re.I)
_RULE = re.compile(r"\b[a-z]{0,4}\d+(?:\.\d+){2,}[a-z]?\b", re.I)
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b")  # Class.method, pkg.mod.func
_WORD = re.compile(r"[^\W_]+(?:[_'][^\W_]+)*|_+[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _citations(text: str) -> list[str]:
    tokens: list[str] = []
    for pattern, prefix in ((_ARTICLE, "art"), (_SECTION, "§")):
        for match in pattern.finditer(text):
            base = f"{prefix}{match.group(1).lower()}"
            tokens.append(base)
            for part in re.findall(r"\(([0-9a-z]+)\)", match.group(2).lower()):
                base += f"({part})"
                tokens.append(base)
    tokens.extend(match.group(0).lower() for match in _RULE.finditer(text))
    tokens.extend(match.group(0).lower() for match in _DOTTED.finditer(text))
    return tokens


def tokenize(text: str) -> list[str]:
    """BM25 tokens for a chunk or a query (the same rules for both)."""
    tokens = _citations(text)
    for match in _WORD.finditer(text):
        word = match.group(0)
        lower = word.lower()
        parts = [p.lower() for piece in word.split("_") for p in _CAMEL.findall(piece)]
        if len(parts) > 1:  # an identifier: whole, and each part
            tokens.append(lower.strip("_"))
            words = parts
        else:
            words = [lower]
        kept = [w for w in words if w not in _STOPWORDS and len(w) > 1]
        tokens.extend(_STEMMER.stemWords(kept))
    return tokens


def document_text(text: str, metadata: dict[str, Any]) -> str:
    """What BM25 indexes for a chunk: its path, symbol, citation and headings, and its text."""
    fields = ("path", "symbol", "section", "heading")
    return "\n".join([*(str(metadata.get(f) or "") for f in fields), text])


@dataclass(frozen=True, slots=True)
class LexicalHit:
    id: str
    score: float


_FIELDS = ("ids", "paths", "kinds", "symbols", "sections")
# What ``save`` writes; an index saved in an older format is rebuilt by the next ingest.
# 2: with the abbreviations the chunks define.
FORMAT = 2


class LexicalIndex:
    """An asset's BM25 index, with the id, path, kind, symbol and citation of every chunk, and
    the abbreviations the chunks define."""

    def __init__(
        self,
        bm25: bm25s.BM25 | None,
        columns: dict[str, list[str]],
        abbreviations: Abbreviations | None = None,
        version: int = FORMAT,
    ) -> None:
        self._bm25 = bm25
        self.abbreviations = abbreviations or Abbreviations()
        self.version = version
        self.ids = columns.get("ids", [])
        self.paths = columns.get("paths", [])
        self.kinds = columns.get("kinds", [])
        self.symbols = columns.get("symbols", [])
        self.sections = columns.get("sections", [])

    @classmethod
    def empty(cls) -> "LexicalIndex":
        return cls(None, {})

    @classmethod
    def build(cls, records: Iterable[tuple[str, str, dict[str, Any]]]) -> "LexicalIndex":
        columns: dict[str, list[str]] = {name: [] for name in _FIELDS}
        corpus = []
        texts = []
        for chunk_id, text, metadata in records:
            texts.append(text)
            columns["ids"].append(chunk_id)
            for name, key in (("paths", "path"), ("kinds", "kind"), ("symbols", "symbol"),
                              ("sections", "section")):  # fmt: skip
                columns[name].append(str(metadata.get(key) or ""))
            corpus.append(tokenize(document_text(text, metadata)))
        if not corpus:
            return cls.empty()
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        return cls(bm25, columns, Abbreviations.learn(texts))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {chunk_id: row for row, chunk_id in enumerate(self.ids)}

    def kind(self, chunk_id: str) -> str:
        """The chunk's kind (code, regulation, paper, text), or "" if it is not indexed."""
        row = self._rows.get(chunk_id)
        return self.kinds[row] if row is not None and row < len(self.kinds) else ""

    @cached_property
    def _names(self) -> dict[str, list[str]]:
        """Chunk ids by each symbol they define (whole, and its last part) and each citation."""
        names: dict[str, list[str]] = {}
        for chunk_id, symbol, section in zip(self.ids, self.symbols, self.sections, strict=True):
            keys = set()
            for name in (s.lower() for s in symbol.split(", ") if s):
                keys |= {name, name.rsplit(".", 1)[-1]}
            keys |= {f"cite:{c}" for c in _citations(section)[-1:]} if section else set()
            for key in keys:
                names.setdefault(key, []).append(chunk_id)
        return names

    def exact(self, query: str) -> list[str]:
        """Chunks whose symbol or citation path the query names exactly."""
        keys = {m.group(0).lower() for m in _DOTTED.finditer(query)}
        keys |= {
            m.group(0).lower()
            for m in _WORD.finditer(query)
            if "_" in m.group(0) or len(_CAMEL.findall(m.group(0))) > 1
        }
        keys |= {f"cite:{c}" for c in _citations(query)}
        found: dict[str, None] = {}
        for key in keys:
            found.update(dict.fromkeys(self._names.get(key, [])))
        return list(found)

    def mask(self, kinds: Sequence[str] | None, path_prefix: str | None) -> np.ndarray | None:
        """Which chunks pass the filters (None: all of them)."""
        if not kinds and not path_prefix:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        # Typed arrays: an empty list would make a float array, which string operations refuse.
        if kinds:
            keep &= np.isin(np.array(self.kinds, dtype=str), list(kinds))
        if path_prefix:
            # str.startswith, as the dense side's path filter: numpy's string arrays drop
            # trailing NULs, so np.char.startswith would match a prefix of "\0" everywhere.
            keep &= np.fromiter(
                (path.startswith(path_prefix) for path in self.paths), bool, len(self.paths)
            )
        return keep

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[LexicalHit]:
        tokens = tokenize(query)
        if self._bm25 is None or not tokens:
            return []
        k = min(k, len(self.ids))
        weights = mask.astype(np.float32) if mask is not None else None
        documents, scores = self._bm25.retrieve(
            [tokens], k=k, show_progress=False, n_threads=0, weight_mask=weights
        )
        return [
            LexicalHit(self.ids[int(d)], float(s))
            for d, s in zip(documents[0], scores[0], strict=True)
            if s > 0
        ]

    def save(self, directory: Path) -> None:
        """Write the index to ``directory``, replacing it atomically."""
        temporary = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(temporary / "bm25"), show_progress=False)
        columns: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        columns["abbreviations"] = self.abbreviations.to_json()
        columns["format"] = self.version
        (temporary / "chunks.json").write_text(json.dumps(columns))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        temporary.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        columns = json.loads((directory / "chunks.json").read_text())
        bm25 = None
        if (directory / "bm25").exists():
            bm25 = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
        abbreviations = Abbreviations.from_json(columns.get("abbreviations"))
        return cls(bm25, columns, abbreviations, int(columns.get("format", 1)))


class LexicalStore:
    """The lexical indexes of all assets, shared through the database.

    The process that rebuilds an index (the worker after an ingest) stores it as a new version
    of the asset's ``LexicalSnapshot`` row. Every process keeps a copy under its own data dir
    (``<root>/<collection>``, with the version it holds) and a loaded one in memory; on each
    ``get`` it reads the row's version (one indexed lookup, not the data; at most once every
    ``recheck_seconds``) and fetches the snapshot only when its copy is older. So a replica on
    another machine searches what the last ingest built, and a restarted one loads its copy
    from disk without fetching.
    """

    def __init__(self, root: Path, engine: Engine, *, recheck_seconds: float = 1.0) -> None:
        self.root = root
        self.engine = engine
        # How long a version read is trusted: a search costs no database round trip within it,
        # and another process's rebuild is seen at most this late.
        self.recheck_seconds = recheck_seconds
        self._checked: dict[str, tuple[float, int | None]] = {}
        self._cache: dict[str, tuple[int, LexicalIndex]] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _dir(self, collection: str) -> Path:
        return self.root / collection

    def version(self, collection: str) -> int | None:
        """The version of the asset's latest index, None if none was built yet."""
        with Session(self.engine) as session:
            return session.exec(
                select(LexicalSnapshot.version).where(LexicalSnapshot.collection == collection)
            ).first()

    def replace(self, collection: str, index: LexicalIndex) -> int:
        """Store ``index`` as the asset's next version, for every process; return it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root) as folder:
            saved = Path(folder) / "index"
            index.save(saved)
            version = self._store(collection, len(index), _pack(saved))
            with self._lock_of(collection):
                _install(saved, self._dir(collection), version)
                self._cache[collection] = (version, index)
                self._checked[collection] = (time.monotonic(), version)
        return version

    def _store(self, collection: str, chunks: int, data: bytes) -> int:
        """Write the snapshot as the next version: the UPDATE takes the row's lock (SQLite's
        write lock), so concurrent rebuilds get distinct versions and the last one stands."""
        table = LexicalSnapshot.__table__  # type: ignore[attr-defined]
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        where = col(LexicalSnapshot.collection) == collection
        with Session(self.engine) as session:
            blank = {"version": 0, "chunks": 0, "data": b"", "built_at": utcnow()}
            session.execute(
                insert(table).values(collection=collection, **blank).on_conflict_do_nothing()
            )
            session.execute(
                update(LexicalSnapshot)
                .where(where)
                .values(
                    version=col(LexicalSnapshot.version) + 1,
                    chunks=chunks,
                    data=data,
                    built_at=utcnow(),
                )
            )
            version = session.exec(select(LexicalSnapshot.version).where(where)).one()
            session.commit()
        return version

    def get(self, collection: str) -> LexicalIndex:
        """The asset's latest index (as of at most ``recheck_seconds`` ago); empty if none was
        built yet."""
        now = time.monotonic()
        checked = self._checked.get(collection)
        if checked is not None and now - checked[0] < self.recheck_seconds:
            version = checked[1]
        else:
            version = self.version(collection)
            self._checked[collection] = (now, version)
        if version is None:
            return LexicalIndex.empty()
        with self._lock_of(collection):
            cached = self._cache.get(collection)
            if cached is not None and cached[0] == version:
                return cached[1]
            directory = self._dir(collection)
            held = _held_version(directory)
            if held != version:
                held = self._fetch(collection, directory)
            index = LexicalIndex.load(directory)
            self._cache[collection] = (held, index)
            return index

    def _lock_of(self, collection: str) -> threading.Lock:
        """One lock per asset: fetching a large index does not hold up the others' searches."""
        with self._guard:
            return self._locks.setdefault(collection, threading.Lock())

    def _fetch(self, collection: str, directory: Path) -> int:
        """Copy the asset's latest snapshot into ``directory``; return its version."""
        with Session(self.engine) as session:
            version, data = session.exec(
                select(LexicalSnapshot.version, LexicalSnapshot.data).where(
                    LexicalSnapshot.collection == collection
                )
            ).one()
        directory.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory.parent) as folder:
            unpacked = Path(folder) / "index"
            _unpack(data, unpacked)
            _install(unpacked, directory, version)
        return version


# The file in a local copy that names the snapshot version it holds.
_VERSION = "version"


def _held_version(directory: Path) -> int | None:
    try:
        return int((directory / _VERSION).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _install(folder: Path, directory: Path, version: int) -> None:
    """Put the index in ``folder`` (in the same file system) at ``directory``, as ``version``."""
    (folder / _VERSION).write_text(str(version))
    old = folder.with_name(folder.name + ".old")
    if directory.exists():
        directory.rename(old)
    folder.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def _pack(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(directory)))
    return buffer.getvalue()


def _unpack(data: bytes, directory: Path) -> None:
    directory.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(directory, filter="data")
