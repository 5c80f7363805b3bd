"""Engagements, where the marketplace's state machine meets money, accounts and assets:
commission (and escalation from an answer), funding with credits or Stripe, delivery (with a
draft from the expert's own asset), approval, revision, dispute, an admin's settlement, and the
scheduled release of deliveries left unanswered.

Each step runs in the request's transaction inside a savepoint: the state change first (a step
the state machine refuses never reaches the ledger), then the money through billing, so that a
page that shows the refusal and commits never keeps half a step.
"""

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from app import notifications, payments, querying
from app.accounts import viewer_of
from app.models import Account, Role
from app.runtime import Runtime
from assets.errors import AssetNotFound, ConsultationNotFound
from assets.models import Asset, Consultation
from assets.service import get_managed_asset, get_visible_asset
from billing import service as billing
from core.clock import utcnow
from core.db import session_scope
from core.errors import Conflict, Forbidden, InvalidInput
from core.ids import new_id
from marketplace import engagements as work
from marketplace.engagements import MilestoneTerms, Terms
from marketplace.errors import (
    ExpertNotFound,
    InvalidEngagement,
    MilestoneNotFound,
    NotEngagementParty,
)
from marketplace.models import (
    Engagement,
    EngagementEvent,
    EngagementStatus,
    ExpertProfile,
    Milestone,
    MilestoneStatus,
)

log = logging.getLogger(__name__)

# A report PDF may be this large; the Markdown report has its own limit in the state machine.
MAX_REPORT_BYTES = 20 * 1024 * 1024
# An escalated answer's one milestone, when the expert has no typical price on their profile.
DEFAULT_ESCALATION_PRICE = 10_000
_CHECKOUT_PAID = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


class InvalidReport(InvalidInput):
    pass


class AlreadyEscalated(Conflict):
    pass


@contextmanager
def _step(session: Session) -> Iterator[None]:
    """One step, all or nothing, inside the request's transaction."""
    with session.begin_nested():
        yield


def _load(session: Session, account: Account, engagement_id: str) -> tuple[Engagement, str]:
    """The engagement and the account's part in it; others get 404."""
    is_admin = account.role == Role.admin
    eng = work.get(session, engagement_id, viewer_id=account.id, is_admin=is_admin)
    return eng, work.party_of(eng, viewer_id=account.id, is_admin=is_admin)


def _name(session: Session, account_id: str | None) -> str | None:
    if account_id is None:
        return None
    found = session.get(Account, account_id)
    return found.name if found else None


def _tell(
    session: Session,
    runtime: Runtime,
    eng: Engagement,
    *,
    to: str,
    kind: str,
    message: str,
    milestone: Milestone | None = None,
) -> None:
    data: dict[str, Any] = {"engagement": eng.id, "title": eng.title}
    if milestone is not None:
        data |= {"milestone": milestone.id, "milestone_title": milestone.title}
    notifications.notify(
        session, runtime, account_id=to, kind=f"engagement.{kind}", message=message, data=data
    )


def _tell_both(
    session: Session,
    runtime: Runtime,
    eng: Engagement,
    *,
    kind: str,
    message: str,
    milestone: Milestone | None = None,
) -> None:
    for to in (eng.client_id, eng.expert_id):
        _tell(session, runtime, eng, to=to, kind=kind, message=message, milestone=milestone)


def _of(eng: Engagement, ms: Milestone | None = None, *, start: bool = False) -> str:
    """How a notification names an engagement, or one of its milestones (capitalised to
    ``start`` a sentence)."""
    if ms is None:
        return f"the engagement '{eng.title}'" if not start else f"The engagement '{eng.title}'"
    return f"{'M' if start else 'm'}ilestone '{ms.title}' of engagement '{eng.title}'"


# Commission


