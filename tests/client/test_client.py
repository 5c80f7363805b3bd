"""``vouch_client.Vouch`` against a running server on the demo asset: what it reads, what an
ask costs (plain, streamed, retried), settling an answer, and each refusal as its exception."""

import time
import uuid

import pytest
from vouch_client import (
    AskDelta,
    AskPublic,
    AuthenticationError,
    Conflict,
    ConnectionError,
    NotFound,
    PaymentRequired,
    PermissionDenied,
    PlanIn,
    RateLimited,
    ValidationError,
    Vouch,
    VouchError,
)

from tests.client.conftest import PRICE, QUESTION, SEARCH_PRICE, SLUG, Demo, Proxy
from tests.factories import create_actor, create_test_asset


class TestReading:
    def test_assets_plan_price_and_credits(self, served: Demo) -> None:
        vouch = served.vouch()
        assert [a.slug for a in vouch.assets()] == [SLUG]
        assert vouch.asset(SLUG).title == "The Vouch handbook"
        plan = vouch.plan(SLUG)
        assert plan is not None
        assert (plan.asset, plan.per_query, plan.monthly, plan.currency) == (SLUG, 25, 500, "usd")
        price = vouch.price(SLUG)
        assert (price.can_ask, price.pays_with, price.amount) == (True, "credits", PRICE)
        assert vouch.credits() == 1000 == served.credits()
        assert vouch.balance().charges == []

    def test_the_price_needs_no_key(self, served: Demo) -> None:
        price = served.vouch(key="").price(SLUG)
        assert price.plan.per_query == PRICE
        assert price.credits is None

    def test_search_is_the_owners_and_free(self, served: Demo) -> None:
        results = served.vouch(served.expert_key).search(SLUG, QUESTION, k=3)
        assert len(results) == 3
        assert results[0].locator["path"] == "api.md"
        assert results[0].score >= results[1].score >= results[2].score
        assert served.charges() == []
        filtered = served.vouch(served.expert_key).search(SLUG, QUESTION, path_prefix="cli.md")
        assert {r.locator["path"] for r in filtered} == {"cli.md"}

    def test_a_client_searches_where_the_plan_sells_passages(self, served: Demo) -> None:
        vouch = served.vouch()
        results = vouch.search(SLUG, QUESTION, k=3)
        assert results[0].locator["path"] == "api.md"
        assert served.credits() == 1000 - SEARCH_PRICE
        # The same key again: the same search, not charged again; with another query, 409.
        vouch.search(SLUG, QUESTION, k=3, idempotency_key="search-1")
        again = vouch.search(SLUG, QUESTION, k=3, idempotency_key="search-1")
        assert [r.text for r in again] == [r.text for r in results]
        assert served.credits() == 1000 - 2 * SEARCH_PRICE
        with pytest.raises(Conflict) as reused:
            vouch.search(SLUG, "What does a question cost?", idempotency_key="search-1")
        assert reused.value.error == "IdempotencyKeyReused"
        assert len(served.search_charges()) == 2
        assert served.charges() == []  # no ask charge, no escrow

    @pytest.mark.parametrize("proxy_failure", ["drop", "unavailable"], indirect=True)
    def test_a_lost_search_is_sent_again_with_its_key_and_charged_once(
        self, served: Demo, proxy: Proxy
    ) -> None:
        with Vouch(served.client_key, base_url=proxy.url, max_retry_wait=0.1) as vouch:
            results = vouch.search(SLUG, QUESTION, k=2)
        assert len(results) == 2
        assert len(proxy.asks) == 2  # searched and charged, the answer lost, searched again
        assert proxy.asks[0] == proxy.asks[1] is not None
        (charge,) = served.search_charges()
        assert (charge.amount, charge.idempotency_key) == (SEARCH_PRICE, proxy.asks[0])
        assert served.credits() == 1000 - SEARCH_PRICE


