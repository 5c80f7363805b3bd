"""The README's quick start is true: `make run` serves the demo and its curl command answers.

(`make test`, the other command, is what CI runs.)
"""

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, make_run, wait_for

README = (ROOT / "README.md").read_text()


def test_quick_start_shows_exactly_the_two_commands() -> None:
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make run", "make test"]


@pytest.mark.slow
def test_make_run_serves_the_demo_and_the_readme_curl_answers(tmp_path: Path) -> None:
    with make_run(tmp_path) as run:
        key = run.wait_for_key()
        for login in ("expert@vouch.demo", "client@vouch.demo", "admin@vouch.demo"):
            assert login in run.output()

        def serving() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{run.port}/login").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(serving, timeout=120)
        curl = next(line for line in README.splitlines() if line.startswith("curl "))
        curl = curl.replace("127.0.0.1:8000", f"127.0.0.1:{run.port}")
        answered = subprocess.run(
            ["bash", "-c", curl],
            env={**run.env, "KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    body = json.loads(answered.stdout)
    assert body["status"] in ("final", "pending_review")
    assert "SHA-256" in body["answer"]
    # A citation points at the lines of docs/api.md that say it.
    api_lines = (ROOT / "docs" / "api.md").read_text().splitlines()
    line = next(i for i, text in enumerate(api_lines, 1) if "SHA-256" in text)
    assert any(
        c["locator"]["path"] == "api.md"
        and c["locator"]["lines"][0] <= line <= c["locator"]["lines"][1]
        for c in body["citations"]
    )
