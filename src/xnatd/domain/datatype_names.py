"""XNAT's data-type names (``/xapi/schemas/datatypes``): every type of the registry, and the other
spellings XNAT accepts for each (``xnat_mrSessionData``, ``xnat:MRSession``, the namespace URI...).
"""

from __future__ import annotations

import functools

from xnatd.domain import types, xsd
from xnatd.errors import NotFound


def data_types() -> list[str]:
    """Every data type, ``prefix:name``, sorted."""
    return sorted(t.xsi_type for t in types.all_types())


def searchable_sessions() -> list[str]:
    """The image session types (XNAT's ``datatypes/searchable``)."""
    return sorted(t.xsi_type for t in types.all_types() if types.is_a(t.xsi_type, "xnat:imageSessionData"))


@functools.cache
def _names() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for t in types.all_types():
        prefix, _, name = t.xsi_type.partition(":")
        proper = (t.element or t.xsi_type).partition(":")[2] or name
        uri = xsd.namespace(prefix)
        alt = uri.rstrip("/").rsplit("/", 1)[-1]
        spellings = (
            f"{prefix}:{name}", f"{prefix}_{name}", f"{prefix}:{proper}", f"{prefix}_{proper}",
            f"{alt}:{name}", f"{alt}_{name}", f"{alt}:{proper}", f"{alt}_{proper}",
            f"{uri}:{name}", f"{uri}:{proper}",
        )  # fmt: skip
        out[t.xsi_type] = tuple(sorted(set(spellings)))
    return out


def all_names() -> dict[str, list[str]]:
    """Each type's spellings by its ``prefix:name`` (XNAT's map also carries a ``timestamp`` key)."""
    return {key: list(value) for key, value in sorted(_names().items())}


def names_of(spelling: str) -> dict[str, list[str]]:
    """The spellings of the one type ``spelling`` names (any of its spellings); ``NotFound`` else."""
    for key, value in _names().items():
        if spelling == key or spelling in value:
            return {key: list(value)}
    raise NotFound(spelling)
