"""XNAT's scan type mapping: the type a scan gets from its series description.

A scan whose ``type`` is empty takes the type the project's other scans of the same series
description were given (the description compared upper-cased, without spaces, ``_``, ``-`` and
``*``); with several, the one of the same MR image type, else of the same number of frames. With no
such scan (or with the mapping switched off) it takes the description itself, and ``unknown`` when
there is none. XNAT does this when a session is archived and when a session PUT asks
``fixScanTypes`` (its ``AbstractScanTypeMapping``, ``ImageScanTypeMapping`` and MR's mapping);
unlike XNAT, scans of the project with no type yet never count as a choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

UNKNOWN = "unknown"
INVALID = "INVALID: "
_DROPPED = str.maketrans("", "", " _-*")


@dataclass(frozen=True)
class Typed:
    """One typed scan of the project's history: its type, number of frames and MR image type."""

    type: str
    frames: int | None = None
    image_type: str | None = None


History = Mapping[str, Sequence[Typed]]


def standardize(description: str | None) -> str:
    """The form series descriptions are compared in (XNAT's ``standardizeFormat``)."""
    return (description or "").translate(_DROPPED).upper()


def history_of(rows: Iterable[tuple[str, str, Any, str | None]]) -> dict[str, list[Typed]]:
    """The history from (series description, type, frames, image type) rows, by standardized
    description, in the rows' order."""
    out: dict[str, list[Typed]] = {}
    for description, scan_type, frames, image_type in rows:
        if scan_type:
            key = standardize(_valid(description))
            out.setdefault(key, []).append(Typed(scan_type, frames_of(frames), image_type or None))
    return out


def frames_of(value: Any) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def type_for(description: str | None, frames: Any, image_type: str | None, history: History) -> str:
    """The type a scan without one gets."""
    description = _valid(description)
    if not description:
        return UNKNOWN
    choices = history.get(standardize(description), ())
    return _match(choices, frames_of(frames), image_type or None) or description


def _valid(description: str | None) -> str:
    """XNAT marks a description it could not read with ``INVALID: ``; the rest is the description."""
    text = description or ""
    return text[len(INVALID) :] if text.startswith(INVALID) else text


def _match(choices: Sequence[Typed], frames: int | None, image_type: str | None) -> str | None:
    """XNAT's ``ScanTypeHistory.match``: the only choice; else the first of the same image type, of
    the same frames, or, when the scan has none, of none; else the first."""
    if not choices:
        return None
    if len(choices) == 1:
        return choices[0].type
    if image_type:
        for c in choices:
            if c.image_type and c.image_type.upper() == image_type.upper():
                return c.type
    if frames is not None:
        for c in choices:
            if c.frames == frames:
                return c.type
    if image_type is None:
        for c in choices:
            if c.image_type is None:
                return c.type
    if frames is None:
        for c in choices:
            if c.frames is None:
                return c.type
    return choices[0].type
