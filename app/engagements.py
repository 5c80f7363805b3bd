"""Engagements, where the marketplace's state machine meets money, accounts and assets:
commission (and escalation from an answer), funding with credits or Stripe, delivery (with a
draft from the expert's own asset), approval, revision, dispute, an admin's settlement, and the
scheduled release of deliveries left unanswered.

The steps after the commission are one table, ``STEPS``: each row names its input, the state
change and money it runs, and the notification it sends; the JSON routes and the page actions
are made from it, and ``take`` runs any of them. Who may take a step from which state is the
state machine's ``marketplace.engagements.RULES``.

Each step runs in the request's transaction inside a savepoint: the state change first (a step
the state machine refuses never reaches the ledger; funding checks it before the money moves),
then the money through billing, so that a page that shows the refusal and commits never keeps
half a step.
"""

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from app import notifications, payments, querying
from app.accounts import viewer_of
from app.models import Account, Role
from app.runtime import Runtime
from assets.errors import AssetNotFound, ConsultationNotFound
from assets.models import Asset, Consultation
from assets.service import get_managed_asset, get_visible_asset
from billing import service as billing
from core import files
from core.clock import utcnow
from core.db import session_scope
from core.errors import Conflict, Forbidden, InvalidInput
from core.ids import new_id
from marketplace import engagements as work
from marketplace.engagements import MAX_AMOUNT, MilestoneTerms, Terms
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


# The steps after the commission, as one table


class MilestoneIn(BaseModel):
    title: str = Field(min_length=1, max_length=200, examples=["Architecture review"])
    amount: int = Field(ge=1, le=MAX_AMOUNT, description="Minor units (cents)", examples=[50000])

    def terms(self) -> MilestoneTerms:
        return MilestoneTerms(title=self.title, amount=self.amount)


class StepIn(BaseModel):
    """A step's input: the JSON body of its API route; its page form has fields of the same
    names."""

    def inputs(self) -> dict[str, Any]:
        """The keyword arguments of the step's ``run``."""
        return dict(self)


class ReasonIn(StepIn):
    reason: str = Field(default="", max_length=5000)


class ProposalIn(StepIn):
    milestones: list[MilestoneIn] | None = Field(default=None, min_length=1, max_length=20)
    deadline: datetime | None = None
    note: str = Field(default="", max_length=5000)

    def inputs(self) -> dict[str, Any]:
        milestones = [m.terms() for m in self.milestones] if self.milestones else None
        return {**dict(self), "milestones": milestones}


class FundIn(StepIn):
    pay: Literal["credits", "card"] = Field(
        default="credits", description="From your credits now, or by card through Stripe"
    )


class DeliveryIn(StepIn):
    report: str = Field(min_length=1, max_length=200_000, description="The report, in Markdown")


class RevisionIn(StepIn):
    note: str = Field(min_length=1, max_length=5000, description="What to change")


class DisputeIn(StepIn):
    reason: str = Field(min_length=1, max_length=5000)


class SettlementIn(StepIn):
    outcome: Literal["release", "refund", "split"]
    expert_share: int | None = Field(
        default=None, ge=0, description="With split: the expert's part, in minor units"
    )
    note: str = Field(default="", max_length=2000)


@dataclass(slots=True)
class Taking:
    """A step being taken: the engagement, its milestone (locked) and who takes the step."""

    session: Session
    runtime: Runtime
    account: Account
    step: str
    eng: Engagement
    party: str
    milestone: Milestone | None
    now: datetime
    checkout_url: str | None = None

    @property
    def by(self) -> dict[str, Any]:
        """Who takes the step, and when, as the state machine's steps take it."""
        return {"party": self.party, "actor_id": self.account.id, "now": self.now}

    @property
    def ms(self) -> Milestone:
        assert self.milestone is not None, f"{self.step} is a step of a milestone"
        return self.milestone


# What a step adds to its notification's text (money already formatted); None: nothing to
# tell yet (a card payment goes on at Stripe).
Figures = dict[str, str]


