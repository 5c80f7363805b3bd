"""The OpenAPI document is the truth: schemathesis sends what it describes to every operation,
as an expert, a client and an admin, and checks each answer against it (no server error,
status, content type, headers and body as documented; invalid input refused, valid input
accepted)."""

import inspect
import json
import shutil
import subprocess
import tempfile
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from schemathesis.core.result import Err

from app.main import create_app
from app.runtime import Runtime
from assets.embeddings import MiniLMEmbedder
from core.config import QueueSettings, Settings
from migrations import upgrade
from tests.factories import HANDBOOK, Actor, create_actor, create_test_asset, ingest_path

EXAMPLES = 12  # per operation and account: 36 calls an operation, a minute of CPU in all
# Valid input must be accepted: answered 2xx, or refused for the account's state rather than the
# input (schemathesis's list). 402 is added: like 409, it answers a well-formed request that the
# caller's credits cannot pay for now (asking or subscribing after the expert set a price), and
# an operation must still document it (status code conformance).
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "402", "403", "404", "409", "429", "5xx"]
            }
        }
    }
)


def _orcid(digits: str) -> str:
    """An ORCID iD with its ISO 7064 MOD 11-2 check digit, from 15 digits."""
    total = 0
    for char in digits:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    full = digits + ("X" if check == 10 else str(check))
    return "-".join(full[i : i + 4] for i in range(0, 16, 4))


# Formats whose values a pattern cannot say: what a valid one looks like.
schemathesis.openapi.format("orcid", st.from_regex(r"\A[0-9]{15}\Z").map(_orcid))
schemathesis.openapi.format(
    "webhook-url",
    st.builds(
        "https://{}.example.com/{}".format,
        st.from_regex(r"\A[a-z][a-z0-9]{0,20}\Z"),
        st.from_regex(r"\A[a-z0-9/_-]{0,40}\Z"),
    ),
)


def _public_keys() -> tuple[list[str], list[str]]:
    """Real SSH and OpenPGP public keys (a signing key's format: the tools read its content)."""
    folder = Path(tempfile.mkdtemp(prefix="openapi-keys-"))
    ssh = []
    for i in range(3):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / f"k{i}")],
            check=True,
        )
        ssh.append((folder / f"k{i}.pub").read_text())
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--passphrase", ""]
    subprocess.run(
        [*gpg, "--quick-gen-key", "Test <t@example.org>", "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
    )
    armoured = subprocess.run(
        [*gpg, "--armor", "--export"], check=True, capture_output=True, text=True
    ).stdout
    # gpg left its agent running for that home: stop it, and leave nothing behind.
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(folder, ignore_errors=True)
    return ssh, [armoured]


_SSH_KEYS, _GPG_KEYS = _public_keys()
schemathesis.openapi.format("signing-public-key", st.sampled_from(_SSH_KEYS + _GPG_KEYS))


@dataclass
class Fuzzed:
    app: FastAPI
    headers: dict[str, dict[str, str]]


@pytest.fixture
def fuzzed(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder) -> Iterator[Fuzzed]:
    """An app of its own for each part of the walk: schemathesis runs the app's lifespan, which
    starts the MCP endpoint once per app and closes the runtime at its end."""
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    config = Settings(environment="test", data_dir=data_dir, queue=QueueSettings(immediate=True))
    runtime = Runtime(config, embedder=embedder)
    upgrade(runtime.engine)
    actors = {role: create_actor(runtime, role=role) for role in ("expert", "client", "admin")}
    asset = create_test_asset(runtime, owner=actors["expert"].account, slug="handbook")
    ingest_path(runtime, asset=asset, owner=actors["expert"].account, path=HANDBOOK)
    yield Fuzzed(
        app=create_app(config, runtime=runtime),
        headers={role: actor.headers for role, actor in actors.items()},
    )
    runtime.close()


SHARDS = 4  # the walk takes a minute: in four parts, the workers of `make test` share it


@pytest.mark.parametrize("shard", range(SHARDS))
def test_every_operation_answers_as_documented(fuzzed: Fuzzed, shard: int) -> None:
    """Each operation of the document (every fourth one, from ``shard`` on), with the examples
    Hypothesis generates from it; every failure of every operation is reported at once."""
    api = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app, config=CONFIG)
    failures: list[str] = []
    operations = 0
    for n, found in enumerate(api.get_all_operations()):
        if n % SHARDS != shard:
            continue
        if isinstance(found, Err):
            failures.append(f"unreadable operation: {found.err()}")
            continue
        operation = found.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case[Any]) -> None:
            for headers in fuzzed.headers.values():  # as an expert, a client and an admin
                case.call_and_validate(headers=headers)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # one failure must not hide another
            # A flaky failure (Hypothesis) carries the first call's error as a sub-exception.
            inner = "".join(f"\n  {e!r}" for e in getattr(exc, "exceptions", ()))
            failures.append(f"{operation.label}: {exc}{inner}")
    assert operations >= 80 // SHARDS
    assert failures == [], "\n\n".join(failures)


