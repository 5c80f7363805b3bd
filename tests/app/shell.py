"""The `vouch` command run in this process, as a shell would run it: arguments in, exit code,
stdout and stderr out, on a data dir the test owns.

Each command goes through ``app.cli.main`` (the installed entry point) with typer's test runner
holding the environment and the output streams, and builds its own runtime, closed when it ends,
as a separate process would (the MiniLM model is loaded once per process, as in a server). A
process per command cost the suite seconds of imports and a model load each; the tests that
start the installed ``vouch`` as a process (the worker in tests/app/test_queue.py, ``serve`` in
tests/app/test_hardening.py, ``mcp`` in tests/app/test_mcp.py) cover the entry point itself.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from app import cli, cli_common
from core.config import Settings
from core.db import make_engine
from tests.factories import review_record


@dataclass(frozen=True)
class Ran:
    """What a finished command left: the same fields as ``subprocess.CompletedProcess``."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


class Shell:
    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        # Set on top of this process's environment while a command runs, like a child's.
        self.env = {"VOUCH_DATA_DIR": str(data_dir), "NO_COLOR": "1"}
        if database_url:
            self.env["VOUCH_DATABASE_URL"] = database_url
        self.database = Settings(data_dir=data_dir, database_url=database_url).sqlalchemy_url

    def trust(self, slug: str) -> None:
        """The asset's expert approved its earlier answers: its answers are final."""
        engine = make_engine(self.database)
        try:
            review_record(engine, slug, stood=200)
        finally:
            engine.dispose()

    def run(self, *args: str, ok: bool = True) -> Ran:
        """Run ``vouch *args``; with ``ok`` it must exit 0. A bug (an exception other than the
        exits the command chose) is raised here, where the traceback helps most."""
        argv = sys.argv
        with CliRunner().isolation(env=self.env) as (stdout, stderr, _):
            sys.argv = ["vouch", *args]
            try:
                cli.main()
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
            finally:
                sys.argv = argv
                sys.stdout.flush()
                sys.stderr.flush()
                cli_common.close_runtime()  # each command builds its own, as a process would
            result = Ran([*args], code, stdout.getvalue().decode(), stderr.getvalue().decode())
        if ok:
            assert result.returncode == 0, result.stderr
        return result