def request(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    expert_id: str,
    terms: Terms,
    asset_slug: str | None = None,
) -> Engagement:
    """A client commissions fixed-scope work from an expert (optionally about an asset of
    theirs); nothing is paid until the terms are agreed and a milestone is funded."""
    if account.role != Role.client:
        raise Forbidden("only client accounts commission engagements")
    expert = session.get(Account, expert_id)
    if expert is None or expert.role != Role.expert:
        raise ExpertNotFound(f"no expert {expert_id}")
    asset_id = None
    if asset_slug:
        asset = get_visible_asset(session, viewer=viewer_of(account), slug=asset_slug)
        if asset.owner_id != expert.id:
            raise InvalidEngagement(f"the asset {asset_slug!r} is not {expert.name}'s")
        asset_id = asset.id
    with _step(session):
        eng = work.request(
            session,
            client_id=account.id,
            expert_id=expert.id,
            terms=terms,
            now=utcnow(),
            asset_id=asset_id,
        )
        _tell(
            session,
            runtime,
            eng,
            to=expert.id,
            kind="requested",
            message=f"{account.name} asks you to take on {_of(eng)}",
        )
    return eng


def _citation_line(c: dict[str, Any]) -> str:
    loc = c.get("locator") or {}
    if loc.get("verified_answer"):
        where = f"verified answer by {loc.get('expert')} ({loc.get('date')})"
    else:
        where = str(loc.get("path", "source"))
        if loc.get("lines"):
            where += f":{loc['lines'][0]}-{loc['lines'][1]}"
        if loc.get("page"):
            where += f", page {loc['page']}"
        if loc.get("section"):
            where += f", § {loc['section']}"
        if loc.get("symbol"):
            where += f" ({loc['symbol']})"
    return f"[{c.get('n')}] {where}"


def escalation_scope(consultation: Consultation, asset: Asset, note: str = "") -> str:
    """The scope an escalated answer starts from: the question, the answer and its sources."""
    parts = [
        f"I asked {asset.title}:",
        "",
        f"> {consultation.question}",
        "",
        "The answer I got:",
        "",
        consultation.answer,
    ]
    if consultation.citations:
        parts += ["", "Its sources:", *(_citation_line(c) for c in consultation.citations)]
    parts += ["", note.strip() or "Please review this answer and give me your own judgment."]
    return "\n".join(parts)


def escalation_defaults(
    session: Session, runtime: Runtime, *, account: Account, consultation_id: str
) -> dict[str, Any]:
    """The terms an escalation proposes unless the client says otherwise (for the form)."""
    consultation, asset = _own_consultation(session, account, consultation_id)
    profile = session.get(ExpertProfile, asset.owner_id)
    price, currency = DEFAULT_ESCALATION_PRICE, runtime.settings.billing.currency
    if profile is not None and profile.price_from:
        price, currency = profile.price_from, profile.currency
    question = consultation.question
    title = f"Follow-up: {question}" if len(question) <= 180 else f"Follow-up: {question[:177]}..."
    return {
        "consultation": consultation,
        "asset": asset,
        "expert_id": asset.owner_id,
        "title": title,
        "scope": escalation_scope(consultation, asset),
        "deliverable": "A written answer to the question, with the expert's reasoning and sources",
        "milestones": [MilestoneTerms(title="Written answer", amount=price)],
        "currency": currency,
    }


def _own_consultation(
    session: Session, account: Account, consultation_id: str
) -> tuple[Consultation, Asset]:
    consultation = session.get(Consultation, consultation_id)
    asset = session.get(Asset, consultation.asset_id) if consultation else None
    if consultation is None or asset is None or consultation.account_id != account.id:
        raise ConsultationNotFound(f"no consultation {consultation_id}")
    return consultation, asset


