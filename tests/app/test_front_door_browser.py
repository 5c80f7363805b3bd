"""In a real browser: an expert's new asset stays out of the catalog until it is priced,
ingested and published from its page; then a visitor who is not signed in finds it."""

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlmodel import Session, select

from app.runtime import Runtime
from assets.models import Asset
from billing import service as billing
from core.db import session_scope
from ingestion.models import IngestionJob
from tests.app.test_browser import CHROMIUM, FLAGS
from tests.factories import HANDBOOK, create_actor, ingest_path
from tests.servers import wait_for


@pytest.mark.slow
def test_expert_publishes_and_a_visitor_finds_it(live_server: tuple[str, Runtime]) -> None:
    base, runtime = live_server
    expert = create_actor(runtime, role="expert", password="browser-pass")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{base}/login")
        page.get_by_label("E-mail").fill(expert.account.email)
        page.get_by_label("Password").fill("browser-pass")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/assets")
        page.get_by_label("Slug", exact=False).fill("garden")
        page.get_by_label("Title", exact=True).fill("Garden store handbook")
        page.get_by_role("button", name="Create asset").click()
        expect(page).to_have_url(f"{base}/assets/garden")
        expect(page.locator("#publish-state")).to_contain_text("Not published")

        visitor = browser.new_context().new_page()
        visitor.goto(f"{base}/catalog")
        expect(visitor.locator('[data-slug="garden"]')).to_have_count(0)

        # Refused while it has no price and nothing ingested; the page says what to do.
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.locator("#publish-error")).to_contain_text("set a price first")

        with Session(runtime.engine) as session:
            asset = session.exec(select(Asset).where(Asset.slug == "garden")).one()
        job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)

        def ingested() -> bool:  # the server's queue consumer runs it
            with Session(runtime.engine) as session:
                found = session.get(IngestionJob, job.id)
                return found is not None and found.status == "succeeded"

        wait_for(ingested)
        with session_scope(runtime.engine) as session:
            billing.set_plan(session, asset_id=asset.id, terms=billing.PlanTerms(per_query=25))

        page.goto(f"{base}/assets/garden")
        expect(page.locator("#publish-missing")).to_have_count(0)
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.locator("#publish-state")).to_contain_text("Published")

        visitor.goto(f"{base}/catalog")
        expect(visitor.locator('[data-slug="garden"]')).to_have_count(1)
        visitor.locator('[data-slug="garden"] a').first.click()
        expect(visitor).to_have_url(f"{base}/catalog/assets/garden")
        expect(visitor.locator("#signup-link")).to_be_visible()
        browser.close()
