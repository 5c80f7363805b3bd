"""The README's quick start is true: `make run` serves the demo and its curl command answers.

(`make test`, the other command, is what CI runs.)
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_quick_start_shows_exactly_the_two_commands() -> None:
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make run", "make test"]


@pytest.mark.slow
def test_make_run_serves_the_demo_and_the_readme_curl_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VOUCH_DATA_DIR": str(tmp_path / "var"),
        "VOUCH_SERVER__PORT": str(port),
        "NO_COLOR": "1",
        "COLUMNS": "250",
    }
    env.pop("VOUCH_DATABASE_URL", None)
    log_path = tmp_path / "make-run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        key = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and key is None:
            assert process.poll() is None, log_path.read_text()
            found = re.search(
                r"API key \(new on every start\): (vch_[a-z0-9_]+)", log_path.read_text()
            )
            key = found.group(1) if found else None
            time.sleep(0.5)
        assert key, log_path.read_text()
        output = log_path.read_text()
        for login in ("expert@vouch.demo", "client@vouch.demo", "admin@vouch.demo"):
            assert login in output
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)

        curl = next(line for line in README.splitlines() if line.startswith("curl "))
        curl = curl.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        answered = subprocess.run(
            ["bash", "-c", curl],
            env={**env, "KEY": key},
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
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
