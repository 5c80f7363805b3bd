"""Each kind end to end over HTTP: upload, auto-detect, search and ask, and the locators cited."""

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx

from app.runtime import Runtime
from tests.factories import Actor, create_test_asset
from tests.ingestion.test_paper import PAGES, write_pdf

DATA = Path(__file__).resolve().parent.parent / "data"
ERASURE = "Right to erasure (\u2018right to be forgotten\u2019)"


async def _mixed(client: httpx.AsyncClient, runtime: Runtime, expert: Actor, tmp_path: Path) -> str:
    """An asset holding a regulation, a paper and a multi-language repository."""
    create_test_asset(runtime, owner=expert.account, slug="mixed")
    repo = io.BytesIO()
    with zipfile.ZipFile(repo, "w") as zf:
        for path in sorted((DATA / "polyglot").rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(DATA / "polyglot").as_posix())
    paper = write_pdf(tmp_path / "engines.pdf", PAGES)
    response = await client.post(
        "/v1/assets/mixed/sources",
        files=[
            ("files", ("gdpr.xml", (DATA / "regulation" / "gdpr_excerpt.xml").read_bytes())),
            ("files", ("engines.pdf", paper)),
            ("files", ("polyglot.zip", repo.getvalue())),
        ],
        headers=expert.headers,
    )
    assert response.status_code == 202, response.text
    job = await client.get(f"/v1/jobs/{response.json()['job_id']}", headers=expert.headers)
    assert job.json()["status"] == "succeeded", job.json()
    assert job.json()["failed"] == []
    return "mixed"


async def _top(client: httpx.AsyncClient, expert: Actor, query: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/assets/mixed/search", json={"query": query, "k": 3}, headers=expert.headers
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)  # what the results are ordered by
    assert all(-1 <= r["similarity"] <= 1 for r in results)
    locator: dict[str, Any] = results[0]["locator"]
    return locator


# One asset for all four checks: embedding the repository is the slow part. Locators do not
# depend on the database (SQLite only, as every test not marked both_databases).
async def test_each_kind_is_cited_by_its_own_locator(
    client: httpx.AsyncClient,
    runtime: Runtime,
    expert: Actor,
    client_user: Actor,
    tmp_path: Path,
) -> None:
    mixed = await _mixed(client, runtime, expert, tmp_path)

    # A regulation: by article, paragraph and heading.
    locator = await _top(
        client, expert, "right to have personal data erased without undue delay by the controller"
    )
    assert locator == {"path": "gdpr.xml", "section": "Art. 17(1)", "heading": ERASURE}

    # A paper: by page and section.
    locator = await _top(client, expert, "what bound did the rounding errors stay below")
    assert locator == {"path": "engines.pdf", "page": 4, "section": "3.2 Error Analysis"}

    # Code: by path, lines and symbol.
    response = await client.post(
        "/v1/assets/mixed/search",
        json={"query": "remove an item from the cart by its SKU", "k": 20},
        headers=expert.headers,
    )
    # Every language's cart can remove; the Go one must be cited by its own symbol and lines
    # (small methods are merged with their neighbours, and the symbol names them all).
    locator = next(
        r["locator"]
        for r in response.json()["results"]
        if r["locator"]["path"] == "go/cart.go" and "Cart.Remove" in r["locator"]["symbol"]
    )
    assert "Cart.Remove" in locator["symbol"].split(", ")
    lines = (DATA / "polyglot" / "go" / "cart.go").read_text().splitlines()
    start, end = locator["lines"]
    cited = lines[start - 1 : end]
    assert "func (c *Cart) Remove(sku string) error {" in cited
    # Whole definitions: from a doc comment or func line to a closing brace.
    assert lines[start - 1].startswith(("// ", "func "))
    assert lines[end - 1].endswith("}")

    # The client's answer cites the article.
    response = await client.post(
        f"/v1/assets/{mixed}/ask",
        json={"question": "When must a controller erase personal data without undue delay?"},
        headers=client_user.headers,
    )
    citations = response.json()["citations"]
    assert {"path": "gdpr.xml", "section": "Art. 17(1)", "heading": ERASURE} in [
        c["locator"] for c in citations
    ]
