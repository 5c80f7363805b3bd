"""Random sequences of everything that moves money, checked after every step.

A hypothesis state machine drives top-ups (admin grants and Stripe purchases through the real
webhook handler), Stripe refunds, asks, priced searches, subscriptions, accepts, disputes,
refunds, the passing of time (window expiries and period ends), releases and payouts against
the real services on a real database. After every step: every transaction balances, no account
that must stay non-negative is negative, and credits + subscriptions + escrow + earnings +
revenue + paid out + refunded equal the money that came in (cash received through Stripe,
credits granted, and what the platform covered itself).
"""

import itertools
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import Session

from app import accounts
from assets.embeddings import Embedder, MiniLMEmbedder
from assets.models import Consultation
from assets.schemas import AssetCreate
from assets.service import Viewer, create_asset
from billing import ledger, payouts, webhooks
from billing import service as billing
from billing.errors import AlreadySubscribed, ChargeSettled, PaymentRequired, SubscriptionRequired
from billing.models import Charge, ChargeStatus
from billing.service import PlanTerms
from core.db import make_engine, session_scope
from tests.stripe_fakes import charge as stripe_charge
from tests.stripe_fakes import checkout_session, event

FEE_BPS = 2000
# Amounts near the prices (30 a question, 45 overage, 100 a month) find the edges.
AMOUNTS = st.one_of(st.sampled_from([1, 15, 29, 30, 31, 45, 59, 60, 99, 100]), st.integers(1, 400))
_run = itertools.count()


def _ledger_groups(session: Session) -> dict[str, int]:
    """Balances summed by kind of account (usd only: every plan here is in usd)."""
    groups: dict[str, int] = {}
    for (name, _currency), amount in ledger.balances(session).items():
        if name in (*ledger.SOURCES, ledger.REVENUE, ledger.REFUNDS):
            kind = name
        elif name.startswith("expert:"):
            kind = "earnings:" + name.rsplit(":", 1)[1]
        else:
            kind = name.split(":")[0]
        groups[kind] = groups.get(kind, 0) + amount
    return groups


