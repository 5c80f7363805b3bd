"""Token counting with tiktoken: the one module that imports it.

tiktoken downloads its BPE files on first use, which cannot happen here. llama-index-core ships
``cl100k_base`` and ``o200k_base`` (with the hashes tiktoken checks) in its package data, so the
cache directory is pointed there before the first encoding is loaded.
"""

import os
from functools import cache
from importlib.resources import files

import tiktoken

ENCODING = "o200k_base"


@cache
def _encoding(name: str) -> tiktoken.Encoding:
    cache_dir = files("llama_index.core") / "_static" / "tiktoken_cache"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return tiktoken.get_encoding(name)


def count_tokens(text: str, *, encoding: str = ENCODING) -> int:
    """Number of tokens in ``text`` under ``encoding`` (special-token text counts as text)."""
    return len(_encoding(encoding).encode(text, disallowed_special=()))
