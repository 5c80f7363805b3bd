"""Liveness and readiness, for load balancers and orchestrators.

``/healthz`` says the process answers: it runs on the event loop and touches nothing, so a busy
thread pool or database does not make a live process look dead. ``/readyz`` says whether this
replica can serve: the database, the task queue and the vector index each answer.
"""

import logging
import time
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.deps import RuntimeDep
from app.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    ok: bool
    ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, Check]


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up and its event loop answers."""
    return Health(status="ok")


def _database(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _queue(runtime: Runtime) -> None:
    runtime.queue.huey.pending_count()


def _index(runtime: Runtime) -> None:
    runtime.index.heartbeat()


CHECKS: dict[str, Callable[[Runtime], None]] = {
    "database": _database,
    "queue": _queue,
    "index": _index,
}


def _run(check: Callable[[Runtime], None], runtime: Runtime) -> Check:
    started = time.perf_counter()
    try:
        check(runtime)
    except Exception as exc:  # any failure means "not ready"; the reason is shown
        log.warning("readiness check failed: %s", exc)
        error: str | None = f"{type(exc).__name__}: {exc}"
    else:
        error = None
    return Check(ok=error is None, ms=round((time.perf_counter() - started) * 1000, 1), error=error)


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency does not answer"}},
)
def readyz(runtime: RuntimeDep) -> Readiness | JSONResponse:
    """The database, the task queue and the vector index answer (else 503, with the reason)."""
    checks = {name: _run(check, runtime) for name, check in CHECKS.items()}
    ready = all(c.ok for c in checks.values())
    result = Readiness(status="ready" if ready else "not ready", checks=checks)
    if ready:
        return result
    return JSONResponse(result.model_dump(), status_code=503)
