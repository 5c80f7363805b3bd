"""The clients an entry point needs, built once from Settings: database, vectors, embedder, queue.

The API (``create_app``), the CLI and the worker each build one ``Runtime``, and attach to it
what runs beside the requests (``app.wiring.wire``): the queued tasks and the handlers of
Stripe's events. Runtime itself imports none of the modules that use it. The embedder and the
vector index are built on first use, so that commands that do not need them start fast.
"""

import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app.accounts import PasswordChecks
from app.ratelimit import AskLimiter, SampleLimiter, SignInThrottle, build_buckets
from assets.embeddings import Embedder, build_embedder
from assets.index import VectorIndex, open_index
from assets.lexical import LexicalStore
from assets.llm import ChatModel, build_llm
from assets.rerank import Reranker, build_reranker
from billing.gateway import Gateway, build_gateway
from core.config import Settings
from core.db import make_engine
from ingestion.tasks import IngestContext, Queue, build_queue

# Applies a new, verified Stripe event after billing's own handlers, in the same transaction.
StripeHandler = Callable[[Session, "Runtime", dict[str, Any]], None]


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        gateway: Gateway | None = None,
    ) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = make_engine(settings.sqlalchemy_url)
        self.queue: Queue = build_queue(
            settings.queue_path,
            self.engine,
            self.ingest_context,
            immediate=settings.queue.immediate,
            redis_url=settings.queue.redis_url,
            name=settings.queue.name,
        )
        self._lock = threading.Lock()
        # An embedder may be handed in (tests share one loaded model); else built on first use.
        self._embedder: Embedder | None = embedder
        self._index: VectorIndex | None = None
        self._llm: ChatModel | None = None
        self._reranker: Reranker | None = None
        self._reranker_built = False
        self._lexical = LexicalStore(settings.data_dir / "lexical", self.engine)
        # A gateway may be handed in (tests use an in-memory one); else built from the settings.
        self._gateway: Gateway | None = gateway
        self._gateway_built = gateway is not None
        self.buckets = build_buckets(settings.billing.rate_limit_redis_url)
        self.rate_limiter = AskLimiter(self.buckets, settings.billing.asks_per_minute)
        self.sign_in_throttle = SignInThrottle(self.buckets, settings.auth)
        self.sample_limiter = SampleLimiter(
            self.buckets, settings.marketplace.sample_pages_per_minute
        )
        self.password_checks = PasswordChecks(
            settings.auth.password_workers, settings.auth.password_waiting
        )
        # Set by the entry point that built this runtime (``attach``).
        self._deliver_webhook: Callable[[str], None] | None = None
        self.stripe_handlers: tuple[StripeHandler, ...] = ()

    @property
    def attached(self) -> bool:
        """Whether an entry point attached the app's tasks and handlers (``attach``)."""
        return self._deliver_webhook is not None

    def attach(
        self, *, deliver_webhook: Callable[[str], None], stripe_handlers: Iterable[StripeHandler]
    ) -> None:
        """Take what queues a webhook delivery and what follows billing on a Stripe event."""
        self._deliver_webhook = deliver_webhook
        self.stripe_handlers = tuple(stripe_handlers)

    def deliver_webhook(self, delivery_id: str) -> None:
        """Queue a webhook delivery (run inline when the queue is immediate)."""
        if self._deliver_webhook is None:
            raise RuntimeError("no tasks attached to this runtime: build it with app.wiring")
        self._deliver_webhook(delivery_id)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = build_embedder(self.settings.embeddings)
        return self._embedder

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = open_index(self.settings.chroma, self.settings.chroma_path)
        return self._index

    @property
    def gateway(self) -> Gateway | None:
        """Stripe, or None when no secret key is configured (payments are off)."""
        if not self._gateway_built:
            with self._lock:
                if not self._gateway_built:
                    self._gateway = build_gateway(self.settings.billing)
                    self._gateway_built = True
        return self._gateway

    @property
    def lexical(self) -> LexicalStore:
        """The assets' BM25 indexes: shared through the database, copied into the data dir."""
        return self._lexical

    @property
    def llm(self) -> ChatModel:
        """The chat model for answers; only when ``settings.llm.enabled`` (else LLMUnavailable)."""
        if self._llm is None:
            with self._lock:
                return self._chat()
        return self._llm

    @property
    def reranker(self) -> Reranker | None:
        """The re-rank stage after fused search, or None when ``settings.rerank`` is off."""
        if not self._reranker_built:
            with self._lock:
                if not self._reranker_built:
                    self._reranker = build_reranker(self.settings.rerank, self._chat)
                    self._reranker_built = True
        return self._reranker

    def _chat(self) -> ChatModel:
        # Called with self._lock held (by ``llm`` and ``reranker``): builds it once.
        if self._llm is None:
            self._llm = build_llm(self.settings.llm)
        return self._llm

    def ingest_context(self) -> IngestContext:
        return IngestContext(
            engine=self.engine,
            index=self.index,
            embedder=self.embedder,
            limits=self.settings.ingest,
            lexical=self.lexical,
            work_dir=self.settings.work_path,
        )

    def close(self) -> None:
        self.buckets.close()
        if self._reranker is not None:
            self._reranker.close()
            self._reranker = None
        if self._llm is not None:
            self._llm.close()
            self._llm = None
        if self._index is not None:
            self._index.close()
            self._index = None
        self.engine.dispose()