def escalate(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    consultation_id: str,
    title: str | None = None,
    scope: str | None = None,
    note: str = "",
    deliverable: str | None = None,
    milestones: list[MilestoneTerms] | None = None,
    currency: str | None = None,
    deadline: datetime | None = None,
    revision_limit: int = 2,
    review_days: int = 14,
) -> Engagement:
    """Turn an answer the client got into an engagement request to the asset's expert, with
    the question, the answer and its citations attached."""
    if account.role != Role.client:
        raise Forbidden("only client accounts commission engagements")
    defaults = escalation_defaults(
        session, runtime, account=account, consultation_id=consultation_id
    )
    consultation: Consultation = defaults["consultation"]
    asset: Asset = defaults["asset"]
    if asset.owner_id == account.id:
        raise InvalidEngagement("this answer came from your own asset")
    earlier = work.open_from_consultation(session, consultation.id)
    if earlier is not None:
        raise AlreadyEscalated(
            f"this answer is escalated already: engagement {earlier.id} ({earlier.status})"
        )
    terms = Terms(
        title=title or defaults["title"],
        scope=scope or escalation_scope(consultation, asset, note),
        deliverable=deliverable or defaults["deliverable"],
        milestones=milestones or defaults["milestones"],
        currency=currency or defaults["currency"],
        deadline=deadline,
        revision_limit=revision_limit,
        review_days=review_days,
    )
    attached = {
        "escalated_from": consultation.id,
        "asset": asset.slug,
        "question": consultation.question,
        "answer": consultation.answer,
        "citations": consultation.citations,
    }
    with _step(session):
        eng = work.request(
            session,
            client_id=account.id,
            expert_id=asset.owner_id,
            terms=terms,
            now=utcnow(),
            asset_id=asset.id,
            origin_consultation_id=consultation.id,
            attached=attached,
        )
        _tell(
            session,
            runtime,
            eng,
            to=asset.owner_id,
            kind="requested",
            message=f"{account.name} asks you to take an answer of {asset.title} further in "
            f"{_of(eng)}",
        )
    return eng


# The terms


def _engagement_step(
    session: Session,
    runtime: Runtime,
    account: Account,
    engagement_id: str,
    act: Callable[[Engagement, str], None],
    tell: Callable[[Engagement], tuple[str, str, str]],
) -> Engagement:
    eng, party = _load(session, account, engagement_id)
    with _step(session):
        act(eng, party)
        to, kind, message = tell(eng)
        _tell(session, runtime, eng, to=to, kind=kind, message=message)
    return eng


def accept(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str
) -> Engagement:
    """The expert accepts the request; the client may fund its milestones."""
    return _engagement_step(
        session,
        runtime,
        account,
        engagement_id,
        lambda eng, party: work.accept(
            session, eng, party=party, actor_id=account.id, now=utcnow()
        ),
        lambda eng: (eng.client_id, "accepted", f"{account.name} accepted {_of(eng)}: fund it"),
    )


def decline(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str, reason: str = ""
) -> Engagement:
    """The expert declines the request, or the client declines the expert's proposal."""

    def other(eng: Engagement) -> tuple[str, str, str]:
        to = eng.client_id if account.id == eng.expert_id else eng.expert_id
        return to, "declined", f"{account.name} declined {_of(eng)}"

    return _engagement_step(
        session,
        runtime,
        account,
        engagement_id,
        lambda eng, party: work.decline(
            session, eng, party=party, actor_id=account.id, now=utcnow(), reason=reason
        ),
        other,
    )


def propose(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    engagement_id: str,
    milestones: list[MilestoneTerms] | None,
    deadline: datetime | None,
    note: str = "",
) -> Engagement:
    """The expert proposes other milestones, price or deadline; the client decides."""
    return _engagement_step(
        session,
        runtime,
        account,
        engagement_id,
        lambda eng, party: work.propose(
            session,
            eng,
            party=party,
            actor_id=account.id,
            now=utcnow(),
            milestones=milestones,
            deadline=deadline,
            note=note,
        ),
        lambda eng: (
            eng.client_id,
            "proposed",
            f"{account.name} proposes changes to {_of(eng)}: accept or decline them",
        ),
    )


def accept_proposal(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str
) -> Engagement:
    return _engagement_step(
        session,
        runtime,
        account,
        engagement_id,
        lambda eng, party: work.accept_proposal(
            session, eng, party=party, actor_id=account.id, now=utcnow()
        ),
        lambda eng: (
            eng.expert_id,
            "accepted",
            f"{account.name} accepted your proposal for {_of(eng)}",
        ),
    )


