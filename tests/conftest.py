"""Shared fixtures: real SQLite and PostgreSQL, Chroma on disk, the real embedder, the real app.

The database fixture is parametrised over both engines; a test runs on PostgreSQL too only
where the dialect matters (marked ``both_databases``: pytest_collection_modifyitems). SQLite
is migrated once per session into a template file that each test copies; PostgreSQL gets one
fresh database per session, migrated once, whose tables are emptied after each test.
PostgreSQL cases run whenever VOUCH_TEST_POSTGRES_URL is set (CI always sets it) and are
skipped otherwise.

Under pytest-xdist (`make test` runs `-n auto`) each worker is a session of its own: its own
template, its own PostgreSQL database, its own temporary dirs. Servers take free ports, and the
Redis tests use keys and queue names of their own, so workers never share state.
"""

import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel import Session, SQLModel

from app.deps import SESSION_COOKIE
from app.main import create_app
from app.runtime import Runtime
from app.web.forms import CSRF_HEADER, csrf_token
from app.wiring import wire
from assets.embeddings import MiniLMEmbedder
from billing.gateway import Gateway
from core.config import QueueSettings, Settings
from core.db import make_engine
from migrations import upgrade
from tests.factories import PASSWORD, Actor, create_actor
from tests.servers import free_port, new_postgres_database, wait_for

POSTGRES_URL = os.environ.get("VOUCH_TEST_POSTGRES_URL")
# pytest-xdist's workers run with COLUMNS=80, which would fix the width of the CLI's consoles
# when app.cli is first imported; the CLI tests set the width per command, as a terminal does.
os.environ.pop("COLUMNS", None)
T = TypeVar("T")


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real all-MiniLM-L6-v2, loaded once: rankings in tests mean something."""
    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "vouch.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


class DataTemplates:
    """Data dirs prepared once per worker (SQLite database, Chroma, BM25 index), for tests whose
    setup ingests a corpus: ingesting takes seconds, copying the result milliseconds. Each
    test copies one into its own data dir before its runtime starts (``copy_into``)."""

    def __init__(
        self, factory: pytest.TempPathFactory, database: Path, embedder: MiniLMEmbedder
    ) -> None:
        self._factory, self._database, self._embedder = factory, database, embedder
        self._made: dict[str, tuple[Path, Any]] = {}

    def get(self, name: str, build: Callable[[Runtime], T]) -> tuple[Path, T]:
        """The data dir ``build`` filled (with the immediate queue), and what it returned."""
        if name not in self._made:
            root = self._factory.mktemp(name)
            shutil.copy(self._database, root / "vouch.db")
            config = Settings(
                environment="test", data_dir=root, queue=QueueSettings(immediate=True)
            )
            runtime = wire(Runtime(config, embedder=self._embedder))
            try:
                self._made[name] = (root, build(runtime))
            finally:
                runtime.close()
        root, value = self._made[name]
        return root, value

    @staticmethod
    def copy_into(root: Path, settings: Settings) -> None:
        if settings.database_url is not None:
            raise ValueError("a data dir template holds a SQLite database: SQLite tests only")
        shutil.copytree(root, settings.data_dir, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def data_templates(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, embedder: MiniLMEmbedder
) -> DataTemplates:
    return DataTemplates(tmp_path_factory, sqlite_template, embedder)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("VOUCH_TEST_POSTGRES_URL is not set")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1, ... under xdist
    with new_postgres_database(POSTGRES_URL, f"vouch_test_{worker}") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str | None]:
    """None means the default, SQLite in the data dir (a copy of the migrated template)."""
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "vouch.db")
        yield None
        return
    url: str = request.getfixturevalue("postgres_database")
    yield url
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,
        # Tasks run inline when enqueued, after the request's commit.
        queue=QueueSettings(immediate=True),
    )


@pytest.fixture
def runtime(settings: Settings, embedder: MiniLMEmbedder) -> Iterator[Runtime]:
    runtime = wire(Runtime(settings, embedder=embedder))
    yield runtime
    runtime.close()


# The actors: an API key each, and PASSWORD to sign in to the pages (tests.factories.sign_in).
@pytest.fixture
def expert(runtime: Runtime) -> Actor:
    return create_actor(runtime, role="expert", password=PASSWORD)


@pytest.fixture
def expert_second(runtime: Runtime) -> Actor:
    return create_actor(runtime, role="expert", password=PASSWORD)


@pytest.fixture
def client_user(runtime: Runtime) -> Actor:
    return create_actor(runtime, role="client", password=PASSWORD)


@pytest.fixture
def client_second(runtime: Runtime) -> Actor:
    return create_actor(runtime, role="client", password=PASSWORD)


@pytest.fixture
def admin(runtime: Runtime) -> Actor:
    return create_actor(runtime, role="admin", password=PASSWORD)


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    with Session(runtime.engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def live_gateway() -> Gateway | None:
    """The payment gateway of ``live_server`` (none: payments not configured)."""
    return None


@pytest.fixture
def live_server(
    settings: Settings, embedder: MiniLMEmbedder, live_gateway: Gateway | None
) -> Iterator[tuple[str, Runtime]]:
    """A real uvicorn server on a free port; its lifespan starts one queue consumer thread."""
    queued = settings.model_copy(update={"queue": QueueSettings(workers=1)})
    runtime = Runtime(queued, embedder=embedder, gateway=live_gateway)
    server = uvicorn.Server(
        uvicorn.Config(create_app(queued, runtime=runtime), port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: bool(server.started))
    yield f"http://127.0.0.1:{server.config.port}", runtime
    server.should_exit = True
    thread.join(timeout=30)


def page_forms_send_their_token(client: httpx.AsyncClient) -> None:
    """Send the CSRF token with every page post made while signed in, as the pages do
    (a hidden field in each form, and the X-CSRF-Token header for htmx)."""

    async def add_token(request: httpx.Request) -> None:
        cookie = client.cookies.get(SESSION_COOKIE)
        if cookie and request.method == "POST" and not request.url.path.startswith("/v1/"):
            request.headers.setdefault(CSRF_HEADER, csrf_token(cookie))

    client.event_hooks["request"].append(add_token)


_APPS: dict[int, FastAPI] = {}


def app_for(runtime: Runtime) -> FastAPI:
    """The app on ``runtime``. FastAPI builds each route's handler (dependencies, response
    fields) lazily, once per app: a fifth of a second, which every test paid. So a worker makes
    one app per body limit (the one setting create_app reads besides the runtime's) and each
    test hands it its own runtime, where every route and page looks for it (app.state)."""
    limit = runtime.settings.server.max_body_bytes
    if limit not in _APPS:
        _APPS[limit] = create_app(runtime.settings, runtime=runtime)
    app = _APPS[limit]
    app.state.runtime = wire(runtime)  # as create_app does: its tasks and Stripe handlers
    return app


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vouch.test") as client:
        page_forms_send_their_token(client)
        yield client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test runs on PostgreSQL as well as SQLite only when marked ``both_databases``: where
    the dialect matters (row locks and concurrent writes, money sums, case-insensitive search,
    time comparisons, bytes kept in the database, migrations). Everything else goes through
    the same ORM statements and runs on SQLite alone."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgres"
        (dropped if on_postgres and not item.get_closest_marker("both_databases") else kept).append(
            item
        )
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
