"""The README is true: `make run` serves the demo and its curl command answers, and the `vouch`
commands it shows exist with the options it gives them.

(`make test`, the other command, is what CI runs.)
"""

import json
import re
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest
import typer

from app import cli
from tests.servers import ROOT, make_run, wait_for

README = (ROOT / "README.md").read_text()


def test_quick_start_shows_exactly_the_two_commands() -> None:
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make run", "make test"]


def _vouch_lines() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("vouch ")]


def test_readme_vouch_commands_and_options_exist() -> None:
    lines = _vouch_lines()
    assert len(lines) >= 6
    root = typer.main.get_command(cli.app)
    for words in lines:
        command = root
        rest = list(words)
        while rest and rest[0] in getattr(command, "commands", {}):
            command = command.commands[rest.pop(0)]  # type: ignore[attr-defined]
        assert not hasattr(command, "commands"), words  # a command, not a group
        options = {name for param in command.params for name in param.opts}
        used = {word.split("=")[0] for word in rest if word.startswith("--")}
        assert used <= options, (words, used - options)


@pytest.mark.slow
def test_make_run_serves_the_demo_and_the_readme_curl_answers(tmp_path: Path) -> None:
    with make_run(tmp_path) as run:
        key = run.wait_for_key()
        for login in ("expert@vouch.demo", "client@vouch.demo", "admin@vouch.demo"):
            assert login in run.output()
        assert "Demo prices: vouch-handbook: 0.25 USD a question;" in run.output()
        assert "Demo client credits: 10.00 USD" in run.output()

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
