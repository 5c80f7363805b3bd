"""The two first journeys, in a real browser against a real server, with mail going to a local
SMTP server and card payments to a gateway that stands in for Stripe's servers:

- an expert signs up, confirms the address from the mail, creates an asset that stays out of
  the catalog until it is ingested and priced, and publishes it;
- a visitor finds it in the catalog signed out, signs up, confirms the address, buys credits,
  sees the price and the expert before asking, asks, and flags the (final) answer for review.
"""

import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright
from sqlmodel import Session, select

from app.runtime import Runtime
from billing.gateway import Gateway
from billing.models import Charge
from core.config import MailSettings, Settings
from ingestion.models import IngestionJob
from tests.app.test_browser import CHROMIUM, FLAGS
from tests.factories import HANDBOOK, review_record
from tests.servers import SmtpServer, smtp_server, wait_for
from tests.stripe_fakes import FakeGateway, checkout_session, event, sign, stripe_settings


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def live_gateway(gateway: FakeGateway) -> Gateway:
    return gateway


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    mail = MailSettings(host=smtp.host, port=smtp.port, starttls=False)
    return stripe_settings(settings).model_copy(update={"mail": mail})


def _sign_up(page: Page, base: str, smtp: SmtpServer, *, name: str, email: str, role: str) -> None:
    """Sign up on /signup and open the confirmation link the mail brought."""
    page.goto(f"{base}/signup")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill("journey-pass")
    page.get_by_label(f"({role})").check()
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#verify-banner")).to_be_visible()
    link = urlsplit(smtp.link(email, "/verify"))
    page.goto(f"{base}{link.path}?{link.query}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your e-mail address is verified")


def _expert_publishes(page: Page, base: str, runtime: Runtime, smtp: SmtpServer) -> None:
    _sign_up(page, base, smtp, name="Erin Expert", email="erin@example.com", role="expert")
    page.goto(f"{base}/assets")
    page.get_by_label("Slug", exact=False).fill("garden")
    page.get_by_label("Title", exact=True).fill("Garden store handbook")
    page.get_by_role("button", name="Create asset").click()
    expect(page).to_have_url(f"{base}/assets/garden")
    expect(page.locator("#publish-state")).to_contain_text("Not published")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#publish-error")).to_contain_text("set a price first")

    page.set_input_files("#files", [str(HANDBOOK / "policies.md"), str(HANDBOOK / "delivery.txt")])
    page.get_by_role("button", name="Upload and ingest").click()

    def ingested() -> bool:  # the server's queue consumer runs the job
        with Session(runtime.engine) as session:
            jobs = session.exec(select(IngestionJob)).all()
            return bool(jobs) and all(job.status == "succeeded" for job in jobs)

    wait_for(ingested)
    page.goto(f"{base}/earnings")
    page.locator("#garden-per_query").fill("0.25")
    page.locator("#plan-garden").get_by_role("button", name="Save prices").click()
    expect(page.locator("#plan-garden .current")).to_contain_text("0.25 USD a question")

    page.goto(f"{base}/assets/garden")
    expect(page.locator("#publish-missing")).to_have_count(0)
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#publish-state")).to_contain_text("Published")


def _stripe_confirms(base: str, gateway: FakeGateway) -> None:
    """What Stripe's servers do once the card is paid: post checkout.session.completed."""
    ((session_id, checkout),) = gateway.checkouts.items()
    completed = event(
        "checkout.session.completed",
        checkout_session(
            session_id=session_id, metadata=checkout["metadata"], amount=checkout["amount"]
        ),
    )
    payload = json.dumps(completed).encode()
    response = httpx.post(
        f"{base}/v1/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.slow
def test_an_expert_publishes_and_a_visitor_becomes_a_paying_client(
    live_server: tuple[str, Runtime], smtp: SmtpServer, gateway: FakeGateway
) -> None:
    base, runtime = live_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        _expert_publishes(browser.new_context().new_page(), base, runtime, smtp)
        # Months of answers that stood under the expert's review: the asset answers finally.
        review_record(runtime, "garden", stood=200)

        page = browser.new_context().new_page()
        # Stripe's hosted checkout page is a server we cannot reach here.
        page.route(
            "https://checkout.stripe.test/**",
            lambda route: Route.fulfill(route, status=200, body="Stripe Checkout"),
        )
        page.goto(f"{base}/catalog")
        page.locator('[data-slug="garden"] a').first.click()
        expect(page).to_have_url(f"{base}/catalog/assets/garden")
        expect(page.locator("#signup-link")).to_be_visible()

        _sign_up(page, base, smtp, name="Vera Visitor", email="vera@example.com", role="client")
        page.goto(f"{base}/billing")
        page.get_by_label("Amount").fill("20")
        page.get_by_role("button", name="Buy credits").click()
        expect(page).to_have_url(re.compile(r"^https://checkout\.stripe\.test/c/pay/"))
        _stripe_confirms(base, gateway)
        page.goto(f"{base}/billing?checkout=done")
        expect(page.locator("body")).to_contain_text("20.00 USD")

        page.goto(f"{base}/assets/garden")
        expect(page.locator("#price-amount")).to_have_text("0.25 USD")
        expect(page.locator("#price-expert")).to_have_text("Erin Expert")
        expect(page.locator("#price-figures")).to_contain_text("Your credits: 20.00 USD")
        page.get_by_label("Your question").fill("How long does a refund take?")
        page.get_by_role("button", name="Ask").click()
        expect(page.locator(".answer")).to_contain_text("14 days")
        charge = page.locator(".charge")
        expect(charge).to_contain_text("Charged 0.25 USD")
        charge.get_by_label("Note for the expert (optional)").fill("Is it calendar days?")
        charge.get_by_role("button", name="Flag for review").click()
        expect(page.locator(".charge .review-status")).to_have_text("flagged for review")
        browser.close()

    with Session(runtime.engine) as session:
        (charge_row,) = session.exec(select(Charge)).all()
    assert (charge_row.amount, charge_row.status) == (25, "disputed")