def _plain(t: Taking) -> Figures:
    """The rule's transition, nothing more."""
    work.advance(t.session, t.eng, t.step, **t.by)
    return {}


def _decline(t: Taking, reason: str = "") -> Figures:
    work.decline(t.session, t.eng, **t.by, reason=reason)
    return {}


def _propose(
    t: Taking, milestones: list[MilestoneTerms] | None, deadline: datetime | None, note: str = ""
) -> Figures:
    work.propose(
        t.session,
        t.eng,
        **t.by,
        milestones=milestones,
        deadline=deadline,
        note=note,
    )
    return {}


def _fund(t: Taking, pay: str = "credits") -> Figures | None:
    """From the client's credits into the milestone's escrow now, or by card through Stripe
    Checkout: funded when Stripe's webhook confirms the payment (``after_stripe_event``)."""
    eng, ms = t.eng, t.ms
    work.check(eng, ms, party=t.party, step="fund")
    if pay == "card":
        t.checkout_url = payments.checkout_milestone(
            t.session,
            t.runtime,
            account=t.account,
            milestone_id=ms.id,
            amount=ms.amount,
            currency=eng.currency,
            title=f"{eng.title}: {ms.title}",
            return_path=f"/engagements/{eng.id}",
        )
        return None
    billing.fund_milestone(
        t.session,
        client_id=eng.client_id,
        milestone_id=ms.id,
        amount=ms.amount,
        currency=eng.currency,
    )
    work.fund(t.session, eng, ms, **t.by, via="credits")
    return {}


def _deliver(t: Taking, report: str, pdf: bytes | None = None) -> Figures:
    stored = None
    if pdf is not None:
        work.check(t.eng, t.ms, party=t.party, step="deliver")  # before the file is written
        if not pdf:
            raise InvalidReport("the report file is empty")
        stored = store_report_pdf(t.session, t.runtime, t.eng, t.ms, pdf)
    work.deliver(
        t.session,
        t.eng,
        t.ms,
        **t.by,
        report=report,
        report_file=stored,
    )
    return {}


def _approve(t: Taking) -> Figures:
    event = work.approve(t.session, t.eng, t.ms, **t.by)
    return _figures(t.eng, _paid(t.session, t.runtime, t.eng, t.ms, event, None))


def _revise(t: Taking, note: str) -> Figures:
    work.request_revision(t.session, t.eng, t.ms, **t.by, note=note)
    return {}


def _dispute(t: Taking, reason: str) -> Figures:
    work.dispute(t.session, t.eng, t.ms, **t.by, reason=reason)
    return {}


def _settle(t: Taking, outcome: str, expert_share: int | None = None, note: str = "") -> Figures:
    share, event = work.settle(
        t.session,
        t.eng,
        t.ms,
        **t.by,
        outcome=outcome,
        expert_share=expert_share,
        note=note,
    )
    settlement = _paid(t.session, t.runtime, t.eng, t.ms, event, share)
    return {"outcome": outcome, **_figures(t.eng, settlement)}


@dataclass(frozen=True, slots=True)
class Step:
    """A step a party takes on an engagement or on one of its milestones, after the
    commission. The use case (``take``), its JSON route and its page action are all made from
    this row; who may take it from which state is the rule of the same name in
    ``marketplace.engagements.RULES``."""

    name: str  # the rule's; its URL says it with "-" for "_"
    doc: str
    # Who is told (client, expert, the other party, or both), the notification's kind
    # (engagement.<notice>) and its text: {actor}, {of} or {Of} (the engagement or milestone),
    # {amount}, {review_days}, and the figures ``run`` returns.
    tell: str
    notice: str
    message: str
    done: str  # the page's ?done= after it
    run: Callable[..., Figures | None] = _plain  # the state change and the money it moves
    body: type[StepIn] | None = None
    body_required: bool = False
    milestone: bool = False

    @property
    def path(self) -> str:
        on = "/milestones/{milestone_id}" if self.milestone else ""
        return f"/engagements/{{engagement_id}}{on}/{self.name.replace('_', '-')}"


