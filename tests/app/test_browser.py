"""A real browser (Debian's Chromium, driven by Playwright) signs in, asks and reads citations."""

import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from app.runtime import Runtime
from tests.factories import HANDBOOK, create_actor, create_test_asset, ingest_path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No background traffic: this machine's network is closed and Chromium would keep trying.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.slow
def test_client_signs_in_asks_and_sees_cited_answer(live_server: tuple[str, Runtime]) -> None:
    base, runtime = live_server
    expert = create_actor(runtime, role="expert")
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    client = create_actor(runtime, role="client", password="browser-pass")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{base}/assets/garden")
        expect(page).to_have_url(f"{base}/login?next=/assets/garden")
        page.get_by_label("E-mail").fill(client.account.email)
        page.get_by_label("Password").fill("browser-pass")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/assets/garden")

        page.get_by_label("Your question").fill("How long does a refund take?")
        page.get_by_role("button", name="Ask").click()
        answer = page.locator(".answer")
        expect(answer).to_contain_text("14 days")
        expect(answer).to_contain_text("[1]")
        first = page.locator(".citation").first
        expect(first.locator(".locator")).to_have_text("policies.md:5-8")
        expect(first).to_contain_text("Store policies > Refunds")
        browser.close()