def cancel(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str
) -> Engagement:
    return _engagement_step(
        session,
        runtime,
        account,
        engagement_id,
        lambda eng, party: work.cancel(
            session, eng, party=party, actor_id=account.id, now=utcnow()
        ),
        lambda eng: (eng.expert_id, "cancelled", f"{account.name} cancelled {_of(eng)}"),
    )


# Milestones


def _milestone(
    session: Session, account: Account, engagement_id: str, milestone_id: str
) -> tuple[Engagement, Milestone, str]:
    eng, party = _load(session, account, engagement_id)
    # The client's wallet lock before the milestone's row lock, in the order Stripe's webhook
    # takes them, so that the two never wait on each other.
    billing.lock_wallet(session, eng.client_id)
    return eng, work.get_milestone(session, eng, milestone_id, lock=True), party


def fund(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str, milestone_id: str
) -> Engagement:
    """The client moves the milestone's price from their credits into its escrow."""
    eng, ms, party = _milestone(session, account, engagement_id, milestone_id)
    with _step(session):
        work.check(eng, ms, party=party, step="fund")
        billing.fund_milestone(
            session,
            client_id=eng.client_id,
            milestone_id=ms.id,
            amount=ms.amount,
            currency=eng.currency,
        )
        work.fund(session, eng, ms, party=party, actor_id=account.id, now=utcnow(), via="credits")
        _funded(session, runtime, eng, ms)
    return eng


def _funded(session: Session, runtime: Runtime, eng: Engagement, ms: Milestone) -> None:
    _tell(
        session,
        runtime,
        eng,
        to=eng.expert_id,
        kind="funded",
        message=f"{_of(eng, ms, start=True)} was funded: "
        f"{billing.money(ms.amount, eng.currency)} is in escrow; deliver it",
        milestone=ms,
    )


def checkout(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str, milestone_id: str
) -> str:
    """Stripe Checkout for a milestone; it is funded when Stripe's webhook confirms payment."""
    eng, ms, party = _milestone(session, account, engagement_id, milestone_id)
    work.check(eng, ms, party=party, step="fund")
    return payments.checkout_milestone(
        session,
        runtime,
        account=account,
        milestone_id=ms.id,
        amount=ms.amount,
        currency=eng.currency,
        title=f"{eng.title}: {ms.title}",
        return_path=f"/engagements/{eng.id}",
    )


def after_stripe_event(session: Session, runtime: Runtime, event: dict[str, Any]) -> None:
    """After billing applied a Stripe event about a milestone's card payment: a Checkout that
    put the milestone's price in escrow funds it; a refund of that payment while the money is
    held ends it, refunded, and what is left in its escrow goes back to the client's credits."""
    kind = event.get("type")
    if kind not in (*_CHECKOUT_PAID, "charge.refunded"):
        return
    obj = event["data"]["object"]
    meta = obj.get("metadata") or {}
    if meta.get("purpose") != "milestone":
        return
    ms = session.get(Milestone, str(meta.get("milestone_id")))
    eng = session.get(Engagement, ms.engagement_id) if ms else None
    if ms is None or eng is None:
        return
    held = billing.milestone_held(session, milestone_id=ms.id, currency=eng.currency)
    if ms.status != MilestoneStatus.pending:
        # Funded before (billing credited a second payment to the client instead), or held.
        if kind == "charge.refunded" and held < ms.amount and ms.status not in work.SETTLED:
            _payment_refunded(session, runtime, eng, ms)
        return
    if kind == "charge.refunded":
        return  # a payment not yet arrived: billing applies the refund when it does
    if eng.status != EngagementStatus.accepted:
        log.warning("milestone %s paid while its engagement is %s", ms.id, eng.status)
        return
    if held < ms.amount:
        if obj.get("payment_status") == "paid":  # a refund that came before the payment
            billing.return_unfunded(
                session,
                key=f"stripe:unfunded:{obj['id']}",
                milestone_id=ms.id,
                client_id=eng.client_id,
                currency=eng.currency,
            )
        return  # else not paid yet (an async payment method)
    work.fund(session, eng, ms, party="client", actor_id=eng.client_id, now=utcnow(), via="stripe")