async def test_streamed_events_are_as_documented(
    client: httpx.AsyncClient, runtime: Runtime, expert: Actor, client_user: Actor
) -> None:
    """Each event of a streamed answer validates against the schema the document gives it."""
    asset = create_test_asset(runtime, owner=expert.account, slug="handbook")
    ingest_path(runtime, asset=asset, owner=expert.account, path=HANDBOOK)
    document = (await client.get("/openapi.json")).json()
    ask = document["paths"]["/v1/assets/{slug}/ask"]["post"]
    events = ask["responses"]["200"]["content"]["text/event-stream"]["x-events"]

    def check(name: str, data: object) -> None:
        # The event's schema, where its "#/components/..." references resolve.
        schema = {**events[name], "components": document["components"]}
        assert list(Draft202012Validator(schema).iter_errors(data)) == [], (name, data)

    response = await client.post(
        "/v1/assets/handbook/ask",
        json={"question": "How long does a refund take?", "stream": True},
        headers=client_user.headers,
    )
    seen = []
    for block in response.text.strip().split("\n\n"):
        name = block.split("\n")[0].removeprefix("event: ")
        check(name, json.loads(block.split("\n")[1].removeprefix("data: ")))
        seen.append(name)
    assert seen[0] == "delta"
    assert seen[-1] == "done"
    check("error", {"error": "LLMUnavailable", "detail": "the model endpoint failed"})
    with pytest.raises(AssertionError):
        check("delta", {"html": "<p>not a delta</p>"})


def _described(model: Any) -> bool:
    """A schema that says what each key is: a pydantic model, or a list, union or optional of
    them (``dict[str, Any]`` says nothing)."""
    if inspect.isclass(model) and issubclass(model, BaseModel):
        return True
    origin, args = typing.get_origin(model), typing.get_args(model)
    if origin in (typing.Union, types.UnionType):
        return all(_described(a) for a in args if a is not type(None))
    return origin is list and _described(args[0])


def _answers_json(route: Any) -> bool:
    """Whether the route answers with a JSON body: not a page (HTML), redirect, file, CSV or
    other response it builds itself, and not an empty 204. A route that streams or builds a
    response only sometimes (``AskPublic | Response``) answers JSON otherwise."""
    response_class = getattr(route.response_class, "value", route.response_class)
    if not issubclass(response_class, JSONResponse) or route.status_code == 204:
        return False
    returned = typing.get_type_hints(route.endpoint).get("return")
    if typing.get_origin(returned) in (typing.Union, types.UnionType):
        options = typing.get_args(returned)
    else:
        options = (returned,)
    built = [
        o
        for o in options
        if inspect.isclass(o) and issubclass(o, Response) and not issubclass(o, JSONResponse)
    ]
    return len(built) < len(options)


def untyped_json_routes(app: FastAPI) -> tuple[int, list[str]]:
    """How many routes answer JSON, and those of them without a response model that describes
    their body."""
    found, untyped = 0, []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not _answers_json(route):
            continue
        found += 1
        if not _described(route.response_model):
            methods = ",".join(sorted(route.methods or ()))
            untyped.append(f"{methods} {route.path}: {route.response_model!r}")
    return found, untyped


def test_every_json_route_has_a_response_model(tmp_path: Path) -> None:
    """Each JSON route declares the schema of what it answers, so that the document shows it
    and FastAPI answers nothing else (an undeclared key is left out, not leaked)."""
    config = Settings(environment="test", data_dir=tmp_path, queue=QueueSettings(immediate=True))
    app = create_app(config)
    try:
        found, untyped = untyped_json_routes(app)
    finally:
        app.state.runtime.close()
    assert found >= 100  # the API's routes were walked, through the routers it includes
    assert untyped == []


def test_untyped_json_routes_are_found() -> None:
    """The check above tells an untyped JSON route from a typed one and from pages."""
    app = FastAPI()

    class Thing(BaseModel):
        name: str

    @app.get("/v1/untyped")
    def untyped() -> dict[str, Any]:
        return {}

    @app.get("/v1/things")
    def things() -> list[Thing] | None:
        return None

    @app.get("/v1/streamed", response_model=Thing)
    def streamed() -> Thing | Response:
        return Thing(name="")

    @app.get("/page")
    def page() -> Response:
        return Response("<p>a page</p>", media_type="text/html")

    @app.delete("/v1/things", status_code=204)
    def delete() -> Response:
        return Response(status_code=204)

    assert untyped_json_routes(app) == (3, ["GET /v1/untyped: dict[str, typing.Any]"])
