"""Write ``src/vouch_client/models.py`` from the server's OpenAPI document.

    .venv/bin/python clients/python/generate.py           # rewrite models.py
    .venv/bin/python clients/python/generate.py --check   # exit 1 if it is out of date

The document comes from ``app.main.create_app(...).openapi()``, the same one ``/openapi.json``
serves; ``tests/client/test_models.py`` checks that regenerating gives the committed file byte
for byte, so the client cannot drift from the server. Only the schemas in ``ROOTS`` and what
they refer to are written. Constraints (lengths, patterns, bounds) are left to the server,
which answers 422 with its own message, so a refusal reads the same from every client.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET = HERE / "src" / "vouch_client" / "models.py"
REPO = HERE.parent.parent

_ASK = "/paths/~1v1~1assets~1{slug}~1ask/post/responses/200/content/text~1event-stream"
# Class name -> JSON pointer into the document.
ROOTS: dict[str, str] = {
    name: f"/components/schemas/{name}"
    for name in (
        "AssetPublic",
        "PricePublic",
        "PlanIn",
        "PlanPublic",
        "SearchRequest",
        "SearchResponse",
        "AskRequest",
        "AskPublic",
        "ErrorBody",
        "ClientSummary",
        "FlagIn",
        "FlagCreated",
    )
} | {"AskDelta": f"{_ASK}/x-events/delta"}

HEADER = '''"""Vouch's API shapes, generated from its OpenAPI document (clients/python/generate.py).

Do not edit: run the generator (tests/client/test_models.py fails when this file is stale).
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

'''


def _resolve(document: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = document
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    assert isinstance(node, dict)
    return node


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


class _Writer:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []

    def add(self, name: str, schema: dict[str, Any]) -> None:
        """Collect ``schema`` and what it refers to, each after what it needs."""
        if name in self.schemas:
            return
        self.schemas[name] = schema
        for ref in sorted(_refs(schema)):
            target = _ref_name(ref)
            self.add(target, _resolve(self.document, ref))
        self.order.append(name)

    def type_of(self, schema: dict[str, Any]) -> str:
        if "$ref" in schema:
            return _ref_name(schema["$ref"])
        for key in ("anyOf", "oneOf"):
            if key in schema and "type" not in schema and "properties" not in schema:
                parts = [self.type_of(s) for s in schema[key]]
                # None last, as people write it
                parts = [p for p in parts if p != "None"] + [p for p in parts if p == "None"]
                return " | ".join(dict.fromkeys(parts))
        if "enum" in schema:
            return f"Literal[{', '.join(repr(v) for v in schema['enum'])}]"
        if "const" in schema:
            return f"Literal[{schema['const']!r}]"
        kind = schema.get("type")
        if kind == "string":
            return "datetime" if schema.get("format") == "date-time" else "str"
        simple = {"integer": "int", "number": "float", "boolean": "bool", "null": "None"}
        if kind in simple:
            return simple[kind]
        if kind == "array":
            return f"list[{self.type_of(schema.get('items', {}))}]"
        if kind == "object" and "properties" not in schema:
            values = schema.get("additionalProperties", True)
            return f"dict[str, {'Any' if values is True else self.type_of(values)}]"
        return "dict[str, Any]" if kind == "object" else "Any"

    def render_class(self, name: str) -> str:
        schema = self.schemas[name]
        lines = [f"class {name}(BaseModel):"]
        if schema.get("description"):
            lines.append(f'    """{_docstring(schema["description"])}"""')
            lines.append("")
        required = set(schema.get("required", []))
        properties: dict[str, dict[str, Any]] = schema.get("properties", {})
        if not properties:
            lines.append("    pass")
        for field, spec in properties.items():
            annotation = self.type_of(spec)
            arguments: list[str] = []
            if field not in required:
                arguments.append(repr(spec.get("default")))
            if spec.get("description"):
                arguments.append(f"description={_string(spec['description'])}")
            if not arguments:
                lines.append(f"    {field}: {annotation}")
            elif len(arguments) == 1 and field not in required:
                lines.append(f"    {field}: {annotation} = {arguments[0]}")
            else:
                lines.append(f"    {field}: {annotation} = Field({', '.join(arguments)})")
        return "\n".join(lines)


def _refs(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["$ref"]} if isinstance(schema.get("$ref"), str) else set()
        for value in schema.values():
            found |= _refs(value)
        return found
    if isinstance(schema, list):
        return set().union(*(_refs(v) for v in schema)) if schema else set()
    return set()


def _string(text: str, width: int = 72) -> str:
    """A string literal, split into parts that fit a line (ruff format does not split them)."""
    if len(repr(text)) <= width:
        return repr(text)
    parts: list[str] = []
    current = ""
    for word in text.split(" "):
        if current and len(current) + len(word) + 1 > width:
            parts.append(current + " ")
            current = word
        else:
            current = f"{current} {word}" if current else word
    parts.append(current)
    return "(" + " ".join(repr(part) for part in parts) + ")"


def _docstring(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()


def render(document: dict[str, Any]) -> str:
    """The text of models.py for ``document``, formatted as ``ruff format`` leaves it."""
    writer = _Writer(document)
    for name, pointer in ROOTS.items():
        writer.add(name, _resolve(document, pointer))
    body = HEADER + "\n\n".join(f"\n{writer.render_class(n)}\n" for n in writer.order)
    return _format(body)


def _format(source: str) -> str:
    # Formatted with the repository's settings (line length), so `ruff format --check` agrees.
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(TARGET), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return formatted.stdout


def server_document() -> dict[str, Any]:
    """The OpenAPI document of the server in this repository, as ``/openapi.json`` serves it."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    # Imported here: the server is needed to generate, not to import this module.
    from app.main import create_app
    from core.config import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        document = create_app(Settings(environment="test", data_dir=Path(data_dir))).openapi()
    # A round trip through JSON: the document exactly as a client downloads it.
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded


def main(argv: list[str]) -> int:
    text = render(server_document())
    if "--check" in argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            sys.stderr.write(f"{TARGET} is out of date: run {Path(__file__).name}\n")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
