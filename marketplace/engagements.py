"""Fixed-scope engagements: the state machine of a commission, its terms, and its milestones
from funding to settlement. Every change is recorded as an ``EngagementEvent``.

No money moves here. ``app/engagements.py`` runs each step and the ledger movement it causes
(fund, release, refund, split) in one transaction, the step first: a step refused here never
reaches the ledger.

    engagement: requested -> accepted | declined | cancelled | proposed
                proposed  -> accepted | declined | cancelled | proposed
                accepted  -> completed (when every milestone is settled)
    milestone:  pending -> funded -> delivered -> released            (client approves, or the
                                      delivered -> revision -> delivered  review window passes)
                funded | delivered | revision -> disputed -> released | refunded | split (admin)
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from marketplace.errors import (
    EngagementNotFound,
    InvalidEngagement,
    MilestoneNotFound,
    NotEngagementParty,
    RevisionLimitReached,
    TransitionRefused,
)
from marketplace.models import (
    Engagement,
    EngagementEvent,
    EngagementStatus,
    Milestone,
    MilestoneStatus,
)

MAX_MILESTONES = 20
MAX_AMOUNT = 10**11
MAX_REPORT_CHARS = 200_000
SETTLED = (MilestoneStatus.released, MilestoneStatus.refunded, MilestoneStatus.split_)
OUTCOMES = {
    "release": MilestoneStatus.released,
    "refund": MilestoneStatus.refunded,
    "split": MilestoneStatus.split_,
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One step of the state machine: who takes it, from which states, the state it leads to
    (None: the step decides, as a settlement does), the event it records, and the words its
    refusals use. One table serves the checks and the steps a party is offered, so the two
    never disagree."""

    name: str
    party: str
    sources: tuple[str, ...]
    target: str | None
    event: str
    verb: str
    milestone: bool = False
    refusal: str = ""  # said to another party; by default "only <party> can <verb>"


E, M = EngagementStatus, MilestoneStatus
RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("accept", "expert", (E.requested,), E.accepted, "accepted", "accept this request"),
        Rule("decline", "expert", (E.requested,), E.declined, "declined", "decline this request"),
        Rule("propose", "expert", (E.requested, E.proposed), E.proposed, "proposed",
             "propose changes"),
        Rule("accept_proposal", "client", (E.proposed,), E.accepted, "proposal_accepted",
             "accept the proposal"),
        Rule("decline_proposal", "client", (E.proposed,), E.declined, "proposal_declined",
             "decline the proposal"),
        Rule("cancel", "client", (E.requested, E.proposed), E.cancelled, "cancelled",
             "cancel this request"),
        Rule("fund", "client", (M.pending,), M.funded, "funded", "fund", milestone=True),
        Rule("deliver", "expert", (M.funded, M.revision), M.delivered, "delivered", "deliver",
             milestone=True),
        Rule("approve", "client", (M.delivered,), M.released, "approved", "approve",
             milestone=True),
        Rule("revise", "client", (M.delivered,), M.revision, "revision_requested",
             "ask for a revision of", milestone=True),
        Rule("dispute", "client", (M.funded, M.delivered, M.revision), M.disputed, "disputed",
             "dispute", milestone=True),
        Rule("settle", "admin", (M.disputed,), None, "settled", "settle", milestone=True,
             refusal="only an admin can settle a dispute"),
    )
}  # fmt: skip
PARTIES = {
    "client": "the client who commissioned it",
    "expert": "the expert it was commissioned from",
    "admin": "an admin",
}
ENGAGEMENT_STATES = {
    EngagementStatus.requested: "waits for the expert to accept, decline or propose changes",
    EngagementStatus.proposed: "waits for the client to accept or decline the expert's changes",
    EngagementStatus.accepted: "is under way",
    EngagementStatus.declined: "was declined",
    EngagementStatus.completed: "is completed: every milestone is settled",
    EngagementStatus.cancelled: "was cancelled by the client",
}
MILESTONE_STATES = {
    MilestoneStatus.pending: "is not funded yet",
    MilestoneStatus.funded: "is funded and waits for the expert's delivery",
    MilestoneStatus.delivered: "was delivered and waits for the client's decision",
    MilestoneStatus.revision: "is back with the expert for a revision",
    MilestoneStatus.disputed: "is disputed and waits for an admin",
    MilestoneStatus.released: "was released to the expert already",
    MilestoneStatus.refunded: "was refunded to the client already",
    MilestoneStatus.split_: "was settled by an admin already",
}


