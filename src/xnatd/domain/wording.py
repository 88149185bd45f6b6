"""Counts in messages people read ("1 file checked", "2 files checked"): one rule for the command line
and the web pages, so no message says "1 files"."""

from __future__ import annotations

_IRREGULAR = {"entry": "entries", "series": "series", "study": "studies", "needs": "need"}


def plural(noun: str) -> str:
    return _IRREGULAR.get(noun, noun + "s")


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is exactly one."""
    return f"{n} {noun if n == 1 else plural(noun)}"