STEPS: dict[str, Step] = {
    step.name: step
    for step in (
        Step("accept", doc="The expert accepts the request as it stands.",
             tell="client", notice="accepted", message="{actor} accepted {of}: fund it",
             done="accepted"),
        Step("decline", doc="The expert declines a request; the client declines the expert's "
             "proposal.",
             tell="other", notice="declined", message="{actor} declined {of}",
             done="declined", run=_decline, body=ReasonIn),
        Step("propose", doc="The expert proposes other milestones (so another price) and/or "
             "another deadline.",
             tell="client", notice="proposed",
             message="{actor} proposes changes to {of}: accept or decline them",
             done="proposed", run=_propose, body=ProposalIn, body_required=True),
        Step("accept_proposal", doc="The client accepts the expert's proposed terms.",
             tell="expert", notice="accepted", message="{actor} accepted your proposal for {of}",
             done="accepted"),
        Step("cancel", doc="The client withdraws a request that is not agreed yet.",
             tell="expert", notice="cancelled", message="{actor} cancelled {of}",
             done="cancelled"),
        Step("fund", doc="Fund a milestone into escrow: from credits now, or (``pay: card``) "
             "through Stripe Checkout, funded when Stripe confirms the payment.",
             tell="expert", notice="funded",
             message="{Of} was funded: {amount} is in escrow; deliver it",
             done="funded", run=_fund, body=FundIn, milestone=True),
        Step("deliver", doc="The expert delivers a funded milestone's report, in Markdown.",
             tell="client", notice="delivered",
             message="{actor} delivered {of}: approve it, ask for a revision or dispute it "
             "within {review_days} days",
             done="delivered", run=_deliver, body=DeliveryIn, body_required=True,
             milestone=True),
        Step("approve", doc="Approve a delivery: its money goes to the expert, minus the "
             "platform fee.",
             tell="expert", notice="released",
             message="{Of} was approved by {actor}: {to_expert} is yours",
             done="approved", run=_approve, milestone=True),
        Step("revise", doc="Send a delivery back to the expert for a revision, up to the "
             "agreed limit.",
             tell="expert", notice="revision", message="{actor} asks for a revision of {of}",
             done="revision", run=_revise, body=RevisionIn, body_required=True,
             milestone=True),
        Step("dispute", doc="Dispute a milestone: its money stays in escrow until an admin "
             "settles it.",
             tell="expert", notice="disputed",
             message="{actor} disputes {of}; an admin will settle it",
             done="disputed", run=_dispute, body=DisputeIn, body_required=True,
             milestone=True),
        Step("settle", doc="Settle a disputed milestone (admins): release, refund, or split "
             "with ``expert_share``.",
             tell="both", notice="settled",
             message="An admin settled the dispute on {of} ({outcome}): {to_expert} to the "
             "expert, {to_client} back to the client",
             done="settled", run=_settle, body=SettlementIn, body_required=True,
             milestone=True),
    )
}  # fmt: skip


def take(
    session: Session,
    runtime: Runtime,
    *,
    account: Account,
    step: str,
    engagement_id: str,
    milestone_id: str | None = None,
    **inputs: Any,
) -> str | None:
    """Take ``step`` (a name in ``STEPS``) with its ``inputs``: the state change, the money it
    moves and its notification, all or nothing. Returns the Stripe Checkout URL when the step
    goes on there (a milestone paid by card), else None."""
    row = STEPS[step]
    eng, party = _load(session, account, engagement_id)
    ms = None
    if row.milestone:
        # The client's wallet lock before the milestone's row lock, in the order Stripe's
        # webhook takes them, so that the two never wait on each other.
        billing.lock_wallet(session, eng.client_id)
        ms = work.get_milestone(session, eng, milestone_id or "", lock=True)
    t = Taking(session, runtime, account, step, eng, party, ms, utcnow())
    with _step(session):
        figures = row.run(t, **inputs)
        if figures is not None:
            _announce(t, row, figures)
    return t.checkout_url


