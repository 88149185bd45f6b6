"""Scan types filled in from series descriptions as XNAT's scan type mapping does
(``domain/scan_types.py``): for the new scans of an archived session, and for a session PUT that asks
``fixScanTypes``.

The mapping is on unless switched off, as XNAT reads it: the site configuration's
``scanTypeMapping`` (``/xapi/siteConfig``) set to false turns it off everywhere; else a project's
configuration document ``project/scanTypeMapping`` (written by ``PUT /data/projects/P/
scan_type_mapping/{true|false}`` or the configuration service), when enabled, decides for its
project. Switched off, a scan takes its series description.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.db import config_store, site_config, summaries
from xnatd.domain import scan_types, types
from xnatd.domain.scan_types import History

TOOL, PATH, SITE_KEY = "project", "scanTypeMapping", "scanTypeMapping"
ACTION = "fixScanTypes"


def asked(params: Sequence[tuple[str, str]]) -> bool:
    """Whether a PUT asks for it: ``fixScanTypes=true`` or ``action=fixScanTypes`` (XNAT's
    ``isQueryVariableTrue`` and ``containsAction``)."""
    for key, value in params:
        if key == ACTION and value.strip().lower() == "true":
            return True
        if key == "action" and ACTION in value.split(","):
            return True
    return False


def mapping_on(conn: Connection, project_id: str) -> bool:
    if str(site_config.values(conn).get(SITE_KEY, True)).lower() == "false":
        return False
    doc = config_store.latest(conn, project_id, TOOL, PATH)
    if doc is not None and doc["status"] == "enabled":
        return str(doc["contents"]).strip().lower() == "true"  # Java's Boolean.parseBoolean
    return True


def history(conn: Connection, project_id: str) -> History:
    """What the project's typed scans teach (nothing when the mapping is off)."""
    if not mapping_on(conn, project_id):
        return {}
    return scan_types.history_of(summaries.scan_type_history(conn, project_id))


def type_of(fields: dict[str, Any], known: History) -> str:
    """The type for a scan with these fields and no type of its own."""
    return scan_types.type_for(
        fields.get("series_description"), fields.get("frames"), fields.get("parameters/imageType"), known
    )


def fill(conn: Connection, project_id: str, experiment: Any) -> None:
    """XNAT's ``fixScanTypes``: every scan of an image session without a type gets one; types
    already set stay."""
    if not types.is_a(experiment["xsi_type"], "xnat:imageSessionData"):
        return
    empty = [s for s in q.children(conn, experiment["id"], "scan") if not s["type"]]
    if not empty:
        return
    known = history(conn, project_id)
    for scan in empty:
        q.update_child(conn, scan["pk"], type=type_of(dict(scan["fields"] or {}), known))
