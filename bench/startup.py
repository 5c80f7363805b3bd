"""Time from `make run` on an empty data dir to the first served answer.

    python bench/startup.py

Starts `make run` (the venv must already be installed, so install time is not counted) with a
fresh data dir on a free port, waits for the printed demo key, then asks the demo asset with it
until an answer comes back. Prints the time to the key, to the first answer, and the time of a
later ask.
"""

import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import make_run, wait_for


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, make_run(Path(tmp)) as run:
        key = run.wait_for_key()
        key_at = time.perf_counter() - run.started
        url = f"http://127.0.0.1:{run.port}/v1/assets/vouch-handbook/ask"
        headers = {"Authorization": f"Bearer {key}"}

        def answered() -> bool:
            try:
                question = {"question": "How are API keys stored?"}
                return httpx.post(url, json=question, headers=headers).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answered, timeout=120, interval=0.05)
        answered_at = time.perf_counter() - run.started
        asked = time.perf_counter()
        question = {"question": "What happens when a file fails to ingest?"}
        httpx.post(url, json=question, headers=headers, timeout=10).raise_for_status()
        later = time.perf_counter() - asked
    print(f"make run -> demo key printed:    {key_at:6.2f} s")
    print(f"make run -> first served answer: {answered_at:6.2f} s")
    print(f"a later ask, end to end:         {later * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
