"""A real browser: a client finds an expert by a verified credential on the catalog, opens the
asset page (plans, quality score, credentials, live sample answers), follows "Commission an
engagement" and sends the request."""

import re

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlmodel import Session

from app.runtime import Runtime
from billing import service as billing
from core.clock import utcnow
from core.db import session_scope
from evals.models import EvalRun, GoldenSet
from ingestion.models import IngestionJob
from marketplace.models import Credential, ExpertProfile
from tests.app.test_browser import CHROMIUM, FLAGS
from tests.factories import HANDBOOK, create_actor, create_test_asset, ingest_path
from tests.servers import wait_for

QUESTION = "How long does it take to get a refund?"


def _job_done(runtime: Runtime, job_id: str) -> bool:
    with Session(runtime.engine) as session:
        job = session.get(IngestionJob, job_id)
        return job is not None and job.status in ("succeeded", "failed")


@pytest.mark.slow
def test_client_finds_an_expert_by_credential_and_commissions(
    live_server: tuple[str, Runtime],
) -> None:
    base, runtime = live_server
    alice = create_actor(runtime, role="expert")
    bob = create_actor(runtime, role="expert")
    garden = create_test_asset(runtime, owner=alice.account, slug="garden")
    job = ingest_path(runtime, asset=garden, owner=alice.account, path=HANDBOOK)
    wait_for(lambda: _job_done(runtime, job.id), timeout=120)
    create_test_asset(runtime, owner=bob.account, slug="bob-notes")
    client = create_actor(runtime, role="client", password="browser-pass")
    with session_scope(runtime.engine) as session:
        for who, headline, domain in (
            (alice, "Retail systems in Python", "python"),
            (bob, "Retail lawyer", "gdpr"),
        ):
            session.add(
                ExpertProfile(
                    account_id=who.account.id,
                    headline=headline,
                    domains=[domain],
                    response_hours=24,
                )
            )
            session.add(
                Credential(
                    account_id=who.account.id,
                    kind="commit_authorship",
                    claim=f"Author of the {domain} code",
                    domain=domain,
                    status="verified",
                    method="git_history",
                    figures={
                        "commit_share": 0.9,
                        "remote": f"https://git.example.org/{domain}.git",
                    },
                    verified_at=utcnow(),
                )
            )
        billing.set_plan(session, asset_id=garden.id, terms=billing.PlanTerms(per_query=25))
        # A golden set an admin approved, run by the platform: 23 of 25 answers right.
        golden = GoldenSet(
            asset_id=garden.id,
            name="handbook",
            sha256="0" * 64,
            questions=[{"id": "q1", "question": QUESTION, "unanswerable": False}],
            submitted_by=alice.account.id,
            status="approved",
        )
        session.add(golden)
        session.flush()
        session.add(
            EvalRun(
                asset_id=garden.id,
                golden_name="handbook",
                golden_sha256="0" * 64,
                size=25,
                k=10,
                metrics={"right": {"value": 0.92, "n": 25, "right": 23}},
                questions=[{"question": QUESTION, "unanswerable": False}],
                scope="approved",
                golden_set_id=golden.id,
            )
        )

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{base}/login?next=/catalog")
        page.get_by_label("E-mail").fill(client.account.email)
        page.get_by_label("Password").fill("browser-pass")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/catalog")
        expect(page.locator("#experts .expert")).to_have_count(2)

        page.get_by_label("Verified credential in").fill("python")
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r".*/catalog\?.*verified=python"))
        experts = page.locator("#experts .expert")
        expect(experts).to_have_count(1)
        expect(experts).to_contain_text(alice.account.name)
        expect(experts).to_contain_text("Author of the python code")
        expect(page.locator("#assets .asset")).to_have_count(1)

        page.locator("#assets").get_by_role("link", name="Garden store handbook").click()
        expect(page).to_have_url(f"{base}/catalog/assets/garden")
        expect(page.locator("#plan-per-question")).to_contain_text("0.25 USD")
        expect(page.locator("#score")).to_have_text("0.92")
        expect(page.locator("#credentials")).to_contain_text("commit share: 0.9")
        sample = page.locator("#samples .sample").first
        expect(sample.locator(".question")).to_have_text(QUESTION)
        expect(sample.locator(".answer")).to_contain_text("14 days")
        expect(sample.locator(".citation .locator").first).to_have_text("policies.md:5-8")

        page.get_by_role("link", name="Commission an engagement").click()
        expect(page).to_have_url(f"{base}/engagements/new?expert={alice.account.id}&asset=garden")
        expect(page.locator("#asset")).to_have_value("garden")
        page.locator("#title").fill("Review of our refund rules")
        page.locator("#scope").fill("Check our refund rules against the handbook.")
        page.locator("#deliverable").fill("A written report")
        page.locator("#milestone-title-1").fill("Report")
        page.locator("#milestone-amount-1").fill("300.00")
        page.get_by_role("button", name="Send the request").click()

        expect(page).to_have_url(re.compile(rf"{base}/engagements/eng_\w+\?done=requested"))
        expect(page.locator("h1")).to_have_text("Review of our refund rules")
        state = page.locator("#engagement-state")
        expect(state).to_have_attribute("data-status", "requested")
        expect(state).to_contain_text(alice.account.name)
        expect(state).to_contain_text("300.00 USD")
        expect(state).to_contain_text("/garden")
        browser.close()
