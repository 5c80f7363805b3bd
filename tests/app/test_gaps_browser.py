"""A real browser: the expert opens the content-gaps page of an asset whose clients asked
questions it abstained on or held for review, sees the groups and the chart, then the charts
of the earnings page."""

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from app.runtime import Runtime
from billing import service as billing
from core.db import session_scope
from tests.app.test_browser import CHROMIUM, FLAGS
from tests.app.test_gaps import REFUNDS, SHIPPING, UNRELATED
from tests.factories import HANDBOOK, create_actor, create_test_asset, ingest_path
from tests.servers import wait_for

PASSWORD = "browser-pass"


@pytest.mark.slow
def test_expert_sees_gap_clusters_and_charts(live_server: tuple[str, Runtime]) -> None:
    base, runtime = live_server
    expert = create_actor(runtime, role="expert", password=PASSWORD)
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    client = create_actor(runtime, role="client")
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=client.account.id, amount=1_000, currency="usd", key="k"
        )

    with httpx.Client(base_url=base, headers=client.headers, timeout=60) as api:
        wait_for(
            lambda: (
                api.get(f"/v1/jobs/{job.id}", headers=expert.headers).json()["status"]
                in ("succeeded", "failed")
            ),
            timeout=120,
        )
        plan = api.put("/v1/assets/garden/plan", json={"per_query": 25}, headers=expert.headers)
        assert plan.status_code == 200, plan.text
        statuses = []
        for question in (*REFUNDS, *SHIPPING, UNRELATED, "What is the capital of Mongolia?"):
            asked = api.post("/v1/assets/garden/ask", json={"question": question})
            assert asked.status_code == 200, asked.text
            statuses.append(asked.json()["status"])
    abstained = statuses.count("abstained")
    assert abstained >= 2  # football and Mongolia: the handbook says nothing of either

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{base}/assets/garden")
        page.get_by_label("E-mail").fill(expert.account.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/assets/garden")
        page.get_by_role("link", name="Content gaps").click()
        expect(page).to_have_url(f"{base}/assets/garden/gaps")

        expect(page.locator("#total")).to_have_text(str(len(statuses)))
        expect(page.locator("#total-abstained strong")).to_have_text(str(abstained))
        expect(page.locator("#lost")).to_contain_text(f"{abstained * 25 / 100:.2f} USD")
        chart = page.locator('svg[aria-label^="Gap questions per week by reason"]')
        expect(chart).to_be_visible()
        assert chart.bounding_box()["width"] > 300  # type: ignore[index]
        rows = page.locator("#clusters tr.cluster")
        # Refunds, shipping, and the two unanswerable ones that have nothing in common.
        expect(rows).to_have_count(4)
        expect(rows.nth(0).locator(".size")).to_have_text("4")
        assert rows.nth(0).locator(".cluster-label").inner_text() in REFUNDS
        assert rows.nth(1).locator(".cluster-label").inner_text() in SHIPPING
        expect(rows.nth(1).locator(".size")).to_have_text("3")
        rows.nth(0).locator("summary").click()
        expect(rows.nth(0).locator("ol.examples li")).to_have_count(3)
        expect(rows.nth(0).locator("svg.sparkline")).to_have_attribute(
            "aria-label", "Per week: 0, 0, 0, 4"
        )
        page.get_by_role("link", name="last 12 weeks").click()
        expect(page).to_have_url(f"{base}/assets/garden/gaps?weeks=12")
        expect(page.locator("#clusters tr.cluster")).to_have_count(4)

        page.get_by_role("link", name="Earnings", exact=True).click()
        charts = page.locator("#dashboard-charts svg.chart")
        expect(charts).to_have_count(3)  # loaded into the page by htmx
        expect(
            page.locator('svg[aria-label^="Questions asked of your assets per day"]')
        ).to_be_visible()
        expect(page.locator("#questions-total")).to_have_text(str(len(statuses)))
        browser.close()
