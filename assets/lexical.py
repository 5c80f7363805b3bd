"""BM25 over one asset's chunks: the one module that imports bm25s and PyStemmer.

The lexical index is stored beside the vector collection (``<data dir>/lexical/<collection>``)
and rebuilt from the collection after each ingest, since bm25s indexes are not updated in
place. Tokens suit each kind: identifiers are kept whole and also split into their parts
(``getAppDir`` -> ``getappdir get app dir``), and citation forms stay whole (``Art. 17(3)(b)``
-> ``art17 art17(3) art17(3)(b)``, ``§ 164.512`` -> ``§164.512``, rule ``1.1.2``).

The abbreviations the chunks define (``assets/abbreviations.py``) are learnt in the same pass
and stored with the index, so that they follow the documents: a re-ingest that changes or
removes the text defining one rebuilds them.
"""

import json
import re
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer

from assets.abbreviations import Abbreviations

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
        columns["format"] = FORMAT
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
    """The lexical indexes of all assets under one folder, cached in memory once loaded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, tuple[float, LexicalIndex]] = {}
        self._lock = threading.Lock()

    def _dir(self, collection: str) -> Path:
        return self.root / collection

    def replace(self, collection: str, index: LexicalIndex) -> None:
        self._dir(collection).parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            index.save(self._dir(collection))
            self._cache.pop(collection, None)

    def get(self, collection: str) -> LexicalIndex:
        """The asset's index; empty if none was built yet. Reloaded when another process
        (a worker) rebuilt it."""
        marker = self._dir(collection) / "chunks.json"
        try:
            version = marker.stat().st_mtime
        except FileNotFoundError:
            return LexicalIndex.empty()
        with self._lock:
            cached = self._cache.get(collection)
            if cached is None or cached[0] != version:
                cached = (version, LexicalIndex.load(self._dir(collection)))
                self._cache[collection] = cached
            return cached[1]

    def drop(self, collection: str) -> None:
        with self._lock:
            shutil.rmtree(self._dir(collection), ignore_errors=True)
            self._cache.pop(collection, None)