class TestAsk:
    def test_answer_cites_and_its_price_is_held_from_credits(self, served: Demo) -> None:
        vouch = served.vouch()
        answer = vouch.ask(SLUG, QUESTION)
        assert "SHA-256" in answer.answer
        assert answer.citations
        assert answer.citations[0].locator["path"] == "api.md"
        assert answer.citations[0].locator["lines"][0] >= 1
        assert answer.status == "final"
        assert answer.charge is not None
        charge = answer.charge
        assert (charge.amount, charge.currency, charge.source, charge.status) == (
            PRICE,
            "usd",
            "credits",
            "held",
        )
        assert vouch.credits() == 1000 - PRICE == served.credits()
        (stored,) = served.charges()
        assert (stored.id, stored.amount, stored.status) == (charge.id, PRICE, "held")
        assert vouch.consultation(answer.consultation_id) == answer

    def test_streamed_answer_is_the_same_text_charged_once(self, served: Demo) -> None:
        events = list(served.vouch().ask_stream(SLUG, QUESTION))
        *deltas, done = events
        assert deltas
        assert all(isinstance(d, AskDelta) for d in deltas)
        assert isinstance(done, AskPublic)
        assert "".join(d.text for d in deltas if isinstance(d, AskDelta)) == done.answer
        assert done.citations[0].locator["path"] == "api.md"
        assert done.charge is not None
        assert (done.charge.amount, done.charge.status) == (PRICE, "held")
        assert len(served.charges()) == 1
        assert served.credits() == 1000 - PRICE

    def test_the_same_idempotency_key_is_answered_and_charged_once(self, served: Demo) -> None:
        vouch = served.vouch()
        key = uuid.uuid4().hex
        first = vouch.ask(SLUG, QUESTION, idempotency_key=key)
        again = vouch.ask(SLUG, QUESTION, idempotency_key=key)
        streamed = list(vouch.ask_stream(SLUG, QUESTION, idempotency_key=key))
        assert again == first
        assert streamed == [first]  # replayed: the answer at once, no new stream
        assert len(served.charges()) == 1
        assert served.credits() == 1000 - PRICE
        with pytest.raises(Conflict) as reused:
            vouch.ask(SLUG, "What does a question cost?", idempotency_key=key)
        assert reused.value.status == 409
        assert reused.value.error == "IdempotencyKeyReused"

    @pytest.mark.parametrize("proxy_failure", ["drop", "unavailable"], indirect=True)
    def test_a_lost_answer_is_asked_again_with_its_key_and_charged_once(
        self, served: Demo, proxy: Proxy
    ) -> None:
        vouch = Vouch(served.client_key, base_url=proxy.url, max_retry_wait=0.1)
        with vouch:
            answer = vouch.ask(SLUG, QUESTION)
        assert len(proxy.asks) == 2  # answered, the answer lost, asked again
        assert proxy.asks[0] == proxy.asks[1] is not None
        (charge,) = served.charges()
        assert answer.charge is not None
        assert (charge.id, charge.idempotency_key) == (answer.charge.id, proxy.asks[0])
        assert served.credits() == 1000 - PRICE

    def test_without_retries_a_lost_answer_is_a_connection_error(
        self, served: Demo, proxy: Proxy
    ) -> None:
        with Vouch(served.client_key, base_url=proxy.url, max_retries=0) as vouch:
            with pytest.raises(ConnectionError) as lost:
                vouch.ask(SLUG, QUESTION, idempotency_key="lost-1")
            assert lost.value.status is None
            # Asked again by hand with the same key: the first answer, still charged once.
            answer = vouch.ask(SLUG, QUESTION, idempotency_key="lost-1")
        assert answer.charge is not None
        assert [c.id for c in served.charges()] == [answer.charge.id]