# Terms


@dataclass(frozen=True, slots=True)
class MilestoneTerms:
    title: str
    amount: int


@dataclass(frozen=True, slots=True)
class Terms:
    """What a client asks for; amounts in minor units of ``currency``."""

    title: str
    scope: str
    deliverable: str
    milestones: list[MilestoneTerms]
    currency: str = "usd"
    deadline: datetime | None = None
    revision_limit: int = 2
    review_days: int = 14

    def checked(self, *, now: datetime) -> "Terms":
        """These terms, trimmed, or InvalidEngagement (422) naming what to fix."""
        title, scope, deliverable = self.title.strip(), self.scope.strip(), self.deliverable.strip()
        if not title or len(title) > 200:
            raise InvalidEngagement("title: give the work a title of 1 to 200 characters")
        if not scope or len(scope) > 20_000:
            raise InvalidEngagement("scope: describe the work in 1 to 20000 characters")
        if not deliverable or len(deliverable) > 1000:
            raise InvalidEngagement(
                "deliverable: say what you will receive (e.g. a written report), "
                "in 1 to 1000 characters"
            )
        currency = self.currency.strip().lower()
        if len(currency) != 3 or not currency.isalpha():
            raise InvalidEngagement(f"currency {self.currency!r} is not a three-letter ISO code")
        if not 0 <= self.revision_limit <= 10:
            raise InvalidEngagement("revision_limit must be between 0 and 10")
        if not 1 <= self.review_days <= 90:
            raise InvalidEngagement("review_days (the client's review window) must be 1 to 90")
        return Terms(
            title=title,
            scope=scope,
            deliverable=deliverable,
            milestones=check_milestones(self.milestones, currency=currency),
            currency=currency,
            deadline=check_deadline(self.deadline, now=now),
            revision_limit=self.revision_limit,
            review_days=self.review_days,
        )


def check_milestones(milestones: list[MilestoneTerms], *, currency: str) -> list[MilestoneTerms]:
    if not 1 <= len(milestones) <= MAX_MILESTONES:
        raise InvalidEngagement(
            f"milestones: give 1 to {MAX_MILESTONES} milestones, each with a title and an amount"
        )
    checked = []
    for n, m in enumerate(milestones, start=1):
        title = m.title.strip()
        if not title or len(title) > 200:
            raise InvalidEngagement(f"milestone {n}: give it a title of 1 to 200 characters")
        if not 1 <= m.amount <= MAX_AMOUNT:
            raise InvalidEngagement(
                f"milestone {n} ({title}): the amount is in minor units of {currency.upper()} "
                f"(cents) and must be between 1 and {MAX_AMOUNT}, not {m.amount}"
            )
        checked.append(MilestoneTerms(title=title, amount=m.amount))
    return checked


def check_deadline(deadline: datetime | None, *, now: datetime) -> datetime | None:
    if deadline is None:
        return None
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    if deadline <= now:
        raise InvalidEngagement(
            f"the deadline {deadline:%Y-%m-%d %H:%M} UTC has passed; choose a later one"
        )
    return deadline


def _terms_data(eng: Engagement, milestones: list[Milestone]) -> dict[str, Any]:
    return {
        "milestones": [{"title": m.title, "amount": m.amount} for m in milestones],
        "total": sum(m.amount for m in milestones),
        "deadline": eng.deadline.isoformat() if eng.deadline else None,
    }


# Reading


