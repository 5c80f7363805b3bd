"""Patterns the API's document states for text fields, written so that JSON Schema (ECMAScript
regular expressions, as clients and fuzzers read them) and Python's ``re`` and ``str.strip``
agree on them: whitespace is spelled out as the characters ``str.isspace`` knows, never
``\\s``, whose meaning differs between the two. A JSON Schema pattern matches anywhere in the
value unless it is anchored.
"""

from pydantic import JsonValue

# Exactly the characters for which str.isspace() is true.
SPACE = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
NON_SPACE = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# Holds something besides whitespace.
NOT_BLANK = NON_SPACE


def documented(pattern: str) -> dict[str, JsonValue]:
    """``json_schema_extra`` stating, as a pattern, what a field's validator checks (the
    validator keeps its message a person can act on)."""
    return {"pattern": pattern}