class TestSettling:
    def test_accept_releases_the_money_to_the_expert(self, served: Demo) -> None:
        vouch = served.vouch()
        answer = vouch.ask(SLUG, QUESTION)
        charge = vouch.accept(answer.consultation_id)
        assert charge.status == "released"
        assert (charge.amount, charge.id) == (PRICE, answer.charge.id if answer.charge else None)
        assert served.credits() == 1000 - PRICE
        with pytest.raises(Conflict):
            vouch.accept(answer.consultation_id)

    def test_flag_sends_the_answer_to_review_and_keeps_the_money_held(self, served: Demo) -> None:
        vouch = served.vouch()
        answer = vouch.ask(SLUG, QUESTION)
        flagged = vouch.flag(answer.consultation_id, note="This misses key rotation.")
        assert flagged.status == "open"
        assert flagged.review_item
        now = vouch.consultation(answer.consultation_id)
        assert now.charge is not None
        assert now.charge.status == "disputed"
        assert served.credits() == 1000 - PRICE  # not refunded until the expert decides
        with pytest.raises(Conflict):
            vouch.flag(answer.consultation_id)


class TestRefusals:
    def test_no_credits_is_payment_required_and_charges_nothing(self, served: Demo) -> None:
        # The expert ends the trial questions, so that a client without credits cannot ask.
        expert = served.vouch(served.expert_key)
        plan = expert.set_plan(SLUG, PlanIn(per_query=PRICE, monthly=500, included=30, trial=0))
        assert plan.trial == 0
        account_id, key = served.new_client()
        vouch = served.vouch(key)
        assert vouch.price(SLUG).can_ask is False
        with pytest.raises(PaymentRequired) as refused:
            vouch.ask(SLUG, QUESTION)
        assert refused.value.status == 402
        assert refused.value.error == "PaymentRequired"
        assert "credit" in refused.value.message
        assert refused.value.detail == {
            "error": "PaymentRequired",
            "detail": refused.value.message,
        }
        assert served.charges(account_id) == []
        assert vouch.credits() == 0

    def test_an_asset_the_key_may_not_use_is_not_found(self, served: Demo) -> None:
        other = create_actor(served.runtime, role="expert")
        create_test_asset(served.runtime, owner=other.account, slug="secret", published=False)
        vouch = served.vouch()
        with pytest.raises(NotFound) as refused:
            vouch.ask("secret", QUESTION)
        assert (refused.value.status, refused.value.message) == (404, "no asset 'secret'")
        with pytest.raises(NotFound):
            vouch.consultation("con_nothing")
        assert served.charges() == []

    def test_a_client_may_not_search_passages_the_plan_does_not_sell(self, served: Demo) -> None:
        served.price_searches(None)
        with pytest.raises(PermissionDenied) as refused:
            served.vouch().search(SLUG, QUESTION)
        assert refused.value.status == 403
        assert refused.value.error == "PassagesNotSold"
        assert f"{SLUG} does not sell its passages" in refused.value.message
        assert served.search_charges() == []
        assert served.credits() == 1000

    def test_a_search_without_enough_credits_is_payment_required(self, served: Demo) -> None:
        account_id, key = served.new_client()
        with pytest.raises(PaymentRequired) as refused:
            served.vouch(key).search(SLUG, QUESTION)
        assert refused.value.status == 402
        assert served.search_charges(account_id) == []

    def test_a_wrong_key_is_an_authentication_error(self, served: Demo) -> None:
        with pytest.raises(AuthenticationError) as refused:
            served.vouch("vch_notakey_0000").credits()
        assert refused.value.status == 401

    def test_invalid_input_is_a_validation_error_with_the_servers_reason(
        self, served: Demo
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            served.vouch().ask(SLUG, "   ")
        assert refused.value.status == 422
        assert "question" in refused.value.message
        assert isinstance(refused.value, VouchError)

    @pytest.mark.parametrize("asks_per_minute", [1])
    def test_too_many_questions_is_rate_limited_with_retry_after(self, served: Demo) -> None:
        vouch = served.vouch()  # retries on, but not for longer than max_retry_wait
        vouch.ask(SLUG, QUESTION)
        started = time.monotonic()
        with pytest.raises(RateLimited) as refused:
            vouch.ask(SLUG, "What does a question cost?")
        assert time.monotonic() - started < 5  # the server asks for more than the cap: no wait
        assert refused.value.status == 429
        assert refused.value.retry_after is not None
        assert refused.value.retry_after > 0
        assert "questions" in refused.value.message
        assert len(served.charges()) == 1
