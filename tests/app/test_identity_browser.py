"""A real browser (Debian's Chromium, driven by Playwright) signs up, and the verification link
mailed to a local SMTP server verifies the account."""

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from app.runtime import Runtime
from core.config import MailSettings, Settings
from tests.app.test_browser import CHROMIUM, FLAGS
from tests.servers import SmtpServer, smtp_server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    mail = MailSettings(host=smtp.host, port=smtp.port, starttls=False)
    return settings.model_copy(update={"mail": mail})


@pytest.mark.slow
def test_visitor_signs_up_and_verifies_from_the_mailed_link(
    live_server: tuple[str, Runtime], smtp: SmtpServer
) -> None:
    base, _ = live_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{base}/login")
        page.get_by_role("link", name="Create an account").click()
        expect(page).to_have_url(f"{base}/signup")
        page.get_by_label("Your name").fill("Vera Visitor")
        page.get_by_label("E-mail").fill("vera@example.com")
        page.get_by_label("Password").fill("browser-pass")
        page.get_by_label("ask experts' assets (client)").check()
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(f"{base}/account?sent=1")
        expect(page.locator("#verify-banner")).to_be_visible()
        expect(page.locator("#account-email")).to_contain_text("not verified yet")

        link = urlsplit(smtp.link("vera@example.com", "/verify"))
        page.goto(f"{base}{link.path}?{link.query}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Your e-mail address is verified")
        expect(page.locator("#verify-banner")).to_have_count(0)
        page.get_by_role("link", name="Your account").click()
        expect(page.locator("#account-email")).to_contain_text("verified")
        expect(page.locator("#account-email")).not_to_contain_text("not verified")
        browser.close()
