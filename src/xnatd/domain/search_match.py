"""How one search criterion tests one value, with SQL's meaning as XNAT runs it on PostgreSQL.

Comparisons are typed by the field: numbers compare as numbers (``AGE > 30`` is not text order),
dates as dates whichever way the value is written (xnatpy sends ``MM/DD/YYYY``), other text as
text (or as numbers when both sides are numbers, as custom variables are text). An empty value is
SQL's NULL: only ``IS NULL`` matches it, and ``!=`` does not. ``LIKE`` takes SQL's ``%`` and ``_``
wildcards and, as pyxnat writes them, ``*``; it ignores case. A criterion is compiled once, so a
value that cannot be compared (``AGE > abc``) is an error even when nothing would be tested.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from xnatd.domain import search as S
from xnatd.domain import types
from xnatd.domain.types import BOOLEAN, DATE, FLOAT, INTEGER
from xnatd.errors import InvalidInput

Test = Callable[[object], bool]
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    S.EQ: operator.eq,
    S.NE: operator.ne,
    S.LT: operator.lt,
    S.LE: operator.le,
    S.GT: operator.gt,
    S.GE: operator.ge,
}
_DATE = types.Field("value", DATE)
_BOOL = types.Field("value", BOOLEAN)


def compile_test(criterion: S.Criterion, kind: str) -> Test:
    """A function telling whether a stored value (native or text, None when absent) matches."""
    op = criterion.comparison
    if op == S.IS_NULL:
        return lambda value: _text(value) is None
    if op == S.IS_NOT_NULL:
        return lambda value: _text(value) is not None
    if op in (S.LIKE, S.NOT_LIKE):
        return _like(criterion.value, negate=op == S.NOT_LIKE)
    if op == S.BETWEEN:
        low, high = criterion.bounds()
        above = _compare(S.GE, low, kind, criterion)
        below = _compare(S.LE, high, kind, criterion)
        return lambda value: above(value) and below(value)
    return _compare(op, criterion.value, kind, criterion)


def _text(value: object) -> str | None:
    text = types.text(value).strip()
    return text or None


def _like(pattern: str, negate: bool) -> Test:
    parts = []
    for ch in pattern.strip():
        if ch in "%*":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    regex = re.compile("".join(parts), re.IGNORECASE | re.DOTALL)

    def test(value: object) -> bool:
        text = _text(value)
        if text is None:
            return False
        return (regex.fullmatch(text) is None) if negate else (regex.fullmatch(text) is not None)

    return test


def _compare(op: str, operand: str, kind: str, criterion: S.Criterion) -> Test:
    relation = _ORDER[op]
    key = _key_function(kind)
    given = operand.strip()
    try:
        wanted = key(given)
    except ValueError:
        raise InvalidInput(
            f"{criterion.ref.name} {op} {operand!r}: the value is not a valid {kind}"
        ) from None

    def test(value: object) -> bool:
        text = _text(value)
        if text is None:
            return False
        try:
            have = key(text)
        except ValueError:
            return False
        if type(have) is not type(wanted):  # a number against text: compare the texts
            return bool(relation(text, given))
        return bool(relation(have, wanted))

    return test


def _key_function(kind: str) -> Callable[[str], object]:
    if kind in (INTEGER, FLOAT):
        return float
    if kind == DATE:
        return _date
    if kind == BOOLEAN:
        return _boolean
    return _loose


def _date(text: str) -> str:
    """ISO date of a date or timestamp written any way XNAT accepts (time of day ignored)."""
    head = text.strip()[:10] if len(text.strip()) > 10 and text.strip()[4:5] == "-" else text.strip()
    try:
        return str(types.coerce(_DATE, head))
    except InvalidInput:
        raise ValueError(text) from None


def _boolean(text: str) -> str:
    return "true" if types.coerce(_BOOL, text) else "false"


def _loose(text: str) -> object:
    """Text compares as text, unless it is a number (custom variables hold numbers as text)."""
    try:
        return float(text)
    except ValueError:
        return text
