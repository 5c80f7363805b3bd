"""Locators as a person reads them in a terminal: ``paper.pdf p. 4 § 3.2 Results``."""

from typing import Any


def describe(locator: dict[str, Any]) -> str:
    """One line: the path with its lines or page, then the symbol or section and heading.

    code ``src/mod.py:120-164 Class.method``; regulation ``gdpr.xml § Art. 17(3)(b) Right to
    erasure`` (with ``p. 3`` when read from a PDF); paper ``paper.pdf p. 4 § 3.2 Results``;
    text ``notes.md:10-30 § Refunds``; a verified answer ``verified answer by Ada, 2026-11-26``.
    """
    if "verified_answer" in locator:
        return f"verified answer by {locator.get('expert', 'the expert')}, {locator.get('date')}"
    parts = [str(locator.get("path", ""))]
    lines = locator.get("lines")
    if isinstance(lines, list | tuple) and len(lines) == 2:
        parts[0] += f":{lines[0]}-{lines[1]}"
    if locator.get("page"):
        parts.append(f"p. {locator['page']}")
    if locator.get("symbol"):
        parts.append(str(locator["symbol"]))
    if locator.get("section"):
        parts.append(f"§ {locator['section']}")
    if locator.get("heading"):
        parts.append(str(locator["heading"]))
    return " ".join(part for part in parts if part)
