"""What every ``vouch`` command shares: its consoles, its runtime and sessions, and how it
prints JSON and fails. ``app.cli`` and ``app.cli_eval`` both import it."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from sqlmodel import Session

from app.runtime import Runtime
from app.wiring import wire
from core.config import Settings
from core.db import session_scope
from migrations import upgrade

out = Console()
err = Console(stderr=True)
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The runtime on the configured data dir, migrated, with the app's tasks (``worker`` runs
    them), built once per command."""
    global _runtime
    if _runtime is None:
        _runtime = wire(Runtime(Settings()))
        upgrade(_runtime.engine)
    return _runtime


def close_runtime() -> None:
    """Close the command's runtime, if it built one; the next command builds its own."""
    global _runtime
    if _runtime is not None:
        _runtime.close()
        _runtime = None


@contextmanager
def session() -> Iterator[Session]:
    with session_scope(runtime().engine) as s:
        yield s


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