def get(session: Session, engagement_id: str, *, viewer_id: str, is_admin: bool) -> Engagement:
    """The engagement if the viewer is its client, its expert or an admin; else 404."""
    eng = session.get(Engagement, engagement_id)
    if eng is None or not (is_admin or viewer_id in (eng.client_id, eng.expert_id)):
        raise EngagementNotFound(f"no engagement {engagement_id}")
    return eng


def party_of(eng: Engagement, *, viewer_id: str, is_admin: bool) -> str:
    """``client``, ``expert`` or ``admin``: the viewer's part in the engagement."""
    if viewer_id == eng.client_id:
        return "client"
    if viewer_id == eng.expert_id:
        return "expert"
    if is_admin:
        return "admin"
    raise EngagementNotFound(f"no engagement {eng.id}")


def list_for(
    session: Session, *, viewer_id: str, is_admin: bool = False, limit: int = 200
) -> list[Engagement]:
    """Engagements the viewer is a party to (every one for an admin), newest first."""
    statement = select(Engagement).order_by(
        col(Engagement.created_at).desc(), col(Engagement.id).desc()
    )
    if not is_admin:
        statement = statement.where(
            (col(Engagement.client_id) == viewer_id) | (col(Engagement.expert_id) == viewer_id)
        )
    return list(session.exec(statement.limit(limit)))


def milestones_of(session: Session, engagement_id: str) -> list[Milestone]:
    return list(
        session.exec(
            select(Milestone)
            .where(Milestone.engagement_id == engagement_id)
            .order_by(col(Milestone.position))
        )
    )


def get_milestone(
    session: Session, eng: Engagement, milestone_id: str, *, lock: bool = False
) -> Milestone:
    """A milestone of ``eng``; ``lock`` holds its row until the transaction ends."""
    statement = select(Milestone).where(
        Milestone.id == milestone_id, Milestone.engagement_id == eng.id
    )
    if lock:
        # Read again under the lock: a concurrent step may have changed it since it was loaded.
        statement = statement.with_for_update().execution_options(populate_existing=True)
    found = session.exec(statement).first()
    if found is None:
        raise MilestoneNotFound(f"engagement {eng.id} has no milestone {milestone_id}")
    return found


def events_of(session: Session, engagement_id: str) -> list[EngagementEvent]:
    return list(
        session.exec(
            select(EngagementEvent)
            .where(EngagementEvent.engagement_id == engagement_id)
            .order_by(col(EngagementEvent.created_at), col(EngagementEvent.id))
        )
    )


def disputed(session: Session) -> list[tuple[Engagement, Milestone]]:
    """Disputed milestones waiting for an admin, oldest engagement first."""
    rows = session.exec(
        select(Engagement, Milestone)
        .join(Milestone, col(Milestone.engagement_id) == col(Engagement.id))
        .where(Milestone.status == MilestoneStatus.disputed)
        .order_by(col(Engagement.created_at), col(Milestone.position))
    ).all()
    return [(e, m) for e, m in rows]


def open_from_consultation(session: Session, consultation_id: str) -> Engagement | None:
    """A live engagement escalated from this answer (requested, proposed or accepted)."""
    live = (EngagementStatus.requested, EngagementStatus.proposed, EngagementStatus.accepted)
    return session.exec(
        select(Engagement).where(
            Engagement.origin_consultation_id == consultation_id,
            col(Engagement.status).in_(live),
        )
    ).first()


# What a party may do now


@dataclass(slots=True)
class Actions:
    engagement: list[str] = field(default_factory=list)
    milestones: dict[str, list[str]] = field(default_factory=dict)


def actions(eng: Engagement, milestones: list[Milestone], *, party: str) -> Actions:
    """The steps ``party`` may take now, on the engagement and on each milestone."""
    found = Actions(engagement=[r.name for r in _offered(eng, party, None)])
    for m in milestones:
        found.milestones[m.id] = [r.name for r in _offered(eng, party, m)]
    return found


