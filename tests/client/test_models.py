"""vouch_client/models.py is what the generator writes from the server's OpenAPI document."""

import importlib.util
from types import ModuleType

from tests.servers import ROOT

GENERATOR = ROOT / "clients" / "python" / "generate.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vouch_client_generate", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_are_generated_from_the_servers_document() -> None:
    generate = _generator()
    committed = generate.TARGET.read_text()
    assert generate.render(generate.server_document()) == committed, (
        "the server's API changed: run .venv/bin/python clients/python/generate.py"
    )
    assert "class AskPublic(BaseModel):" in committed