def _announce(t: Taking, row: Step, figures: Figures) -> None:
    eng, ms = t.eng, t.milestone
    message = row.message.format(
        actor=t.account.name,
        of=_of(eng, ms),
        Of=_of(eng, ms, start=True),
        amount=billing.money(ms.amount, eng.currency) if ms else "",
        review_days=eng.review_days,
        **figures,
    )
    other = eng.client_id if t.account.id == eng.expert_id else eng.expert_id
    to = {
        "client": (eng.client_id,),
        "expert": (eng.expert_id,),
        "other": (other,),
        "both": (eng.client_id, eng.expert_id),
    }[row.tell]
    for account_id in to:
        _tell(
            t.session, t.runtime, eng, to=account_id, kind=row.notice, message=message, milestone=ms
        )


def _paid(
    session: Session,
    runtime: Runtime,
    eng: Engagement,
    ms: Milestone,
    event: EngagementEvent,
    share: int | None,
) -> billing.Settlement:
    """Settle the milestone's escrow (``share`` to the expert, None: all of it) and put what
    moved on the step's event."""
    settlement = billing.settle_milestone(
        session,
        milestone_id=ms.id,
        client_id=eng.client_id,
        expert_id=eng.expert_id,
        currency=eng.currency,
        expert_share=share,
        fee_bps=runtime.settings.billing.platform_fee_bps,
    )
    work.add_figures(
        session,
        event,
        fee=settlement.fee,
        to_expert=settlement.to_expert,
        to_client=settlement.to_client,
    )
    return settlement


def _figures(eng: Engagement, settlement: billing.Settlement) -> Figures:
    return {
        "to_expert": billing.money(settlement.to_expert, eng.currency),
        "to_client": billing.money(settlement.to_client, eng.currency),
    }


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
    settlement = _paid(session, runtime, eng, ms, event, 0)
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


def store_report_pdf(
    session: Session, runtime: Runtime, eng: Engagement, ms: Milestone, data: bytes
) -> str:
    """Keep a report PDF under the data dir and in the database (other replicas serve it);
    returns its path relative to the data dir."""
    if not data.startswith(b"%PDF-"):
        raise InvalidReport("the report file is not a PDF (it does not start with %PDF-)")
    if len(data) > MAX_REPORT_BYTES:
        raise InvalidReport(
            f"the report PDF is larger than the {MAX_REPORT_BYTES} byte limit", status_code=413
        )
    name = f"{ms.id}-r{ms.revisions}-{new_id('pdf').removeprefix('pdf_')}.pdf"
    path = f"engagements/{eng.id}/{name}"
    files.keep(session, runtime.settings.data_dir, path, data)
    return path


def check_deliver(
    session: Session, *, account: Account, engagement_id: str, milestone_id: str
) -> None:
    """Refuse (403/404/409) a delivery the account cannot make now, reading without locks: run
    before an uploaded report is read; ``deliver`` checks again under its locks."""
    eng, party = _load(session, account, engagement_id)
    work.check(eng, work.get_milestone(session, eng, milestone_id), party=party, step="deliver")


def report_file(
    session: Session, runtime: Runtime, *, account: Account, engagement_id: str, milestone_id: str
) -> Path:
    """The stored PDF of a milestone's report, for its client, its expert or an admin."""
    eng, _party = _load(session, account, engagement_id)
    ms = work.get_milestone(session, eng, milestone_id)
    if not ms.report_file:
        raise MilestoneNotFound(f"milestone {ms.position} has no PDF report")
    path = files.local(session, runtime.settings.data_dir, ms.report_file)
    if path is None:
        raise MilestoneNotFound(f"the PDF report of milestone {ms.position} is missing")
    return path


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
            settlement = _paid(session, runtime, eng, ms, event, None)
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
