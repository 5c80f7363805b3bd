"""The BM25 index shared through the database: what one process builds, every other one
searches, each from its own data dir (as replicas on separate machines do)."""

import threading
from pathlib import Path

import pytest

from app.runtime import Runtime
from assets.lexical import LexicalIndex, LexicalStore

pytestmark = pytest.mark.both_databases


def chunks(*texts: str) -> list[tuple[str, str, dict[str, str]]]:
    return [(f"c{n}", text, {"path": f"doc{n}.md", "kind": "text"}) for n, text in enumerate(texts)]


def ids(index: LexicalIndex, query: str) -> list[str]:
    return [hit.id for hit in index.search(query, 5)]


def store(root: Path, runtime: Runtime) -> LexicalStore:
    """A process's store that reads the version on every search (1 s in the product)."""
    return LexicalStore(root, runtime.engine, recheck_seconds=0)


def test_an_index_built_by_one_process_is_searched_by_another(
    runtime: Runtime, tmp_path: Path
) -> None:
    worker = store(tmp_path / "worker", runtime)
    replica = store(tmp_path / "replica", runtime)
    assert len(replica.get("col")) == 0  # nothing built yet

    assert worker.replace("col", LexicalIndex.build(chunks("refund policy", "shipping"))) == 1
    assert ids(replica.get("col"), "refund") == ["c0"]

    # A re-ingest changes the documents: the replica sees the new version on its next search.
    assert worker.replace("col", LexicalIndex.build(chunks("shipping", "refund in 30 days"))) == 2
    assert ids(replica.get("col"), "refund") == ["c1"]
    assert (tmp_path / "replica" / "col" / "version").read_text() == "2"

    # A restarted replica reads its own copy; a replica with a lost data dir fetches it again.
    assert ids(store(tmp_path / "replica", runtime).get("col"), "refund") == ["c1"]
    assert ids(store(tmp_path / "new", runtime).get("col"), "refund") == ["c1"]
    # Other assets are apart.
    assert len(replica.get("other")) == 0


def test_a_stale_local_copy_is_replaced_not_trusted(runtime: Runtime, tmp_path: Path) -> None:
    worker = store(tmp_path / "worker", runtime)
    worker.replace("col", LexicalIndex.build(chunks("refund policy")))
    replica = store(tmp_path / "replica", runtime)
    assert ids(replica.get("col"), "refund") == ["c0"]
    worker.replace("col", LexicalIndex.build(chunks("nothing here", "a refund")))
    # A new process over the replica's data dir: its copy is version 1, the database has 2.
    assert ids(store(tmp_path / "replica", runtime).get("col"), "refund") == ["c1"]


def test_concurrent_rebuilds_get_distinct_versions(runtime: Runtime, tmp_path: Path) -> None:
    stores = [LexicalStore(tmp_path / f"w{n}", runtime.engine) for n in range(4)]
    versions: list[int] = []

    def rebuild(store: LexicalStore) -> None:
        versions.append(store.replace("col", LexicalIndex.build(chunks("refund"))))

    threads = [threading.Thread(target=rebuild, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == [1, 2, 3, 4]
    assert LexicalStore(tmp_path / "reader", runtime.engine).version("col") == 4


def test_a_rebuild_elsewhere_is_seen_once_the_version_is_read_again(
    runtime: Runtime, tmp_path: Path
) -> None:
    worker = store(tmp_path / "worker", runtime)
    worker.replace("col", LexicalIndex.build(chunks("refund policy")))
    replica = LexicalStore(tmp_path / "replica", runtime.engine, recheck_seconds=3600)
    assert ids(replica.get("col"), "refund") == ["c0"]
    worker.replace("col", LexicalIndex.build(chunks("nothing here", "a refund")))
    assert ids(replica.get("col"), "refund") == ["c0"]  # within recheck_seconds: no query
    replica.recheck_seconds = 0
    assert ids(replica.get("col"), "refund") == ["c1"]