def _payment_refunded(session: Session, runtime: Runtime, eng: Engagement, ms: Milestone) -> None:
    event = work.payment_refunded(session, eng, ms, now=utcnow())
    settlement = _settle_money(session, runtime, eng, ms, 0)
    work.add_figures(session, event, **_figures(settlement))
    text = (
        f"The card payment for {_of(eng, ms)} was refunded through Stripe, so the milestone "
        "has ended"
    )
    if settlement.to_client:
        text += (
            f": {billing.money(settlement.to_client, eng.currency)} left in its escrow went "
            "back to the client's credits"
        )
    _tell_both(session, runtime, eng, kind="refunded", message=text, milestone=ms)


def _report_dir(runtime: Runtime, eng: Engagement) -> Path:
    return runtime.settings.data_dir / "engagements" / eng.id


def store_report_pdf(runtime: Runtime, eng: Engagement, ms: Milestone, data: bytes) -> str:
    """Keep a report PDF under the data dir; returns its path relative to the data dir."""
    if not data.startswith(b"%PDF-"):
        raise InvalidReport("the report file is not a PDF (it does not start with %PDF-)")
    if len(data) > MAX_REPORT_BYTES:
        raise InvalidReport(
            f"the report PDF is larger than the {MAX_REPORT_BYTES} byte limit", status_code=413
        )
    folder = _report_dir(runtime, eng)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{ms.id}-r{ms.revisions}-{new_id('pdf').removeprefix('pdf_')}.pdf"
    (folder / name).write_bytes(data)
    return str(Path("engagements") / eng.id / name)


def check_deliver(
    session: Session, *, account: Account, engagement_id: str, milestone_id: str
) -> None:
    """Refuse (403/404/409) a delivery the account cannot make now, reading without locks: run
    before an uploaded report is read; ``deliver`` checks again under its locks."""
    eng, party = _load(session, account, engagement_id)
    work.check(eng, work.get_milestone(session, eng, milestone_id), party=party, step="deliver")


def deliver(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    engagement_id: str,
    milestone_id: str,
    report: str,
    pdf: bytes | None = None,
) -> Engagement:
    """The expert delivers a milestone's report: Markdown text, a PDF, or both."""
    eng, ms, party = _milestone(session, account, engagement_id, milestone_id)
    with _step(session):
        stored = None
        if pdf is not None:
            work.check(eng, ms, party=party, step="deliver")  # before the file is written
            if not pdf:
                raise InvalidReport("the report file is empty")
            stored = store_report_pdf(runtime, eng, ms, pdf)
        work.deliver(
            session,
            eng,
            ms,
            party=party,
            actor_id=account.id,
            now=utcnow(),
            report=report,
            report_file=stored,
        )
        _tell(
            session,
            runtime,
            eng,
            to=eng.client_id,
            kind="delivered",
            message=f"{account.name} delivered {_of(eng, ms)}: approve it, ask for a revision "
            f"or dispute it within {eng.review_days} days",
            milestone=ms,
        )
    return eng


def report_file(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str, milestone_id: str
) -> Path:
    """The stored PDF of a milestone's report, for its client, its expert or an admin."""
    eng, _party = _load(session, account, engagement_id)
    ms = work.get_milestone(session, eng, milestone_id)
    if not ms.report_file:
        raise MilestoneNotFound(f"milestone {ms.position} has no PDF report")
    root = runtime.settings.data_dir.resolve()
    path = (root / ms.report_file).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise MilestoneNotFound(f"the PDF report of milestone {ms.position} is missing")
    return path


def _settle_money(
    session: Session, runtime: Runtime, eng: Engagement, ms: Milestone, share: int | None
) -> billing.Settlement:
    return billing.settle_milestone(
        session,
        milestone_id=ms.id,
        client_id=eng.client_id,
        expert_id=eng.expert_id,
        currency=eng.currency,
        expert_share=share,
        fee_bps=runtime.settings.billing.platform_fee_bps,
    )