def _offered(eng: Engagement, party: str, milestone: Milestone | None) -> list[Rule]:
    rules = [r for r in RULES.values() if r.party == party and r.milestone == bool(milestone)]
    if milestone is None:
        return [r for r in rules if eng.status in r.sources]
    if eng.status != EngagementStatus.accepted:
        return []
    return [
        r
        for r in rules
        if milestone.status in r.sources
        and not (r.name == "revise" and milestone.revisions >= eng.revision_limit)
    ]


def _check(eng: Engagement, party: str, step: str, milestone: Milestone | None = None) -> None:
    rule = RULES[step]
    if party != rule.party:
        what = " a milestone" if milestone is not None else ""
        raise NotEngagementParty(
            rule.refusal or f"only {PARTIES[rule.party]} can {rule.verb}{what}"
        )
    if milestone is None:
        if eng.status not in rule.sources:
            raise TransitionRefused(
                f"cannot {rule.verb}: this engagement "
                f"{ENGAGEMENT_STATES[EngagementStatus(eng.status)]}"
            )
        return
    name = f"milestone {milestone.position} ({milestone.title})"
    if eng.status != EngagementStatus.accepted:
        raise TransitionRefused(
            f"cannot {rule.verb} {name}: this engagement "
            f"{ENGAGEMENT_STATES[EngagementStatus(eng.status)]}"
        )
    if milestone.status not in rule.sources:
        state = MILESTONE_STATES[MilestoneStatus(milestone.status)]
        hint = ""
        if step == "deliver" and milestone.status == MilestoneStatus.pending:
            hint = ": the client funds it into escrow before you deliver"
        raise TransitionRefused(f"cannot {rule.verb} {name}: it {state}{hint}")


def advance(
    session: Session,
    eng: Engagement,
    step: str,
    *,
    party: str,
    actor_id: str,
    now: datetime,
    milestone: Milestone | None = None,
    data: dict[str, Any] | None = None,
) -> EngagementEvent:
    """Take ``step`` as its rule says: check it, move the engagement (or ``milestone``) to the
    rule's state and record the rule's event with ``data``."""
    rule = RULES[step]
    _check(eng, party, step, milestone)
    assert rule.target is not None, f"{step} decides its own state"
    if milestone is None:
        eng.status = rule.target
        _save(session, eng)
    else:
        milestone.status = rule.target
        _save(session, milestone)
    return _event(
        session, eng, rule.event, actor_id=actor_id, now=now, milestone=milestone, data=data
    )


def _event(
    session: Session,
    eng: Engagement,
    kind: str,
    *,
    actor_id: str | None,
    now: datetime,
    milestone: Milestone | None = None,
    data: dict[str, Any] | None = None,
) -> EngagementEvent:
    # Events of one step share its time: a microsecond apart, they keep the order they
    # happened in (ids are random, so they cannot).
    last = session.exec(
        select(func.max(EngagementEvent.created_at)).where(EngagementEvent.engagement_id == eng.id)
    ).one()
    if last is not None:
        last = last if last.tzinfo else last.replace(tzinfo=UTC)
        now = max(now, last + timedelta(microseconds=1))
    event = EngagementEvent(
        engagement_id=eng.id,
        milestone_id=milestone.id if milestone else None,
        actor_id=actor_id,
        kind=kind,
        data=data or {},
        created_at=now,
    )
    session.add(event)
    session.flush()
    return event


def _save(session: Session, *rows: Engagement | Milestone) -> None:
    for row in rows:
        session.add(row)
    session.flush()


# The engagement's terms


def request(
    session: Session,
    *,
    client_id: str,
    expert_id: str,
    terms: Terms,
    now: datetime,
    asset_id: str | None = None,
    origin_consultation_id: str | None = None,
    attached: dict[str, Any] | None = None,
) -> Engagement:
    """A client's request to an expert, with its milestones; ``attached`` goes on the event
    (an escalated answer: its question, answer and citations)."""
    if client_id == expert_id:
        raise InvalidEngagement("you cannot commission an engagement from yourself")
    terms = terms.checked(now=now)
    eng = Engagement(
        client_id=client_id,
        expert_id=expert_id,
        asset_id=asset_id,
        title=terms.title,
        scope=terms.scope,
        deliverable=terms.deliverable,
        currency=terms.currency,
        deadline=terms.deadline,
        status=EngagementStatus.requested,
        revision_limit=terms.revision_limit,
        review_days=terms.review_days,
        origin_consultation_id=origin_consultation_id,
        created_at=now,
    )
    _save(session, eng)
    milestones = _add_milestones(session, eng, terms.milestones)
    _event(
        session,
        eng,
        "requested",
        actor_id=client_id,
        now=now,
        data={**_terms_data(eng, milestones), **(attached or {})},
    )
    return eng


