"""The engagement state machine on its own (no money), on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from marketplace import engagements as work
from marketplace.engagements import MilestoneTerms, Terms
from marketplace.errors import (
    EngagementNotFound,
    InvalidEngagement,
    NotEngagementParty,
    RevisionLimitReached,
    TransitionRefused,
)
from marketplace.models import Engagement, EngagementStatus, Milestone, MilestoneStatus
from tests.factories import Actor

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def terms(*amounts: int, **overrides: object) -> Terms:
    fields: dict[str, object] = {
        "title": "Architecture review",
        "scope": "Review the payment service's design and its failure modes.",
        "deliverable": "A written report",
        "milestones": [
            MilestoneTerms(title=f"Part {n}", amount=a)
            for n, a in enumerate(amounts or (30_000, 20_000), 1)
        ],
        **overrides,
    }
    return Terms(**fields)  # type: ignore[arg-type]


def requested(session: Session, client: Actor, expert: Actor, *amounts: int) -> Engagement:
    eng = work.request(
        session,
        client_id=client.account.id,
        expert_id=expert.account.id,
        terms=terms(*amounts),
        now=NOW,
    )
    session.commit()
    return eng


def agreed(session: Session, client: Actor, expert: Actor, *amounts: int) -> Engagement:
    eng = requested(session, client, expert, *amounts)
    work.accept(session, eng, party="expert", actor_id=expert.account.id, now=NOW)
    return eng


def first(session: Session, eng: Engagement) -> Milestone:
    return work.milestones_of(session, eng.id)[0]


def kinds(session: Session, eng: Engagement) -> list[str]:
    return [e.kind for e in work.events_of(session, eng.id)]


def test_request_stores_terms_milestones_and_an_event(
    session: Session, client_user: Actor, expert: Actor
) -> None:
    eng = requested(session, client_user, expert)
    assert eng.status == EngagementStatus.requested
    assert (eng.review_days, eng.revision_limit, eng.currency) == (14, 2, "usd")
    milestones = work.milestones_of(session, eng.id)
    assert [(m.position, m.amount, m.status) for m in milestones] == [
        (1, 30_000, "pending"),
        (2, 20_000, "pending"),
    ]
    (event,) = work.events_of(session, eng.id)
    assert (event.kind, event.actor_id) == ("requested", client_user.account.id)
    assert event.data["total"] == 50_000


@pytest.mark.both_databases
def test_the_whole_way_from_request_to_completed(
    session: Session, client_user: Actor, expert: Actor, admin: Actor
) -> None:
    c, e = client_user.account.id, expert.account.id
    eng = requested(session, client_user, expert, 10_000)
    work.propose(
        session,
        eng,
        party="expert",
        actor_id=e,
        now=NOW,
        milestones=[MilestoneTerms("Design", 30_000), MilestoneTerms("Report", 20_000)],
        note="two parts",
    )
    assert eng.status == EngagementStatus.proposed
    assert [m.amount for m in work.milestones_of(session, eng.id)] == [30_000, 20_000]
    work.accept_proposal(session, eng, party="client", actor_id=c, now=NOW)
    one, two = work.milestones_of(session, eng.id)
    for m in (one, two):
        work.fund(session, eng, m, party="client", actor_id=c, now=NOW, via="credits")
    work.deliver(session, eng, one, party="expert", actor_id=e, now=NOW, report="# Findings")
    assert one.release_after == NOW + timedelta(days=14)
    work.request_revision(session, eng, one, party="client", actor_id=c, now=NOW, note="more")
    assert (one.status, one.revisions) == ("revision", 1)
    assert one.release_after is None
    work.deliver(session, eng, one, party="expert", actor_id=e, now=NOW, report="# Findings v2")
    work.approve(session, eng, one, party="client", actor_id=c, now=NOW)
    assert eng.status == EngagementStatus.accepted  # one milestone is still open
    work.dispute(session, eng, two, party="client", actor_id=c, now=NOW, reason="late")
    share, event = work.settle(
        session,
        eng,
        two,
        party="admin",
        actor_id=admin.account.id,
        now=NOW,
        outcome="split",
        expert_share=12_000,
    )
    assert share == 12_000
    assert event.data["outcome"] == "split"
    assert (two.status, eng.status) == (MilestoneStatus.split_, EngagementStatus.completed)
    assert kinds(session, eng) == [
        "requested",
        "proposed",
        "proposal_accepted",
        "funded",
        "funded",
        "delivered",
        "revision_requested",
        "delivered",
        "approved",
        "disputed",
        "settled",
        "completed",
    ]


class TestRefused:
    def test_deliver_an_unfunded_milestone(
        self, session: Session, client_user: Actor, expert: Actor
    ) -> None:
        eng = agreed(session, client_user, expert)
        with pytest.raises(TransitionRefused, match="is not funded yet") as exc:
            work.deliver(
                session,
                eng,
                first(session, eng),
                party="expert",
                actor_id=expert.account.id,
                now=NOW,
                report="x",
            )
        assert exc.value.status_code == 409
        assert "the client funds it into escrow before you deliver" in exc.value.message

    def test_approve_twice(self, session: Session, client_user: Actor, expert: Actor) -> None:
        eng = agreed(session, client_user, expert)
        m, c = first(session, eng), client_user.account.id
        work.fund(session, eng, m, party="client", actor_id=c, now=NOW, via="credits")
        work.deliver(
            session, eng, m, party="expert", actor_id=expert.account.id, now=NOW, report="r"
        )
        work.approve(session, eng, m, party="client", actor_id=c, now=NOW)
        with pytest.raises(TransitionRefused, match="was released to the expert already"):
            work.approve(session, eng, m, party="client", actor_id=c, now=NOW)

    def test_fund_a_declined_engagement(
        self, session: Session, client_user: Actor, expert: Actor
    ) -> None:
        eng = requested(session, client_user, expert)
        work.decline(
            session, eng, party="expert", actor_id=expert.account.id, now=NOW, reason="busy"
        )
        with pytest.raises(TransitionRefused, match="this engagement was declined"):
            work.fund(
                session,
                eng,
                first(session, eng),
                party="client",
                actor_id=client_user.account.id,
                now=NOW,
                via="credits",
            )

    def test_fund_before_the_expert_accepts(
        self, session: Session, client_user: Actor, expert: Actor
    ) -> None:
        eng = requested(session, client_user, expert)
        with pytest.raises(TransitionRefused, match="waits for the expert to accept"):
            work.fund(
                session,
                eng,
                first(session, eng),
                party="client",
                actor_id=client_user.account.id,
                now=NOW,
                via="credits",
            )

    def test_revise_past_the_limit(
        self, session: Session, client_user: Actor, expert: Actor
    ) -> None:
        eng = agreed(session, client_user, expert)
        m, c, e = first(session, eng), client_user.account.id, expert.account.id
        work.fund(session, eng, m, party="client", actor_id=c, now=NOW, via="credits")
        for _ in range(eng.revision_limit):
            work.deliver(session, eng, m, party="expert", actor_id=e, now=NOW, report="r")
            work.request_revision(session, eng, m, party="client", actor_id=c, now=NOW, note="n")
        work.deliver(session, eng, m, party="expert", actor_id=e, now=NOW, report="r")
        with pytest.raises(RevisionLimitReached, match="approve it, or dispute it") as exc:
            work.request_revision(session, eng, m, party="client", actor_id=c, now=NOW, note="n")
        assert exc.value.status_code == 409
        assert "revise" not in work.actions(eng, [m], party="client").milestones[m.id]

    def test_the_other_party_cannot_take_a_step(
        self, session: Session, client_user: Actor, expert: Actor
    ) -> None:
        eng = requested(session, client_user, expert)
        with pytest.raises(NotEngagementParty, match="only the expert it was commissioned from"):
            work.accept(session, eng, party="client", actor_id=client_user.account.id, now=NOW)

    def test_a_stranger_does_not_find_it(
        self, session: Session, client_user: Actor, expert: Actor, client_second: Actor
    ) -> None:
        eng = requested(session, client_user, expert)
        with pytest.raises(EngagementNotFound):
            work.get(session, eng.id, viewer_id=client_second.account.id, is_admin=False)
        assert work.get(session, eng.id, viewer_id=expert.account.id, is_admin=False) == eng
        assert work.list_for(session, viewer_id=client_second.account.id) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"milestones": []}, "give 1 to 20 milestones"),
        ({"milestones": [MilestoneTerms("A", 0)]}, "must be between 1 and"),
        ({"milestones": [MilestoneTerms(" ", 100)]}, "milestone 1: give it a title"),
        ({"deadline": NOW - timedelta(days=1)}, "has passed"),
        ({"currency": "dollars"}, "not a three-letter ISO code"),
        ({"title": ""}, "title"),
        ({"review_days": 0}, "review window"),
        ({"revision_limit": 11}, "revision_limit"),
    ],
)
def test_terms_are_checked(
    session: Session,
    client_user: Actor,
    expert: Actor,
    overrides: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(InvalidEngagement, match=message):
        work.request(
            session,
            client_id=client_user.account.id,
            expert_id=expert.account.id,
            terms=terms(**overrides),
            now=NOW,
        )


@pytest.mark.both_databases
def test_settle_checks_the_split(
    session: Session, client_user: Actor, expert: Actor, admin: Actor
) -> None:
    eng = agreed(session, client_user, expert, 10_000)
    m, c, a = first(session, eng), client_user.account.id, admin.account.id
    work.fund(session, eng, m, party="client", actor_id=c, now=NOW, via="credits")
    work.dispute(session, eng, m, party="client", actor_id=c, now=NOW, reason="wrong")
    for share in (None, 0, 10_000):
        with pytest.raises(InvalidEngagement, match="between 1 and 9999"):
            work.settle(
                session,
                eng,
                m,
                party="admin",
                actor_id=a,
                now=NOW,
                outcome="split",
                expert_share=share,
            )
    with pytest.raises(InvalidEngagement, match="outcome must be one of release, refund, split"):
        work.settle(session, eng, m, party="admin", actor_id=a, now=NOW, outcome="keep")
    with pytest.raises(NotEngagementParty, match="only an admin can settle"):
        work.settle(session, eng, m, party="client", actor_id=c, now=NOW, outcome="refund")
    share, _ = work.settle(session, eng, m, party="admin", actor_id=a, now=NOW, outcome="refund")
    assert share == 0
    assert m.status == MilestoneStatus.refunded


def test_actions_follow_the_state(session: Session, client_user: Actor, expert: Actor) -> None:
    eng = requested(session, client_user, expert, 10_000)
    m = first(session, eng)
    assert work.actions(eng, [m], party="expert").engagement == ["accept", "decline", "propose"]
    assert work.actions(eng, [m], party="client").engagement == ["cancel"]
    work.accept(session, eng, party="expert", actor_id=expert.account.id, now=NOW)
    assert work.actions(eng, [m], party="client").milestones[m.id] == ["fund"]
    assert work.actions(eng, [m], party="expert").milestones[m.id] == []
    work.fund(
        session, eng, m, party="client", actor_id=client_user.account.id, now=NOW, via="credits"
    )
    assert work.actions(eng, [m], party="expert").milestones[m.id] == ["deliver"]
    assert work.actions(eng, [m], party="client").milestones[m.id] == ["dispute"]
    work.deliver(session, eng, m, party="expert", actor_id=expert.account.id, now=NOW, report="r")
    assert work.actions(eng, [m], party="client").milestones[m.id] == [
        "approve",
        "revise",
        "dispute",
    ]
    assert work.actions(eng, [m], party="admin").milestones[m.id] == []


@pytest.mark.both_databases
def test_due_for_release_waits_for_the_window(
    session: Session, client_user: Actor, expert: Actor
) -> None:
    eng = agreed(session, client_user, expert, 10_000)
    m = first(session, eng)
    work.fund(
        session, eng, m, party="client", actor_id=client_user.account.id, now=NOW, via="credits"
    )
    work.deliver(session, eng, m, party="expert", actor_id=expert.account.id, now=NOW, report="r")
    assert work.due_for_release(session, now=NOW + timedelta(days=13, hours=23)) == []
    later = NOW + timedelta(days=14)
    assert work.due_for_release(session, now=later) == [(eng, m)]
    with pytest.raises(TransitionRefused, match="not due"):
        work.auto_release(session, eng, m, now=NOW + timedelta(days=1))
    event = work.auto_release(session, eng, m, now=later)
    assert (event.kind, event.actor_id) == ("auto_released", None)
    assert (m.status, eng.status) == (MilestoneStatus.released, EngagementStatus.completed)
    assert kinds(session, eng)[-2:] == ["auto_released", "completed"]