def _figures(settlement: billing.Settlement) -> dict[str, int]:
    return {
        "fee": settlement.fee,
        "to_expert": settlement.to_expert,
        "to_client": settlement.to_client,
    }


def approve(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str, milestone_id: str
) -> Engagement:
    """The client approves a delivery: its escrow goes to the expert, minus the platform fee."""
    eng, ms, party = _milestone(session, account, engagement_id, milestone_id)
    with _step(session):
        event = work.approve(session, eng, ms, party=party, actor_id=account.id, now=utcnow())
        settlement = _settle_money(session, runtime, eng, ms, None)
        work.add_figures(session, event, **_figures(settlement))
        _tell(
            session,
            runtime,
            eng,
            to=eng.expert_id,
            kind="released",
            message=f"{_of(eng, ms, start=True)} was approved by {account.name}: "
            f"{billing.money(settlement.to_expert, eng.currency)} is yours",
            milestone=ms,
        )
    return eng


def revise(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    engagement_id: str,
    milestone_id: str,
    note: str,
) -> Engagement:
    """The client sends a delivery back for a revision (up to the agreed limit)."""
    eng, ms, party = _milestone(session, account, engagement_id, milestone_id)
    with _step(session):
        work.request_revision(
            session, eng, ms, party=party, actor_id=account.id, now=utcnow(), note=note
        )
        _tell(
            session,
            runtime,
            eng,
            to=eng.expert_id,
            kind="revision",
            message=f"{account.name} asks for a revision of {_of(eng, ms)}",
            milestone=ms,
        )
    return eng


def dispute(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    engagement_id: str,
    milestone_id: str,
    reason: str,
) -> Engagement:
    """The client disputes a milestone; its money stays in escrow until an admin settles it."""
    eng, ms, party = _milestone(session, account, engagement_id, milestone_id)
    with _step(session):
        work.dispute(
            session, eng, ms, party=party, actor_id=account.id, now=utcnow(), reason=reason
        )
        _tell(
            session,
            runtime,
            eng,
            to=eng.expert_id,
            kind="disputed",
            message=f"{account.name} disputes {_of(eng, ms)}; an admin will settle it",
            milestone=ms,
        )
    return eng


def settle(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    engagement_id: str,
    milestone_id: str,
    outcome: str,
    expert_share: int | None = None,
    note: str = "",
) -> Engagement:
    """An admin settles a disputed milestone: release, refund, or split."""
    if account.role != Role.admin:
        # The parties see the engagement, so they are told why rather than given a 404.
        eng, _party = _load(session, account, engagement_id)
        raise NotEngagementParty("only an admin can settle a dispute")
    eng, ms, party = _milestone(session, account, engagement_id, milestone_id)
    with _step(session):
        share, event = work.settle(
            session,
            eng,
            ms,
            party=party,
            actor_id=account.id,
            now=utcnow(),
            outcome=outcome,
            expert_share=expert_share,
            note=note,
        )
        settlement = _settle_money(session, runtime, eng, ms, share)
        work.add_figures(session, event, **_figures(settlement))
        text = (
            f"An admin settled the dispute on {_of(eng, ms)} "
            f"({outcome}): {billing.money(settlement.to_expert, eng.currency)} to the expert, "
            f"{billing.money(settlement.to_client, eng.currency)} back to the client"
        )
        _tell_both(session, runtime, eng, kind="settled", message=text, milestone=ms)
    return eng


def release_due(session: Session, runtime: Runtime, *, now: datetime) -> int:
    """Release every delivered milestone whose review window ended before ``now`` with no
    answer from the client, and tell both parties; returns how many. ``now`` is a parameter so
    the clock can be controlled (tests) and the scheduler passes the real time."""
    released = 0
    for eng, due in work.due_for_release(session, now=now):
        with _step(session):
            billing.lock_wallet(session, eng.client_id)
            ms = work.get_milestone(session, eng, due.id, lock=True)
            if ms.status != MilestoneStatus.delivered:
                continue  # the client acted, or another worker released it, meanwhile
            event = work.auto_release(session, eng, ms, now=now)
            settlement = _settle_money(session, runtime, eng, ms, None)
            work.add_figures(session, event, **_figures(settlement))
            text = (
                f"{_of(eng, ms, start=True)} was released when its review window ended "
                f"without an answer: {billing.money(settlement.to_expert, eng.currency)} to the "
                "expert"
            )
            _tell_both(session, runtime, eng, kind="released", message=text, milestone=ms)
        released += 1
    return released


