"""``vouch_client.AsyncVouch``: the same requests as ``Vouch``, awaited, against the demo."""

import pytest
from vouch_client import AskDelta, AskPublic, AsyncVouch, NotFound, PermissionDenied

from tests.client.conftest import PRICE, QUESTION, SEARCH_PRICE, SLUG, Demo, Proxy


async def test_reads_asks_and_streams_charged_once_each(served: Demo) -> None:
    async with served.async_vouch() as vouch:
        assert [a.slug for a in await vouch.assets()] == [SLUG]
        plan = await vouch.plan(SLUG)
        assert plan is not None
        assert plan.per_query == PRICE
        assert (await vouch.price(SLUG)).pays_with == "credits"
        answer = await vouch.ask(SLUG, QUESTION)
        assert answer.citations[0].locator["path"] == "api.md"
        assert answer.charge is not None
        assert (answer.charge.amount, answer.charge.status) == (PRICE, "held")
        events = [e async for e in vouch.ask_stream(SLUG, QUESTION)]
        *deltas, done = events
        assert isinstance(done, AskPublic)
        assert "".join(d.text for d in deltas if isinstance(d, AskDelta)) == done.answer
        assert await vouch.credits() == 1000 - 2 * PRICE == served.credits()
        flagged = await vouch.flag(done.consultation_id, note="Too long.")
        assert flagged.status == "open"
        accepted = await vouch.accept(answer.consultation_id)
        assert accepted.status == "released"
    assert len(served.charges()) == 2


async def test_search_for_the_owner_and_refusals(served: Demo) -> None:
    async with served.async_vouch(served.expert_key) as expert:
        results = await expert.search(SLUG, QUESTION, k=2)
    assert [r.rank for r in results] == [1, 2]
    assert results[0].locator["path"] == "api.md"
    served.price_searches(None)
    async with served.async_vouch() as vouch:
        with pytest.raises(PermissionDenied):
            await vouch.search(SLUG, QUESTION)
        with pytest.raises(NotFound) as refused:
            await vouch.ask("no-such-asset", QUESTION)
    assert refused.value.message == "no asset 'no-such-asset'"
    assert served.charges() == []
    served.price_searches(SEARCH_PRICE)
    async with served.async_vouch() as vouch:
        results = await vouch.search(SLUG, QUESTION, k=2)
    assert [r.rank for r in results] == [1, 2]
    assert served.credits() == 1000 - SEARCH_PRICE


async def test_a_lost_answer_is_asked_again_and_charged_once(served: Demo, proxy: Proxy) -> None:
    async with AsyncVouch(served.client_key, base_url=proxy.url, max_retry_wait=0.1) as vouch:
        answer = await vouch.ask(SLUG, QUESTION)
    assert len(proxy.asks) == 2
    assert proxy.asks[0] == proxy.asks[1]
    assert answer.charge is not None
    assert [c.id for c in served.charges()] == [answer.charge.id]
    assert served.credits() == 1000 - PRICE
