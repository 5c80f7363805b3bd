"""Ask a Vouch asset a question from Python, with nothing but the standard library.

Usage: VOUCH_KEY=vch_... python ask.py vouch-handbook "How are API keys stored?"
"""

import json
import os
import sys
import urllib.error
import urllib.request

BASE_URL = os.environ.get("VOUCH_URL", "http://127.0.0.1:8000")


def ask(slug: str, question: str, key: str) -> dict:
    """POST the question to the asset's ask endpoint and return the decoded JSON answer."""
    request = urllib.request.Request(
        f"{BASE_URL}/v1/assets/{slug}/ask",
        data=json.dumps({"question": question}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
        raise SystemExit(f"{exc.code} {body['error']}: {body['detail']}") from exc


def print_answer(answer: dict) -> None:
    """Print the answer, then each citation with its path and line range."""
    print(answer["answer"])
    for citation in answer["citations"]:
        locator = citation["locator"]
        lines = locator.get("lines", ["?", "?"])
        print(f"[{citation['n']}] {locator['path']}:{lines[0]}-{lines[1]}")


if __name__ == "__main__":
    print_answer(ask(sys.argv[1], sys.argv[2], os.environ["VOUCH_KEY"]))