def settle_due(runtime: Runtime) -> int:
    """The scheduled task's body: release due milestones in a transaction of its own."""
    with session_scope(runtime.engine) as session:
        released = release_due(session, runtime, now=utcnow())
    if released:
        log.info("released %d engagement milestone(s) after their review window", released)
    return released


# Drafting a report with the expert's own asset


def draft_markdown(question: str, answer: str, citations: list[dict[str, Any]]) -> str:
    """An answer and its sources as Markdown to paste into a report."""
    lines = [f"**Q:** {question}", "", answer.strip()]
    if citations:
        lines += ["", "Sources:", ""]
        for c in citations:
            excerpt = re.sub(r"\s+", " ", str(c.get("text", ""))).strip()
            if len(excerpt) > 240:
                excerpt = excerpt[:237] + "..."
            lines.append(f"- {_citation_line(c)}: \u201c{excerpt}\u201d")
    return "\n".join(lines) + "\n"


def draft(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    engagement_id: str,
    question: str,
    slug: str | None = None,
) -> dict[str, Any]:
    """The expert asks one of their own assets; the answer with its citations comes back as
    Markdown for the report. Nothing is recorded or billed."""
    eng, party = _load(session, account, engagement_id)
    if party != "expert":
        raise NotEngagementParty("only the engagement's expert drafts from their own assets")
    if not slug:
        asset = session.get(Asset, eng.asset_id) if eng.asset_id else None
        if asset is None:
            raise InvalidEngagement(
                "this engagement is about none of your assets: name one (asset) to draft from"
            )
        slug = asset.slug
    asset = get_managed_asset(session, viewer=viewer_of(account), slug=slug)
    if asset.owner_id != account.id:
        raise AssetNotFound(f"no asset {slug!r} of yours")
    answer = querying.draft_answer(session, runtime, account=account, slug=slug, question=question)
    citations = [{"n": c.n, "text": c.text, "locator": c.locator} for c in answer.citations]
    return {
        "asset": asset.slug,
        "question": question.strip(),
        "answer": answer.text,
        "status": answer.status,
        "confidence": answer.confidence,
        "citations": citations,
        "markdown": draft_markdown(question.strip(), answer.text, citations),
    }


# What each party sees


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def view(session: Session, *, account: Account, engagement_id: str) -> dict[str, Any]:
    """The engagement as its client, expert or an admin sees it, with the steps they may take."""
    eng, party = _load(session, account, engagement_id)
    return engagement_public(session, eng, party=party)


