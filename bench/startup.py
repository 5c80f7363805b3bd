"""Time from `make run` on an empty data dir to the first served answer.

    python bench/startup.py

Starts `make run` (the venv must already be installed, so install time is not counted) with
a fresh data dir on a free port, waits for the printed demo key, then asks the demo asset with
it until an answer comes back. Prints the time to the key, to the first answer, and the
answer's own latency.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port  # noqa: E402


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "run.log"
        env = {
            **os.environ,
            "VOUCH_DATA_DIR": f"{tmp}/var",
            "VOUCH_SERVER__PORT": str(port),
            "NO_COLOR": "1",
            "COLUMNS": "250",
        }
        started = time.perf_counter()
        with log.open("w") as out:
            process = subprocess.Popen(
                ["make", "run"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            key = None
            while key is None:
                found = re.search(r"start\): (vch_[a-z0-9_]+)", log.read_text())
                key = found.group(1) if found else None
                if process.poll() is not None:
                    raise SystemExit(log.read_text())
                time.sleep(0.05)
            key_at = time.perf_counter() - started
            while True:
                try:
                    response = httpx.post(
                        f"http://127.0.0.1:{port}/v1/assets/vouch-handbook/ask",
                        json={"question": "How are API keys stored?"},
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=10,
                    )
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            answered_at = time.perf_counter() - started
            asked = time.perf_counter()
            httpx.post(
                f"http://127.0.0.1:{port}/v1/assets/vouch-handbook/ask",
                json={"question": "What happens when a file fails to ingest?"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            ).raise_for_status()
            warm = time.perf_counter() - asked
        finally:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=30)
    print(f"make run -> demo key printed:   {key_at:6.2f} s")
    print(f"make run -> first served answer: {answered_at:6.2f} s")
    print(f"a later ask, end to end:        {warm * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
