"""The use cases that span packages: searching, asking (answer + metering), and ingesting."""

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlmodel import Session

from app import reviewing
from app.accounts import ensure_verified, viewer_of
from app.models import Account
from app.runtime import Runtime
from assets import answering, calibration, retrieval, review
from assets.answering import Answer
from assets.models import Asset, Consultation, VerifiedAnswer
from assets.service import (
    Viewer,
    can_manage,
    get_managed_asset,
    get_visible_asset,
    record_consultation,
)
from billing import service as billing
from billing.metering import count_tokens
from billing.models import Charge
from core.clock import utcnow
from core.db import after_commit, session_scope
from core.errors import VouchError
from ingestion import service as ingestion
from ingestion.errors import JobNotFound
from ingestion.models import IngestionJob

log = logging.getLogger(__name__)
# Passages an answer is drawn from.
ANSWER_K = 10


def search(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    slug: str,
    query: str,
    k: int,
    kinds: list[str] | None = None,
    path_prefix: str | None = None,
    idempotency_key: str | None = None,
) -> list[retrieval.Passage]:
    """Raw passages. The asset's owner and admins search free; a client searches a published
    asset as its plan says: not at all (403), free, or paid from credits at once (402 without
    enough). The charge is written after the search, in a transaction of its own under the
    client's wallet lock (see ``_record``), so a search that fails costs nothing; a known
    Idempotency-Key searches again without a second charge, and with another search is 409."""
    viewer = viewer_of(account)
    asset = get_visible_asset(session, viewer=viewer, slug=slug)
    # Every parameter of the search: one key is one search, retried.
    fingerprint = billing.request_hash(
        asset.id, "search", query, str(k), "\x1e".join(kinds or ()), path_prefix or ""
    )
    managed = can_manage(viewer, asset)
    earlier = None
    if not managed and idempotency_key is not None:
        earlier = billing.find_search_charge(
            session, account_id=account.id, key=idempotency_key, fingerprint=fingerprint
        )
    # A retry of a search already paid for is not priced again (its credits may be spent).
    if not managed and earlier is None:
        price = billing.search_price(
            session, account_id=account.id, asset_id=asset.id, name=asset.slug
        )
        if price.source != "free":
            ensure_verified(account, "search a priced asset")
    passages = retrieval.search(
        asset,
        query=query,
        k=k,
        index=runtime.index,
        embedder=runtime.embedder,
        lexical=runtime.lexical,
        kinds=kinds,
        path_prefix=path_prefix,
        reranker=runtime.reranker,
    )
    if managed:
        return passages
    # Only reads so far: end them, so that the charge's own transaction takes the write lock.
    session.commit()
    with session_scope(runtime.engine) as own:
        billing.charge_search(
            own,
            account_id=account.id,
            asset_id=asset.id,
            expert_id=asset.owner_id,
            name=asset.slug,
            fee_bps=runtime.settings.billing.platform_fee_bps,
            now=utcnow(),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
    return passages


@dataclass(frozen=True, slots=True)
class AskResult:
    consultation: Consultation
    charge: Charge
    # True when an Idempotency-Key matched an earlier request: nothing new was charged.
    replayed: bool = False

    def public(self) -> dict[str, Any]:
        return consultation_public(self.consultation, self.charge)


def consultation_public(c: Consultation, charge: Charge | None) -> dict[str, Any]:
    """The ask JSON shape shared by the API, the pages and the CLI."""
    return {
        "answer": c.answer,
        "citations": c.citations,
        "confidence": c.confidence,
        "status": c.status,
        "review_reason": None if c.status == "final" else c.review_reason,
        "consultation_id": c.id,
        "tokens": {"prompt": c.prompt_tokens, "completion": c.completion_tokens},
        "charge": billing.charge_public(charge) if charge else None,
    }


@dataclass(frozen=True, slots=True)
class _Question:
    """A question that passed every check, with the passages its answer is drawn from."""

    asset: Asset
    viewer: Viewer
    question: str
    passages: list[retrieval.Passage]
    started: float
    idempotency_key: str | None
    fingerprint: str
    # An expert's verified answer to a question that means the same, served instead.
    verified: VerifiedAnswer | None = None
    verified_by: str = ""
    # How the asset's own reviews move its kind's calibration (assets/calibration.py).
    offset: float = 0.0
    vector: list[float] | None = None  # the question's, as retrieval embedded it


def _replay(session: Session, charge: Charge) -> AskResult:
    consultation = session.get(Consultation, charge.consultation_id)
    assert consultation is not None
    return AskResult(consultation=consultation, charge=charge, replayed=True)


def _quote(session: Session, runtime: Runtime, asset: Asset, viewer: Viewer) -> billing.Price:
    """What the question costs the viewer; an asset's owner (and admins) ask it for free."""
    if can_manage(viewer, asset):
        return billing.Price("free", 0, runtime.settings.billing.currency)
    account = session.get(Account, viewer.account_id)
    return billing.quote(
        session,
        account_id=viewer.account_id,
        asset_id=asset.id,
        now=utcnow(),
        currency=runtime.settings.billing.currency,
        # An unverified account spends its trial questions before anything it paid for.
        trial_first=account is not None and account.email_verified_at is None,
    )


def _prepare(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    slug: str,
    question: str,
    idempotency_key: str | None,
) -> _Question | AskResult:
    """Check the caller's allowance of questions per minute (429), the question and the caller's
    entitlement (402/403) before any work is done, then retrieve its passages; a known
    Idempotency-Key returns the earlier result instead."""
    runtime.rate_limiter.check(account.id)
    viewer = viewer_of(account)
    asset = get_visible_asset(session, viewer=viewer, slug=slug)
    question = retrieval.clean_query(question)
    fingerprint = billing.request_hash(asset.id, question)
    if idempotency_key is not None:
        earlier = billing.find_idempotent(
            session, account_id=account.id, key=idempotency_key, fingerprint=fingerprint
        )
        if earlier is not None:
            return _replay(session, earlier)
    price = _quote(session, runtime, asset, viewer)
    if price.source not in ("trial", "free"):
        # An unverified account asks its trial questions; paid ones wait for a proved address.
        ensure_verified(account, "ask a paid question")
    started = time.perf_counter()
    # Embedded once: for the verified answers, then for retrieval (a question that spells out
    # a long form the asset abbreviates is embedded a second time, contracted, if no verified
    # answer matched it as written).
    retrieval.check_embedder(asset, runtime.embedder)
    (vector,) = runtime.embedder.embed([question])
    verified = review.match_verified(
        session,
        asset=asset,
        question=question,
        vector=vector,
        index=runtime.index,
        embedder=runtime.embedder,
        abbreviations=reviewing.abbreviations_of(runtime, asset),
    )
    if verified is not None:
        expert = session.get(Account, verified.expert_id)
        name = expert.name if expert else "the expert"
        return _Question(
            asset, viewer, question, [], started, idempotency_key, fingerprint, verified, name
        )
    passages = _passages(runtime, asset, question, vector)
    return _Question(
        asset,
        viewer,
        question,
        passages,
        started,
        idempotency_key,
        fingerprint,
        offset=_offset(session, asset),
        vector=vector,
    )


def _offset(session: Session, asset: Asset) -> float:
    """The shift of the asset's calibration learnt from its reviewed answers."""
    return calibration.asset_offset(
        review.reviewed_outcomes(session, asset_id=asset.id, limit=calibration.REVIEWS)
    )


def _passages(
    runtime: Runtime, asset: Asset, question: str, vector: list[float] | None = None
) -> list[retrieval.Passage]:
    """The passages an answer to ``question`` is drawn from: provisions with their points."""
    found = retrieval.search(
        asset,
        query=question,
        k=ANSWER_K,
        index=runtime.index,
        embedder=runtime.embedder,
        lexical=runtime.lexical,
        vector=vector,
        reranker=runtime.reranker,
    )
    return retrieval.complete_provisions(asset, found, runtime.index)


def _llm_options(runtime: Runtime) -> answering.LLMOptions:
    limits = runtime.settings.llm
    return answering.LLMOptions(
        llm=runtime.llm,
        count_tokens=count_tokens,
        max_context_tokens=limits.max_context_tokens,
        max_answer_tokens=limits.max_answer_tokens,
    )


def answer_passages(
    runtime: Runtime,
    *,
    question: str,
    passages: list[retrieval.Passage],
    review_threshold: float,
    offset: float = 0.0,
    query: list[float] | None = None,
) -> Answer:
    """An answer from ``passages`` that records and bills nothing (for the eval runner):
    written by the configured chat model, or extractive when there is none."""
    if runtime.settings.llm.enabled:
        return answering.answer_with_llm(
            question,
            passages,
            options=_llm_options(runtime),
            review_threshold=review_threshold,
            offset=offset,
        )
    return answering.answer(
        question,
        passages,
        review_threshold=review_threshold,
        embed=runtime.embedder.embed,
        offset=offset,
        query=query,
    )


def _from_verified(asked: _Question) -> Answer:
    assert asked.verified is not None
    return review.verified_answer(
        asked.verified, question=asked.question, expert_name=asked.verified_by
    )


def _answer(runtime: Runtime, asked: _Question) -> Answer:
    if asked.verified is not None:
        return _from_verified(asked)
    return answer_passages(
        runtime,
        question=asked.question,
        passages=asked.passages,
        review_threshold=asked.asset.review_threshold,
        offset=asked.offset,
        query=asked.vector,
    )


def draft_answer(
    session: Session, runtime: Runtime, *, account: Account, slug: str, question: str
) -> Answer:
    """An answer from the asset's passages (the retrieval and answerer of ``ask``, without
    verified answers), recording and billing nothing."""
    asset = get_visible_asset(session, viewer=viewer_of(account), slug=slug)
    return draft_from(session, runtime, asset=asset, question=question)


def draft_from(session: Session, runtime: Runtime, *, asset: Asset, question: str) -> Answer:
    """``draft_answer`` for an asset the caller already found and may read (the catalog's
    sample answers, shown to visitors who are not signed in)."""
    question = retrieval.clean_query(question)
    return answer_passages(
        runtime,
        question=question,
        passages=_passages(runtime, asset, question),
        review_threshold=asset.review_threshold,
        offset=_offset(session, asset),
    )


def _stream(runtime: Runtime, asked: _Question) -> Iterator[str | Answer]:
    if asked.verified is not None:
        answer = _from_verified(asked)
        return iter([answer.text, answer])
    threshold = asked.asset.review_threshold
    if runtime.settings.llm.enabled:
        return answering.stream_with_llm(
            asked.question,
            asked.passages,
            options=_llm_options(runtime),
            review_threshold=threshold,
            offset=asked.offset,
        )
    return answering.stream_answer(
        asked.question,
        asked.passages,
        review_threshold=threshold,
        embed=runtime.embedder.embed,
        offset=asked.offset,
        query=asked.vector,
    )


def _record(runtime: Runtime, asked: _Question, answer: Answer) -> AskResult:
    """Charge and record an answer in one short transaction of its own: under the client's
    wallet lock, the entitlement is checked again, then the consultation, its usage event and
    its escrow hold are written together. A concurrent request with the same Idempotency-Key
    that got there first wins, and this one returns its result.

    Its own transaction, committed in the same thread that took the lock: a lock held until
    the request's session commits would wait on a free worker thread, and under load every
    worker thread could be waiting for that lock.
    """
    with session_scope(runtime.engine) as session:
        return _record_in(session, runtime, asked, answer)


def _record_in(session: Session, runtime: Runtime, asked: _Question, answer: Answer) -> AskResult:
    latency_ms = round((time.perf_counter() - asked.started) * 1000)
    account_id = asked.viewer.account_id
    billing.lock_wallet(session, account_id)
    if asked.idempotency_key is not None:
        earlier = billing.find_idempotent(
            session, account_id=account_id, key=asked.idempotency_key, fingerprint=asked.fingerprint
        )
        if earlier is not None:
            return _replay(session, earlier)
    price = _quote(session, runtime, asked.asset, asked.viewer)
    asker = session.get(Account, account_id)
    if asker is not None and price.source not in ("trial", "free"):
        ensure_verified(asker, "ask a paid question")  # its trial ran out meanwhile
    if answer.status == "abstained":
        # "The sources do not answer this" costs nothing, and uses no quota or trial question.
        price = billing.Price("free", 0, price.currency)
    prompt_tokens = count_tokens(answer.prompt)
    completion_tokens = count_tokens(answer.completion_text)
    consultation = record_consultation(
        session,
        asset=asked.asset,
        viewer=asked.viewer,
        question=asked.question,
        answer=answer,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )
    billing.record_usage(
        session,
        account_id=account_id,
        asset_id=asked.asset.id,
        consultation_id=consultation.id,
        model=answer.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )
    if asked.verified is not None:
        consultation.verified_answer_id = asked.verified.id
        session.add(consultation)
    charge = billing.hold(
        session,
        price=price,
        account_id=account_id,
        asset_id=asked.asset.id,
        expert_id=asked.asset.owner_id,
        consultation_id=consultation.id,
        now=utcnow(),
        idempotency_key=asked.idempotency_key,
        fingerprint=asked.fingerprint,
    )
    reviewing.after_answer(
        session, runtime, consultation=consultation, asset=asked.asset, charge=charge
    )
    session.refresh(charge)
    return AskResult(consultation=consultation, charge=charge)


def ask(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    slug: str,
    question: str,
    idempotency_key: str | None = None,
) -> AskResult:
    """Answer a question from an asset, charge it and record it (see ``_record``).

    The configured chat model writes the answer when there is one; else it is extractive.
    """
    asked = _prepare(
        session,
        runtime,
        account=account,
        slug=slug,
        question=question,
        idempotency_key=idempotency_key,
    )
    if isinstance(asked, AskResult):
        return asked
    # Only reads so far: end them, so that no database connection is held while the answer is
    # written (a chat model can take seconds) and ``_record`` needs just one of its own.
    session.commit()
    return _record(runtime, asked, _answer(runtime, asked))


@dataclass(frozen=True, slots=True)
class AskEvent:
    """One server-sent event of a streamed answer: ``delta``, then ``done`` or ``error``."""

    name: Literal["delta", "done", "error"]
    data: dict[str, Any]


class AskStream:
    """A checked question whose answer is streamed; it is recorded when the stream ends.

    ``start_ask_stream`` raises (entitlement, bad input, unknown asset, a model that fails to
    start) before anything is sent; ``events()`` runs after the request's session has
    committed, so it records the consultation in a session of its own.
    """

    def __init__(self, runtime: Runtime, asked: _Question) -> None:
        self._runtime = runtime
        self._asked = asked
        answers = _stream(runtime, asked)
        # The first piece is awaited here, so that an unreachable or failing model is a plain
        # 503 before the response starts rather than an error event after it.
        self._answers = itertools.chain([next(answers)], answers)

    def events(self) -> Iterator[AskEvent]:
        """``delta`` events with the text as it is written, then ``done`` (or ``error``)."""
        final: Answer | None = None
        try:
            for item in self._answers:
                if isinstance(item, Answer):
                    final = item
                elif item:
                    yield AskEvent("delta", {"text": item})
        except VouchError as exc:
            yield AskEvent("error", {"error": type(exc).__name__, "detail": exc.message})
            return
        if final is None:  # pragma: no cover - every answer stream ends with its Answer
            raise RuntimeError("the answer stream ended without an answer")
        try:
            result = _record(self._runtime, self._asked, final)
        except VouchError as exc:  # the credits ran out while the answer was being written
            yield AskEvent("error", {"error": type(exc).__name__, "detail": exc.message})
            return
        except Exception:
            # The response has started, so its status cannot change: say so in the stream.
            log.exception("storing a streamed answer failed")
            yield AskEvent(
                "error", {"error": "InternalError", "detail": "the answer could not be stored"}
            )
            return
        yield AskEvent("done", result.public())


def start_ask_stream(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    slug: str,
    question: str,
    idempotency_key: str | None = None,
) -> AskStream | AskResult:
    """Check a question and retrieve its passages now; its answer streams from ``events()``.
    A known Idempotency-Key returns the earlier result instead of a stream."""
    asked = _prepare(
        session,
        runtime,
        account=account,
        slug=slug,
        question=question,
        idempotency_key=idempotency_key,
    )
    return asked if isinstance(asked, AskResult) else AskStream(runtime, asked)


def submit_upload(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    slug: str,
    files: list[tuple[str, bytes]],
    kind: str,
) -> IngestionJob:
    """Store an upload as a source with a queued job; the job is enqueued after commit.

    A name given twice keeps its last file, as copying both into one folder would."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    job = ingestion.submit_upload(
        session,
        asset=asset,
        account_id=account.id,
        files=ingestion.last_of_each_name(files),
        kind=kind,
        uploads_dir=runtime.settings.uploads_path,
        limits=runtime.settings.ingest,
    )
    after_commit(session, lambda: runtime.queue.enqueue_ingest(job.id))
    return job


def submit_local(
    session: Session, runtime: Runtime, *, account: Account, slug: str, path: Path, kind: str
) -> IngestionJob:
    """Queue a local file or directory (CLI); the job is enqueued after commit."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    job = ingestion.submit_local(session, asset=asset, account_id=account.id, path=path, kind=kind)
    after_commit(session, lambda: runtime.queue.enqueue_ingest(job.id))
    return job


def list_jobs(session: Session, *, account: Account, slug: str) -> tuple[list[IngestionJob], Asset]:
    """The latest jobs of an asset the account manages."""
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    return ingestion.list_jobs(session, asset_id=asset.id), asset


def get_job(session: Session, *, account: Account, job_id: str) -> tuple[IngestionJob, Asset]:
    """A job of an asset the account manages; any other job is reported as missing."""
    job = session.get(IngestionJob, job_id)
    asset = session.get(Asset, job.asset_id) if job else None
    viewer = viewer_of(account)
    if job is None or asset is None or not (viewer.is_admin or asset.owner_id == account.id):
        raise JobNotFound(f"no ingestion job {job_id}")
    return job, asset


def cancel_job(session: Session, *, account: Account, job_id: str) -> tuple[IngestionJob, Asset]:
    """Cancel a job of an asset the account manages."""
    job, asset = get_job(session, account=account, job_id=job_id)
    return ingestion.cancel_job(session, job), asset