def engagement_public(session: Session, eng: Engagement, *, party: str) -> dict[str, Any]:
    milestones = work.milestones_of(session, eng.id)
    allowed = work.actions(eng, milestones, party=party)
    asset = session.get(Asset, eng.asset_id) if eng.asset_id else None
    origin = None
    if eng.origin_consultation_id:
        consultation = session.get(Consultation, eng.origin_consultation_id)
        if consultation is not None:
            origin = {
                "consultation_id": consultation.id,
                "question": consultation.question,
                "answer": consultation.answer,
                "citations": consultation.citations,
                "asked_at": consultation.created_at.isoformat(),
            }
    names: dict[str, str | None] = {}

    def name(account_id: str | None) -> str | None:
        if account_id is None:
            return None
        if account_id not in names:
            names[account_id] = _name(session, account_id)
        return names[account_id]

    return {
        "id": eng.id,
        "status": eng.status,
        "title": eng.title,
        "scope": eng.scope,
        "deliverable": eng.deliverable,
        "currency": eng.currency,
        "total": sum(m.amount for m in milestones),
        "deadline": _iso(eng.deadline),
        "revision_limit": eng.revision_limit,
        "review_days": eng.review_days,
        "client": {"id": eng.client_id, "name": name(eng.client_id)},
        "expert": {"id": eng.expert_id, "name": name(eng.expert_id)},
        "asset": asset.slug if asset else None,
        "created_at": eng.created_at.isoformat(),
        "viewer": party,
        "actions": allowed.engagement,
        "milestones": [
            {
                "id": m.id,
                "position": m.position,
                "title": m.title,
                "amount": m.amount,
                "status": m.status,
                "held": billing.milestone_held(session, milestone_id=m.id, currency=eng.currency),
                "report": m.report,
                "report_pdf": bool(m.report_file),
                "revisions": m.revisions,
                "delivered_at": _iso(m.delivered_at),
                "release_after": _iso(m.release_after),
                "settled_at": _iso(m.settled_at),
                "actions": allowed.milestones.get(m.id, []),
            }
            for m in milestones
        ],
        "events": [event_public(e, name(e.actor_id)) for e in work.events_of(session, eng.id)],
        "origin": origin,
    }


def event_public(event: EngagementEvent, actor: str | None) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "actor": actor,
        "actor_id": event.actor_id,
        "milestone_id": event.milestone_id,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


def summaries(session: Session, *, account: Account) -> list[dict[str, Any]]:
    """The account's engagements (every one for an admin), newest first, in one line each."""
    rows = work.list_for(session, viewer_id=account.id, is_admin=account.role == Role.admin)
    out = []
    for eng in rows:
        milestones = work.milestones_of(session, eng.id)
        party = work.party_of(eng, viewer_id=account.id, is_admin=account.role == Role.admin)
        allowed = work.actions(eng, milestones, party=party)
        waiting = bool(allowed.engagement) or any(allowed.milestones.values())
        out.append(
            {
                "id": eng.id,
                "title": eng.title,
                "status": eng.status,
                "currency": eng.currency,
                "total": sum(m.amount for m in milestones),
                "milestones": [m.status for m in milestones],
                "client": {"id": eng.client_id, "name": _name(session, eng.client_id)},
                "expert": {"id": eng.expert_id, "name": _name(session, eng.expert_id)},
                "viewer": party,
                "your_turn": waiting,
                "created_at": eng.created_at.isoformat(),
            }
        )
    return out


def disputes(session: Session, *, account: Account) -> list[dict[str, Any]]:
    """Disputed milestones waiting for an admin, with the client's reason."""
    if account.role != Role.admin:
        raise Forbidden("disputes are settled by admins")
    out = []
    for eng, ms in work.disputed(session):
        reason = next(
            (
                e.data.get("reason", "")
                for e in reversed(work.events_of(session, eng.id))
                if e.kind == "disputed" and e.milestone_id == ms.id
            ),
            "",
        )
        out.append(
            {
                "engagement_id": eng.id,
                "title": eng.title,
                "milestone_id": ms.id,
                "position": ms.position,
                "milestone": ms.title,
                "amount": ms.amount,
                "currency": eng.currency,
                "held": billing.milestone_held(session, milestone_id=ms.id, currency=eng.currency),
                "client": _name(session, eng.client_id),
                "expert": _name(session, eng.expert_id),
                "reason": reason,
            }
        )
    return out


def expert_choice(session: Session, expert_id: str) -> Account:
    """The expert a commission form is for; 404 for anyone else."""
    expert = session.get(Account, expert_id)
    if expert is None or expert.role != Role.expert:
        raise ExpertNotFound(f"no expert {expert_id}")
    return expert


def experts_assets(session: Session, *, account: Account, expert_id: str) -> list[Asset]:
    """The expert's assets the account may see, for the commission form's asset choice."""
    visible = session.exec(
        select(Asset).where(Asset.owner_id == expert_id).order_by(col(Asset.title))
    ).all()
    return [a for a in visible if a.published or account.role == Role.admin]
