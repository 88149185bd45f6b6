"""The one shape of every listing: columns and rows of text, with XNAT's listing parameters.

Services produce a ``Table``; one renderer per format (JSON ``ResultSet``, XML, CSV, HTML) turns any
table into any format. ``ListQuery`` carries ``columns``, filters, ``sortBy``/``sortOrder`` and
``offset``/``limit`` exactly as XNAT reads them from the query string.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xnatd.errors import InvalidInput

# Query parameters that steer a request rather than filter a listing.
CONTROL_PARAMS = frozenset(
    {
        "format",
        "columns",
        "sortby",
        "sortorder",
        "offset",
        "limit",
        "xsitype",
        "req_format",
        "inbody",
        "overwrite",
        "extract",
        "content",
        "tags",
        "description",
        "removefiles",
        "all",
        "structure",
        "compression",
        "recursive",
        "locator",
        "event_reason",
        "event_type",
        "event_action",
        "event_id",
        "_",
        "accept-not-found",
        "update-stats",
        "file_upload",
        "allowdatadeletion",
        "handler",
        "n",
        "concealhiddenfields",
        "callback",
        "cache",
        "primary",
        "delete",
        "restrict",
        "collection",
        "resource",
        "element_name",
        "zip",
    }
)


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, str]]
    title: str | None = None
    total: int | None = None  # totalRecords; None = omit
    column_meta: list[dict[str, str]] | None = None


@dataclass
class ListQuery:
    columns: list[str] | None = None
    filters: dict[str, str] = field(default_factory=dict)
    sort_by: list[str] = field(default_factory=list)
    descending: bool = False
    offset: int | None = None
    limit: int | None = None

    @property
    def paged(self) -> bool:
        return self.offset is not None or self.limit is not None

    @classmethod
    def from_params(cls, params: Sequence[tuple[str, str]]) -> ListQuery:
        q = cls()
        for key, value in params:
            low = key.lower()
            if low == "columns":
                cols = [c.strip() for c in value.split(",") if c.strip()]
                q.columns = (q.columns or []) + cols
            elif low == "sortby":
                q.sort_by = [c.strip() for c in value.split(",") if c.strip()]
            elif low == "sortorder":
                q.descending = value.strip().upper() == "DESC"
            elif low in ("offset", "limit"):
                setattr(q, low, _non_negative(key, value))
            elif low not in CONTROL_PARAMS and key:
                q.filters[key] = value
        return q


# Larger offsets and limits mean "all" or "none" alike; databases take at most signed 64-bit integers.
MAX_COUNT = 2**60


def _non_negative(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"Parameter {key} must be a whole number, not {value!r}") from None
    if number < 0:
        raise InvalidInput(f"Parameter {key} must not be negative")
    return min(number, MAX_COUNT)


def matches(value: str, wanted: str) -> bool:
    """XNAT's listing filters: equality, ``*`` wildcards, comma-separated alternatives."""
    for alt in wanted.split(","):
        alt = alt.strip()
        if "*" in alt or "%" in alt:
            if fnmatch.fnmatchcase(value.lower(), alt.replace("%", "*").lower()):
                return True
        elif value.lower() == alt.lower():
            return True
    return False


Getter = Callable[[Mapping[str, Any], str], str | None]
Values = Callable[[Mapping[str, Any], str], Iterable[str] | None]
Expand = Callable[[Any], Iterable[Mapping[str, Any]]]


def shape(
    records: Sequence[Mapping[str, Any]],
    query: ListQuery,
    defaults: list[str],
    getter: Getter,
    title: str | None = None,
    always: Sequence[str] = ("ID", "URI"),
    total_known: int | None = None,
    namer: Callable[[str], str] | None = None,
    values: Values | None = None,
    expand: Expand | None = None,
) -> Table:
    """Filter, sort, page and project records into a Table.

    ``getter(record, column)`` returns a column's text for a record, or None when the record has no
    such column; it resolves plain keys as well as XPaths and shortcuts. A filter on a column a record
    does not have does not apply to it: XNAT ignores query parameters it does not know (``?foo=1``,
    ``?accessible=true``) rather than answering nothing. A listing that joins other objects also
    gives ``values(record, column)``, every value a column takes for a record, or None for no such
    column (a filter keeps a record when one of them matches: XNAT's criteria pick the listed
    objects), and ``expand(record)``, the record's rows (one per joined child).
    """
    rows: list[Mapping[str, Any]] = list(records)
    for key, wanted in query.filters.items():
        rows = [r for r in rows if _kept(r, key, wanted, getter, values)]
    if expand is not None:
        rows = [row for r in rows for row in expand(r)]
    if query.sort_by:
        for col in reversed(query.sort_by):
            rows.sort(key=functools.partial(_sort_value, getter, col), reverse=query.descending)
    total = len(rows) if total_known is None else total_known
    if query.paged and total_known is None:
        start = query.offset or 0
        rows = rows[start : start + query.limit] if query.limit is not None else rows[start:]
    columns = column_list(query.columns, defaults, always, namer)
    names = [namer(c) for c in columns] if namer else columns
    out = []
    for r in rows:
        # A column the record does not have is left out of the row (xnatpy skips rows whose ``ID`` is
        # empty, and file rows have no ID); CSV and XML still print it, empty, for pyxnat.
        cells = ((name, getter(r, c)) for name, c in zip(names, columns, strict=True))
        out.append({name: v for name, v in cells if v is not None})
    return Table(columns=names, rows=out, title=title, total=None if query.paged else total)


def _kept(record: Mapping[str, Any], key: str, wanted: str, getter: Getter, values: Values | None) -> bool:
    found = values(record, key) if values is not None else None
    if values is None:
        value = getter(record, key)
        found = None if value is None else [value]
    return found is None or any(matches(v, wanted) for v in found)


def column_list(
    requested: list[str] | None,
    defaults: list[str],
    always: Sequence[str],
    namer: Callable[[str], str] | None = None,
) -> list[str]:
    """The columns a listing shows: those requested (``DEFAULT`` stands for the defaults) or the
    defaults, then ``always``; one column per header (``ID`` and ``xnat:experimentData/ID`` are one)."""
    cols: list[str] = []
    for c in requested or ["DEFAULT"]:
        cols.extend(defaults if c.upper() == "DEFAULT" else [c])
    cols.extend(always)
    out: list[str] = []
    seen: set[str] = set()
    for c in cols:
        name = namer(c) if namer else c
        if name not in seen:
            seen.add(name)
            out.append(c)
    return out


def _sort_value(getter: Getter, col: str, record: Mapping[str, Any]) -> tuple[int, float, str]:
    return _sort_key(getter(record, col))


def _sort_key(value: str | None) -> tuple[int, float, str]:
    text = value or ""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text.lower())
