"""What the framework adapters say about a passage: its id and metadata."""

import hashlib
import json
from typing import Any


def passage_metadata(asset: str, locator: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A passage's metadata: its asset, its whole ``locator``, and the locator's plain fields
    (``path``, ``lines``, ``section``, ``article``, ``page``...) at the top, for filters."""
    flat = {k: v for k, v in locator.items() if isinstance(v, str | int | float | list)}
    return {**flat, **extra, "asset": asset, "locator": locator}


def passage_id(asset: str, locator: dict[str, Any]) -> str:
    """The same passage has the same id on every search: its asset and locator name it."""
    digest = hashlib.sha256(json.dumps([asset, locator], sort_keys=True).encode()).hexdigest()
    return f"vouch:{asset}:{digest[:24]}"
