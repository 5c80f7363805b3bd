"""The local MiniLM embedder and the OpenAI-compatible one behind the same interface."""

from pathlib import Path

import numpy as np
import pytest

from app import querying
from app.runtime import Runtime
from assets.embeddings import MiniLMEmbedder, OpenAIEmbedder, _checked_bytes, build_embedder
from assets.errors import EmbedderMismatch, EmbedderUnavailable
from core.config import EmbeddingSettings, QueueSettings, Settings
from core.db import make_engine, session_scope
from migrations import upgrade
from tests.factories import HANDBOOK, create_actor, create_test_asset, ingest_path
from tests.servers import embeddings_server, free_port


def test_minilm_gives_unit_vectors_that_rank_by_meaning(embedder: MiniLMEmbedder) -> None:
    query, close, far = embedder.embed(
        [
            "How do I get my money back?",
            "Refunds are paid to the original card within 14 days.",
            "The tomato seedlings need full sun and regular watering.",
        ]
    )
    vectors = np.array([query, close, far])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


@pytest.fixture(scope="module")
def uncached() -> MiniLMEmbedder:
    return MiniLMEmbedder(cache_size=0)


def test_minilm_batch_does_not_change_a_vector(uncached: MiniLMEmbedder) -> None:
    text = "Orders placed before noon are delivered the next working day."
    alone = np.array(uncached.embed([text])[0])
    batched = np.array(uncached.embed(["short", text, "a much longer sentence " * 20])[1])
    assert float(alone @ batched) > 0.9999


def test_texts_seen_before_get_their_vectors_in_the_callers_order(
    uncached: MiniLMEmbedder,
) -> None:
    """Repeats in one call, across calls and past the cache's size all come back as computed."""
    small = MiniLMEmbedder(cache_size=2)
    texts = ["refunds", "shipping", "refunds", "returns", "gift cards", "refunds", "shipping"]
    got = small.embed(texts[:3]) + small.embed(texts[3:5]) + small.embed(texts[5:])
    want = uncached.embed(texts)
    assert len(got) == len(texts)
    for mine, theirs in zip(got, want, strict=True):
        assert float(np.array(mine) @ np.array(theirs)) > 0.9999
    assert len(small._cache) == 2


def test_model_file_that_does_not_match_its_hash_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "model.onnx"
    tampered.write_bytes(b"not the model")
    with pytest.raises(EmbedderUnavailable, match="does not match its pinned sha256"):
        _checked_bytes(tampered, "0" * 64)


def test_openai_compatible_endpoint_replaces_the_local_model() -> None:
    with embeddings_server(dimension=48) as (url, requests):
        embedder = build_embedder(
            EmbeddingSettings(provider="openai", model="hash-48", base_url=url, batch_size=2)
        )
        assert isinstance(embedder, OpenAIEmbedder)
        vectors = embedder.embed(["one", "two words", "three little words"])
        assert embedder.dimension == 48
        assert embedder.name == "hash-48"
    assert len(vectors) == 3
    assert np.allclose(np.linalg.norm(np.array(vectors), axis=1), 1.0)
    assert [len(r["input"]) for r in requests[:2]] == [2, 1]  # batched as configured


def test_unreachable_endpoint_is_a_clear_error() -> None:
    embedder = OpenAIEmbedder(
        model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="", batch_size=8
    )
    with pytest.raises(EmbedderUnavailable, match="embeddings endpoint failed"):
        embedder.embed(["hello"])


def test_asset_built_with_endpoint_records_it_and_refuses_another_model(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    with embeddings_server(dimension=32) as (url, _):
        settings = Settings(
            data_dir=tmp_path,
            queue=QueueSettings(immediate=True),
            embeddings=EmbeddingSettings(provider="openai", model="hash-32", base_url=url),
        )
        upgrade(make_engine(settings.sqlalchemy_url))
        remote = Runtime(settings)
        expert = create_actor(remote, role="expert")
        asset = create_test_asset(remote, owner=expert.account, slug="remote")
        assert (asset.embed_model, asset.embed_dimension) == ("hash-32", 32)
        job = ingest_path(remote, asset=asset, owner=expert.account, path=HANDBOOK)
        assert job.status == "succeeded"
        assert job.chunks_written > 0
        remote.close()

    # The same data dir with the local model configured: the asset's vectors do not fit it.
    local = Runtime(
        settings.model_copy(update={"embeddings": EmbeddingSettings()}), embedder=embedder
    )
    with (
        session_scope(local.engine) as session,
        pytest.raises(EmbedderMismatch, match="embedded with hash-32"),
    ):
        querying.ask(session, local, account=expert.account, slug="remote", question="refund")
    local.close()
