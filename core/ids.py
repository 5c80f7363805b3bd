"""Public identifiers: a readable prefix and 16 random bytes, never guessable or sequential."""

import base64
import secrets


def new_id(prefix: str) -> str:
    """A new id such as ``job_q3v7...``; the prefix names the kind of object."""
    raw = base64.b32encode(secrets.token_bytes(15)).decode().lower()
    return f"{prefix}_{raw}"