def make_machine(template: Path, workdir: Path, embedder: Embedder) -> type[RuleBasedStateMachine]:
    class Money(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            run = next(_run)
            # Each example starts from an empty, migrated database of its own.
            path = workdir / f"money-{run}.db"
            shutil.copy(template, path)
            self.engine = engine = make_engine(f"sqlite:///{path}")
            self.now = datetime(2026, 1, 1, tzinfo=UTC)
            self.charges: list[str] = []
            self.purchases: list[tuple[str, str, int, int]] = []  # pi, client, amount, refunded
            with session_scope(engine) as session:
                self.expert = accounts.create_account(
                    session, email=f"e{run}@m.test", name="E", role="expert"
                ).id
                self.clients = [
                    accounts.create_account(
                        session, email=f"c{run}-{i}@m.test", name="C", role="client"
                    ).id
                    for i in range(2)
                ]
                owner = Viewer(self.expert, "expert")
                self.assets = []
                for n, terms in enumerate(
                    [
                        PlanTerms(per_query=30, trial=1, acceptance_hours=24, per_search=7),
                        PlanTerms(monthly=100, included=3, overage=45, acceptance_hours=48),
                    ]
                ):
                    asset = create_asset(
                        session,
                        owner=owner,
                        data=AssetCreate(slug=f"m{run}-{n}", title="T"),
                        embedder=embedder,
                    )
                    billing.set_plan(session, asset_id=asset.id, terms=terms)
                    self.assets.append(asset.id)

        # Money in and out through the door

        @initialize(first=AMOUNTS, second=AMOUNTS)
        def opening_credits(self, first: int, second: int) -> None:
            for client, amount in enumerate((first, second)):
                self.grant(client, amount)

        @rule(client=st.integers(0, 1), amount=AMOUNTS)
        def grant(self, client: int, amount: int) -> None:
            with session_scope(self.engine) as session:
                billing.grant_credits(
                    session,
                    account_id=self.clients[client],
                    amount=amount,
                    currency="usd",
                    key=f"grant:{next(_run)}",
                )

        @rule(client=st.integers(0, 1), amount=AMOUNTS, replay=st.booleans())
        def buy_with_stripe(self, client: int, amount: int, replay: bool) -> None:
            pi = f"pi_{next(_run)}"
            meta = {"purpose": "credits", "account_id": self.clients[client]}
            completed = event(
                "checkout.session.completed",
                checkout_session(metadata=meta, amount=amount, payment_intent=pi),
            )
            for _ in range(2 if replay else 1):
                with session_scope(self.engine) as session:
                    webhooks.receive(session, event=completed)
            self.purchases.append((pi, self.clients[client], amount, 0))

        @rule(data=st.data())
        def stripe_refund(self, data: st.DataObject) -> None:
            if not self.purchases:
                return
            i = data.draw(st.integers(0, len(self.purchases) - 1))
            pi, client, amount, refunded = self.purchases[i]
            if refunded == amount:
                return
            total = data.draw(st.integers(refunded + 1, amount))
            meta = {"purpose": "credits", "account_id": client}
            refund = event(
                "charge.refunded",
                stripe_charge(
                    metadata=meta,
                    amount=amount,
                    amount_refunded=total,
                    payment_intent=pi,
                    charge_id=f"ch_{pi}",
                ),
            )
            with session_scope(self.engine) as session:
                webhooks.receive(session, event=refund)
            self.purchases[i] = (pi, client, amount, total)

        # Asking and deciding

        @rule(client=st.integers(0, 1), asset=st.integers(0, 1))
        def ask(self, client: int, asset: int) -> None:
            account_id, asset_id = self.clients[client], self.assets[asset]
            try:
                with session_scope(self.engine) as session:
                    billing.lock_wallet(session, account_id)
                    price = billing.quote(
                        session, account_id=account_id, asset_id=asset_id, now=self.now
                    )
                    consultation = Consultation(
                        asset_id=asset_id,
                        account_id=account_id,
                        question="q",
                        answer="a",
                        confidence=1.0,
                        status="final",
                        model="extractive",
                        prompt_tokens=1,
                        completion_tokens=1,
                        latency_ms=1,
                    )
                    session.add(consultation)
                    session.flush()
                    charge = billing.hold(
                        session,
                        price=price,
                        account_id=account_id,
                        asset_id=asset_id,
                        expert_id=self.expert,
                        consultation_id=consultation.id,
                        now=self.now,
                    )
                    self.charges.append(charge.id)
            except (PaymentRequired, SubscriptionRequired):
                pass

        # Asking is what clients do most: a second rule doubles its weight.
        @rule(client=st.integers(0, 1), asset=st.integers(0, 1))
        def ask_again(self, client: int, asset: int) -> None:
            self.ask(client, asset)

        @rule(client=st.integers(0, 1), key=st.sampled_from(["k1", "k2", None]))
        def search(self, client: int, key: str | None) -> None:
            """A priced search of the first asset, paid at once; a key seen before pays nothing."""
            try:
                with session_scope(self.engine) as session:
                    billing.charge_search(
                        session,
                        account_id=self.clients[client],
                        asset_id=self.assets[0],
                        expert_id=self.expert,
                        name="m",
                        fee_bps=FEE_BPS,
                        now=self.now,
                        idempotency_key=key,
                        fingerprint="the same search",
                    )
            except PaymentRequired:
                pass

        @rule(client=st.integers(0, 1))
        def subscribe(self, client: int) -> None:
            try:
                with session_scope(self.engine) as session:
                    billing.subscribe_with_credits(
                        session,
                        account_id=self.clients[client],
                        asset_id=self.assets[1],
                        expert_id=self.expert,
                        now=self.now,
                    )
            except (PaymentRequired, AlreadySubscribed):
                pass

        @rule(data=st.data(), action=st.sampled_from(["accept", "dispute", "refund"]))
        def decide(self, data: st.DataObject, action: str) -> None:
            if not self.charges:
                return
            charge_id = data.draw(st.sampled_from(self.charges))
            with session_scope(self.engine) as session:
                charge = billing.get_charge(session, charge_id)
                before = charge.status
            allowed = {
                "accept": (ChargeStatus.held, ChargeStatus.disputed),
                "dispute": (ChargeStatus.held,),
                "refund": (ChargeStatus.held, ChargeStatus.disputed),
            }[action]
            try:
                with session_scope(self.engine) as session:
                    charge = billing.get_charge(session, charge_id)
                    if action == "accept":
                        billing.accept(
                            session,
                            charge,
                            account_id=charge.account_id,
                            fee_bps=FEE_BPS,
                            now=self.now,
                        )
                    elif action == "dispute":
                        billing.dispute(session, charge, account_id=charge.account_id)
                    else:
                        billing.refund(session, charge, now=self.now)
            except ChargeSettled:
                assert before not in allowed, (action, before)
                return
            assert before in allowed, (action, before)

        @rule(hours=st.integers(1, 24 * 40))
        def time_passes(self, hours: int) -> None:
            self.now += timedelta(hours=hours)
            with session_scope(self.engine) as session:
                billing.release_due(session, fee_bps=FEE_BPS, now=self.now)
                billing.settle_periods(session, fee_bps=FEE_BPS, now=self.now)

        @rule(outcome=st.sampled_from(["paid", "failed", "pending"]))
        def payout(self, outcome: str) -> None:
            with session_scope(self.engine) as session:
                payouts.start_payouts(session, minimum=1, now=self.now, expert_id=self.expert)
                for p in payouts.pending_payouts(session):
                    if p.expert_id != self.expert:
                        continue
                    if outcome == "paid":
                        payouts.complete_payout(session, p, transfer_id=f"tr_{p.id}", now=self.now)
                    elif outcome == "failed":
                        payouts.fail_payout(session, p, reason="declined", now=self.now)

        # After every step

        def teardown(self) -> None:
            self.engine.dispose()

        @invariant()
        def every_transaction_balances(self) -> None:
            with Session(self.engine) as session:
                assert ledger.unbalanced_transactions(session) == []

        @invariant()
        def nothing_that_must_stay_positive_is_negative(self) -> None:
            with Session(self.engine) as session:
                negative = {
                    name: amount
                    for (name, _), amount in ledger.balances(session).items()
                    if amount < 0 and name not in ledger.SOURCES
                }
            assert negative == {}

        @invariant()
        def all_money_is_accounted_for(self) -> None:
            with Session(self.engine) as session:
                g = _ledger_groups(session)
            came_in = -(g.get(ledger.CASH, 0) + g.get(ledger.GRANTS, 0) + g.get(ledger.LOSSES, 0))
            held = (
                g.get("client", 0)  # credits
                + g.get("subscription", 0)
                + g.get("escrow", 0)
                + g.get("earnings:available", 0)
                + g.get("earnings:payout_pending", 0)
                + g.get(ledger.REVENUE, 0)
                + g.get("earnings:paid_out", 0)
                + g.get(ledger.REFUNDS, 0)
            )
            assert held == came_in

        @invariant()
        def escrow_holds_exactly_the_unsettled_charges(self) -> None:
            with Session(self.engine) as session:
                for charge_id in self.charges:
                    charge = session.get(Charge, charge_id)
                    assert charge is not None
                    in_escrow = ledger.balance(session, ledger.escrow(charge_id), "usd")
                    open_ = charge.status in (ChargeStatus.held, ChargeStatus.disputed)
                    assert in_escrow == (charge.amount if open_ else 0), charge.status

    return Money


def test_ledger_stays_exact_under_random_money_movements(
    sqlite_template: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    run_state_machine_as_test(
        make_machine(sqlite_template, tmp_path, embedder),
        settings=settings(
            # 3,000 steps, each checked by every invariant: a tenth of the suite's CPU time.
            max_examples=60,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