def _add_milestones(
    session: Session, eng: Engagement, terms: list[MilestoneTerms]
) -> list[Milestone]:
    rows = [
        Milestone(
            engagement_id=eng.id,
            position=n,
            title=m.title,
            amount=m.amount,
            status=MilestoneStatus.pending,
        )
        for n, m in enumerate(terms, start=1)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def accept(session: Session, eng: Engagement, *, party: str, actor_id: str, now: datetime) -> None:
    """The expert accepts the request as it stands."""
    advance(session, eng, "accept", party=party, actor_id=actor_id, now=now)


def decline(
    session: Session,
    eng: Engagement,
    *,
    party: str,
    actor_id: str,
    now: datetime,
    reason: str = "",
) -> None:
    """The expert declines a request, or the client declines the expert's proposal."""
    step = "decline_proposal" if party == "client" else "decline"
    data = {"reason": reason.strip()}
    advance(session, eng, step, party=party, actor_id=actor_id, now=now, data=data)


def propose(
    session: Session,
    eng: Engagement,
    *,
    party: str,
    actor_id: str,
    now: datetime,
    milestones: list[MilestoneTerms] | None = None,
    deadline: datetime | None = None,
    note: str = "",
) -> None:
    """The expert proposes other milestones (and so another price) or another deadline; the
    proposal replaces the terms, and the client accepts or declines it. Nothing is funded
    before that, so no milestone with money in escrow is ever replaced."""
    _check(eng, party, "propose")
    if milestones is None and deadline is None:
        raise InvalidEngagement("propose new milestones, a new deadline, or both")
    current = milestones_of(session, eng.id)
    before = _terms_data(eng, current)
    if deadline is not None:
        eng.deadline = check_deadline(deadline, now=now)
    if milestones is not None:
        checked = check_milestones(milestones, currency=eng.currency)
        session.execute(delete(Milestone).where(col(Milestone.engagement_id) == eng.id))
        session.flush()
        current = _add_milestones(session, eng, checked)
    data = {"before": before, "after": _terms_data(eng, current), "note": note.strip()}
    advance(session, eng, "propose", party=party, actor_id=actor_id, now=now, data=data)


def accept_proposal(
    session: Session, eng: Engagement, *, party: str, actor_id: str, now: datetime
) -> None:
    advance(session, eng, "accept_proposal", party=party, actor_id=actor_id, now=now)


def cancel(session: Session, eng: Engagement, *, party: str, actor_id: str, now: datetime) -> None:
    """The client withdraws a request before it is agreed (nothing is funded yet)."""
    advance(session, eng, "cancel", party=party, actor_id=actor_id, now=now)


# Milestones


def fund(
    session: Session,
    eng: Engagement,
    milestone: Milestone,
    *,
    party: str,
    actor_id: str,
    now: datetime,
    via: str,
) -> None:
    """The milestone's money is in escrow (``via`` credits or stripe): work may start."""
    data = {"amount": milestone.amount, "via": via}
    advance(
        session,
        eng,
        "fund",
        party=party,
        actor_id=actor_id,
        now=now,
        milestone=milestone,
        data=data,
    )


def check(eng: Engagement, milestone: Milestone, *, party: str, step: str) -> None:
    """Refuse (403/409) a milestone step that ``party`` cannot take now, before work that
    precedes the step itself (a Stripe checkout, storing a file)."""
    _check(eng, party, step, milestone)


def deliver(
    session: Session,
    eng: Engagement,
    milestone: Milestone,
    *,
    party: str,
    actor_id: str,
    now: datetime,
    report: str,
    report_file: str | None = None,
) -> None:
    """The expert delivers the milestone's report (Markdown, and/or a stored PDF); the client's
    review window starts now."""
    _check(eng, party, "deliver", milestone)
    report = report.strip()
    if not report and report_file is None:
        raise InvalidEngagement("deliver a report: write it in Markdown or upload a PDF")
    if len(report) > MAX_REPORT_CHARS:
        raise InvalidEngagement(
            f"the report is {len(report)} characters; the limit is {MAX_REPORT_CHARS}: "
            "upload a PDF instead"
        )
    milestone.report = report
    milestone.report_file = report_file
    milestone.delivered_at = now
    milestone.release_after = now + timedelta(days=eng.review_days)
    data = {
        "characters": len(report),
        "pdf": report_file is not None,
        "revision": milestone.revisions,
        "release_after": milestone.release_after.isoformat(),
    }
    advance(
        session,
        eng,
        "deliver",
        party=party,
        actor_id=actor_id,
        now=now,
        milestone=milestone,
        data=data,
    )


def _required_text(text: str, ask: str, limit: int = 5000) -> str:
    """A stripped note or reason, refused when empty or longer than ``limit``."""
    text = text.strip()
    if not text or len(text) > limit:
        raise InvalidEngagement(f"{ask}, in 1 to {limit} characters")
    return text


def approve(
    session: Session,
    eng: Engagement,
    milestone: Milestone,
    *,
    party: str,
    actor_id: str,
    now: datetime,
) -> EngagementEvent:
    """The client approves the delivery; the caller releases the escrow to the expert and adds
    what moved to the returned event."""
    _check(eng, party, "approve", milestone)
    return _settled(
        session, eng, milestone, MilestoneStatus.released, "approved", actor_id=actor_id, now=now
    )


def request_revision(
    session: Session,
    eng: Engagement,
    milestone: Milestone,
    *,
    party: str,
    actor_id: str,
    now: datetime,
    note: str,
) -> None:
    """The client sends the delivery back, up to the engagement's revision limit."""
    _check(eng, party, "revise", milestone)
    note = _required_text(note, "say what to change")
    if milestone.revisions >= eng.revision_limit:
        raise RevisionLimitReached(
            f"milestone {milestone.position} ({milestone.title}) has had "
            f"{milestone.revisions} revision(s), the limit agreed for this engagement: "
            "approve it, or dispute it for an admin to settle"
        )
    milestone.revisions += 1
    milestone.release_after = None
    data = {"note": note, "revision": milestone.revisions, "limit": eng.revision_limit}
    advance(
        session,
        eng,
        "revise",
        party=party,
        actor_id=actor_id,
        now=now,
        milestone=milestone,
        data=data,
    )


def dispute(
    session: Session,
    eng: Engagement,
    milestone: Milestone,
    *,
    party: str,
    actor_id: str,
    now: datetime,
    reason: str,
) -> None:
    """The client disputes the milestone; its money stays in escrow until an admin settles."""
    _check(eng, party, "dispute", milestone)
    data = {"reason": _required_text(reason, "give the reason for the dispute")}
    milestone.release_after = None
    advance(
        session,
        eng,
        "dispute",
        party=party,
        actor_id=actor_id,
        now=now,
        milestone=milestone,
        data=data,
    )


def settle(
    session: Session,
    eng: Engagement,
    milestone: Milestone,
    *,
    party: str,
    actor_id: str,
    now: datetime,
    outcome: str,
    expert_share: int | None = None,
    note: str = "",
) -> tuple[int | None, EngagementEvent]:
    """An admin settles a dispute: ``release`` to the expert, ``refund`` to the client, or
    ``split`` (``expert_share`` to the expert, in minor units). Returns the expert's share for
    the ledger (None: all of it) and the event."""
    _check(eng, party, "settle", milestone)
    if outcome not in OUTCOMES:
        raise InvalidEngagement(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    share: int | None
    if outcome == "split":
        if expert_share is None or not 0 < expert_share < milestone.amount:
            raise InvalidEngagement(
                f"a split gives the expert part of the {milestone.amount} held: an expert_share "
                f"between 1 and {milestone.amount - 1} (minor units); release or refund for all "
                "or nothing"
            )
        share = expert_share
    elif expert_share is not None:
        raise InvalidEngagement(f"expert_share goes with a split, not with {outcome}")
    else:
        share = None if outcome == "release" else 0
    return share, _settled(
        session,
        eng,
        milestone,
        OUTCOMES[outcome],
        "settled",
        actor_id=actor_id,
        now=now,
        data={"outcome": outcome, "expert_share": share, "note": note.strip()},
    )


def due_for_release(session: Session, *, now: datetime) -> list[tuple[Engagement, Milestone]]:
    """Delivered milestones whose review window has ended with no answer from the client."""
    rows = session.exec(
        select(Engagement, Milestone)
        .join(Milestone, col(Milestone.engagement_id) == col(Engagement.id))
        .where(
            Milestone.status == MilestoneStatus.delivered,
            col(Milestone.release_after) <= now,
            Engagement.status == EngagementStatus.accepted,
        )
        .order_by(col(Milestone.release_after))
    ).all()
    return [(e, m) for e, m in rows]


def auto_release(
    session: Session, eng: Engagement, milestone: Milestone, *, now: datetime
) -> EngagementEvent:
    """Release a delivery left unanswered past its window (the scheduler is the actor)."""
    if milestone.status != MilestoneStatus.delivered or (
        milestone.release_after is None or milestone.release_after > now
    ):
        raise TransitionRefused(
            f"milestone {milestone.position} ({milestone.title}) is not due for release"
        )
    return _settled(
        session,
        eng,
        milestone,
        MilestoneStatus.released,
        "auto_released",
        actor_id=None,
        now=now,
        data={"review_days": eng.review_days},
    )


def payment_refunded(
    session: Session, eng: Engagement, milestone: Milestone, *, now: datetime
) -> EngagementEvent:
    """The card payment that funded a milestone was refunded through Stripe while its money was
    held: the milestone ends, refunded (Stripe is the actor, not a party)."""
    held = (
        MilestoneStatus.funded,
        MilestoneStatus.delivered,
        MilestoneStatus.revision,
        MilestoneStatus.disputed,
    )
    if milestone.status not in held:
        raise TransitionRefused(
            f"milestone {milestone.position} ({milestone.title}) holds no money to refund"
        )
    return _settled(
        session, eng, milestone, MilestoneStatus.refunded, "payment_refunded", actor_id=None,
        now=now,
    )  # fmt: skip


def add_figures(session: Session, event: EngagementEvent, **figures: int) -> None:
    """Put what the ledger moved (fee, to the expert, to the client) on a settlement's event."""
    event.data = {**event.data, **figures}
    session.add(event)
    session.flush()


def _settled(
    session: Session,
    eng: Engagement,
    milestone: Milestone,
    status: str,
    kind: str,
    *,
    actor_id: str | None,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> EngagementEvent:
    """Mark the milestone settled with its event; the engagement is completed (with an event
    of its own, after this one) when it was the last milestone open."""
    milestone.status = status
    milestone.settled_at = now
    milestone.release_after = None
    _save(session, milestone)
    event = _event(session, eng, kind, actor_id=actor_id, now=now, milestone=milestone, data=data)
    if all(m.status in SETTLED for m in milestones_of(session, eng.id)):
        eng.status = EngagementStatus.completed
        _save(session, eng)
        _event(session, eng, "completed", actor_id=None, now=now)
    return event


def terms_of(eng: Engagement, milestones: list[Milestone]) -> dict[str, Any]:
    """The agreed terms as plain data (for JSON and events)."""
    return {
        "title": eng.title,
        "currency": eng.currency,
        "revision_limit": eng.revision_limit,
        "review_days": eng.review_days,
        **_terms_data(eng, milestones),
    }
