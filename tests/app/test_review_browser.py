"""A real browser: the expert opens the review queue, corrects a low-confidence answer, and the
client's consultation then carries the correction."""

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from sqlmodel import Session

from app import reviewing
from app.runtime import Runtime
from billing import service as billing
from core.db import session_scope
from ingestion.models import IngestionJob
from tests.app.test_browser import CHROMIUM, FLAGS
from tests.factories import HANDBOOK, create_actor, create_test_asset, ingest_path
from tests.servers import wait_for

QUESTION = "How long does a refund take?"
CORRECTION = "A refund takes 14 days from the day the store receives the returned item."


def _job_done(runtime: Runtime, job_id: str) -> bool:
    with Session(runtime.engine) as session:
        job = session.get(IngestionJob, job_id)
        return job is not None and job.status in ("succeeded", "failed")


@pytest.mark.slow
def test_expert_corrects_an_answer_from_the_queue(live_server: tuple[str, Runtime]) -> None:
    base, runtime = live_server
    expert = create_actor(runtime, role="expert", password="browser-pass")
    asset = create_test_asset(runtime, owner=expert.account, slug="garden")
    job = ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    wait_for(lambda: _job_done(runtime, job.id), timeout=120)
    client = create_actor(runtime, role="client")
    with session_scope(runtime.engine) as session:
        # Every answer below 0.99 confidence waits for the expert.
        reviewing.set_review_settings(
            session, account=expert.account, slug="garden", review_threshold=0.99
        )
        billing.grant_credits(
            session, account_id=client.account.id, amount=100, currency="usd", key="k"
        )

    with httpx.Client(base_url=base, headers=client.headers, timeout=60) as api:
        plan = api.put("/v1/assets/garden/plan", json={"per_query": 25}, headers=expert.headers)
        assert plan.status_code == 200, plan.text
        asked = api.post("/v1/assets/garden/ask", json={"question": QUESTION})
        assert asked.status_code == 200, asked.text
        assert asked.json()["status"] == "pending_review"
        consultation_id = asked.json()["consultation_id"]

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.goto(f"{base}/review")
            expect(page).to_have_url(f"{base}/login?next=/review")
            page.get_by_label("E-mail").fill(expert.account.email)
            page.get_by_label("Password").fill("browser-pass")
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{base}/review")

            queue = page.locator("#queue")
            expect(queue).to_contain_text("Low confidence")
            expect(queue).to_contain_text("0.25 USD")
            queue.get_by_role("link", name=QUESTION).click()

            expect(page.locator("#review-state")).to_contain_text("Open")
            expect(page.locator(".citation").first.locator(".locator")).to_have_text(
                "policies.md:5-8"
            )
            answer = page.get_by_label("Your answer")
            expect(answer).not_to_have_value("")  # prefilled with the answer given
            answer.fill(CORRECTION)
            page.get_by_role("button", name="Correct").click()

            expect(page.locator("#review-state")).to_contain_text("Corrected")
            expect(page.get_by_role("status")).to_contain_text("the client now sees your answer")
            expect(page.locator(".answer.corrected")).to_have_text(CORRECTION)
            page.get_by_role("link", name="Review queue", exact=True).first.click()
            expect(page.locator("#queue")).to_have_count(0)  # nothing left open
            page.get_by_role("link", name="Corrected").click()
            expect(page.locator("#queue")).to_contain_text(QUESTION)
            browser.close()

        seen = api.get(f"/v1/consultations/{consultation_id}")
        assert seen.status_code == 200, seen.text
        assert (seen.json()["answer"], seen.json()["status"]) == (CORRECTION, "corrected")
        assert seen.json()["charge"]["status"] == "released"
