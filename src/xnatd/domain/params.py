"""Reading XNAT's query and form parameters: one list of (name, value) pairs, names case-blind.

XNAT reads its parameters through one ``getQueryVariable`` that ignores case, and clients rely on
that (``PROJECT_ID`` or ``project_id``, ``overwrite=true`` or ``Overwrite=TRUE``); every service and
handler reads them through these helpers, so the rule is written once.
"""

from __future__ import annotations

from collections.abc import Sequence

Params = Sequence[tuple[str, str]]


def param(params: Params, *names: str) -> str | None:
    """The first value given under any of ``names``."""
    wanted = {n.lower() for n in names}
    for key, value in params:
        if key.lower() in wanted:
            return value
    return None


def flag(params: Params, name: str) -> bool:
    """A yes/no parameter where absent means no (``overwrite``, ``extract``, ``removeFiles``)."""
    return (param(params, name) or "").strip().lower() in ("true", "1", "yes")


def maybe_flag(params: Params, *names: str) -> bool | None:
    """A yes/no parameter of the import service, where absent (None) lets a default decide (``AA``,
    ``Ignore-Unparsable``); it also takes XNAT's ``t``."""
    value = param(params, *names)
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in ("true", "1", "yes", "t")
