"""Date and date-time shifting (``shiftDateByIncrement``, ``shiftDateTimeByIncrement``): the value
keeps the precision it was written with (a DA stays eight digits, a DT keeps its components, its
fraction's digits and its UTC offset) and only moves in time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DT = re.compile(
    r"(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,6}))?(?P<offset>[+-]\d{4})?"
)
_UNITS = {
    "seconds": timedelta(seconds=1),
    "minutes": timedelta(minutes=1),
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
    "weeks": timedelta(weeks=1),
}
_PARTS = ("year", "month", "day", "hour", "minute", "second")


class DateError(ValueError):
    pass


def unit(name: str) -> timedelta:
    try:
        return _UNITS[name.strip().lower()]
    except KeyError:
        raise DateError(f"unknown increment unit {name!r}; use one of {', '.join(_UNITS)}") from None


def shift(text: str, increment: int, units: str) -> str:
    """``text`` (DA or DT) moved by ``increment`` ``units``; empty stays empty."""
    text = text.strip()
    if not text:
        return ""
    match = _DT.fullmatch(text)
    if match is None:
        raise DateError(f"{text!r} is not a DICOM date or date-time")
    present = [name for name in _PARTS if match[name] is not None]
    fraction = match["fraction"] or ""
    try:
        moment = datetime(
            int(match["year"]),
            int(match["month"] or 1),
            int(match["day"] or 1),
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            int(fraction.ljust(6, "0")) if fraction else 0,
        )
    except ValueError as err:
        raise DateError(f"{text!r} is not a valid date: {err}") from None
    moment += increment * unit(units)
    widths = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}
    shifted = moment.strftime("".join(widths[name] for name in present))
    if fraction:
        shifted += "." + f"{moment.microsecond:06d}"[: len(fraction)]
    return shifted + (match["offset"] or "")
