"""An expert's Markdown report as the client and the expert read it: rendered (headings,
lists, tables, code) and sanitised (no scripts, event handlers, javascript: links, raw HTML or
images), on the engagement page and in the delivery form's preview."""

import re

import httpx
import pytest

from app.runtime import Runtime
from app.web.markdown import render_markdown
from billing import service as billing
from core.db import session_scope
from tests.factories import PASSWORD, Actor, create_actor, sign_in

# SQLite only: Markdown rendered and sanitised; the engagement's writes are tested on both in
# test_engagements.py.

REPORT = """# Design review

The order service is **sound**, with *two* caveats:

1. Retries are not idempotent.
2. The queue has no dead-letter topic.

| risk | severity |
| --- | --- |
| double charge | high |

```python
def pay(order):
    return charge(order) < 2
```

> Quoted from the brief.

See [the runbook](https://example.com/runbook) or [mail me](mailto:ada@example.com).

---

<script>alert("report")</script>
<img src="x" onerror="alert('img')">
<div onclick="steal()">raw block</div>

[click](javascript:alert('link')) [data](data:text/html;base64,PHNjcmlwdD4=)
![a chart](https://tracker.example/pixel.png)
"""


class TestRenderMarkdown:
    def test_structure_renders(self) -> None:
        html = str(render_markdown(REPORT))
        assert "<h1>Design review</h1>" in html
        assert "<strong>sound</strong>" in html
        assert "<em>two</em>" in html
        assert "<ol>\n<li>Retries are not idempotent.</li>" in html
        assert "<th>risk</th>" in html
        assert "<td>double charge</td>" in html
        assert "<pre><code>def pay(order):\n    return charge(order) &lt; 2\n</code></pre>" in html
        assert "<blockquote>" in html
        assert "<hr>" in html

    def test_links_keep_only_safe_schemes_with_rel(self) -> None:
        html = str(render_markdown(REPORT))
        assert '<a href="https://example.com/runbook" rel="nofollow noopener">' in html
        assert '<a href="mailto:ada@example.com" rel="nofollow noopener">' in html
        assert 'href="javascript' not in html
        assert 'href="data:' not in html

    def test_raw_html_scripts_and_images_never_become_tags(self) -> None:
        html = str(render_markdown(REPORT))
        assert "<script" not in html
        assert "&lt;script&gt;" in html  # shown as the text the expert typed
        assert "<img" not in html
        assert "<div" not in html
        assert re.search(r"<[^>]+\son\w+=", html) is None  # no event handler on any tag
        assert "a chart" in html  # an image's alt text stands in for it
        assert "tracker.example" not in html  # and nothing is fetched from elsewhere

    def test_html_in_a_link_title_or_href_is_escaped(self) -> None:
        html = str(render_markdown('[x](https://e.com/"onmouseover="alert(1) "t\\"itle")'))
        assert re.search(r"<a [^>]*\sonmouseover=", html) is None  # no attribute of its own
        assert 'title="t&quot;itle"' in html

    def test_relative_links_are_not_kept(self) -> None:
        html = str(render_markdown("[home](/assets/garden) [up](../x)"))
        assert "href" not in html
        assert "home" in html

    def test_empty_text_renders_nothing(self) -> None:
        assert str(render_markdown("")) == ""
        assert str(render_markdown(None)) == ""


@pytest.fixture
def client_user(runtime: Runtime) -> Actor:
    actor = create_actor(runtime, role="client", password=PASSWORD)
    with session_scope(runtime.engine) as session:
        billing.grant_credits(
            session, account_id=actor.account.id, amount=100_000, currency="usd", key="g"
        )
    return actor


async def funded_engagement(
    client: httpx.AsyncClient, client_user: Actor, expert: Actor
) -> tuple[str, str]:
    """An engagement agreed and its one milestone funded, through the API: (id, milestone)."""
    response = await client.post(
        "/v1/engagements",
        headers=client_user.headers,
        json={
            "expert_id": expert.account.id,
            "title": "Architecture review",
            "scope": "Review the **order service**:\n\n- retries\n- queues",
            "deliverable": "A written report",
            "milestones": [{"title": "Draft report", "amount": 30_000}],
        },
    )
    assert response.status_code == 201, response.text
    eng = response.json()
    milestone = eng["milestones"][0]["id"]
    accepted = await client.post(f"/v1/engagements/{eng['id']}/accept", headers=expert.headers)
    assert accepted.status_code == 200, accepted.text
    funded = await client.post(
        f"/v1/engagements/{eng['id']}/milestones/{milestone}/fund",
        headers=client_user.headers,
        json={"pay": "credits"},
    )
    assert funded.status_code == 200, funded.text
    return eng["id"], milestone


def report_block(page: str) -> str:
    """The milestone's section from its report on."""
    found = re.search(
        r'<section class="card milestone".*?<div class="markdown report">(.*?)</section>',
        page,
        re.S,
    )
    assert found is not None, page
    return found.group(1)


async def test_the_report_page_shows_the_rendered_sanitised_report_to_both_parties(
    client: httpx.AsyncClient, client_user: Actor, expert: Actor
) -> None:
    eng, milestone = await funded_engagement(client, client_user, expert)
    delivered = await client.post(
        f"/v1/engagements/{eng}/milestones/{milestone}/deliver",
        headers=expert.headers,
        json={"report": REPORT},
    )
    assert delivered.status_code == 200, delivered.text

    for actor in (client_user, expert):
        await sign_in(client, actor)
        page = (await client.get(f"/engagements/{eng}")).text
        report = report_block(page)
        assert "<h1>Design review</h1>" in report
        assert "<th>risk</th>" in report
        assert '<a href="https://example.com/runbook" rel="nofollow noopener">' in report
        assert "<script" not in report
        assert "<img" not in report
        assert 'href="javascript' not in report
        assert "# Design review" not in report  # no longer raw Markdown
        # The scope is Markdown too.
        assert "<strong>order service</strong>" in page
    assert "<script>alert" not in page


async def test_the_delivery_form_previews_the_report_as_the_client_will_see_it(
    client: httpx.AsyncClient, client_user: Actor, expert: Actor
) -> None:
    eng, milestone = await funded_engagement(client, client_user, expert)
    await sign_in(client, expert)
    page = (await client.get(f"/engagements/{eng}")).text
    assert f'hx-post="/engagements/{eng}/milestones/{milestone}/preview"' in page
    response = await client.post(
        f"/engagements/{eng}/milestones/{milestone}/preview", data={"report": REPORT}
    )
    assert response.status_code == 200
    assert "<h1>Design review</h1>" in response.text
    assert "<script" not in response.text
    assert "<img" not in response.text

    # The client cannot deliver, so cannot preview a delivery either; a stranger sees nothing.
    await sign_in(client, client_user)
    refused = await client.post(
        f"/engagements/{eng}/milestones/{milestone}/preview", data={"report": "# x"}
    )
    assert refused.status_code == 403
    assert "<h1>" not in refused.text
