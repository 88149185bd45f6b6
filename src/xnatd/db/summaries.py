"""Site-wide summaries of archived sessions and scans (XNAT's scanner and scan type listings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from xnatd.db.schema import experiments, scans


def session_fields(conn: Connection, xsi_type: str, projects: Sequence[str] | None) -> list[dict[str, Any]]:
    """The typed fields of every session of one type (in some projects; None: all)."""
    stmt = select(experiments.c.fields).where(experiments.c.xsi_type == xsi_type)
    if projects is not None:
        stmt = stmt.where(experiments.c.project_id.in_(list(projects)))
    return [dict(f or {}) for f in conn.execute(stmt).scalars()]


def scan_types(conn: Connection, xsi_type: str, projects: Sequence[str] | None) -> list[tuple[str, str]]:
    """(type, series description) of every scan of one type (in some projects; None: all)."""
    stmt = (
        select(scans.c.type, scans.c.fields)
        .join(experiments, experiments.c.id == scans.c.experiment_id)
        .where(scans.c.xsi_type == xsi_type, scans.c.kind == "scan")
    )
    if projects is not None:
        stmt = stmt.where(experiments.c.project_id.in_(list(projects)))
    return [(t or "", str((f or {}).get("series_description") or "")) for t, f in conn.execute(stmt).all()]


def scan_type_history(conn: Connection, project_id: str) -> list[tuple[str, str, Any, str | None]]:
    """(series description, type, frames, MR image type) of a project's typed scans, each distinct
    combination once, the first typed first: the history XNAT's scan type mapping learns from."""
    fields = scans.c.fields
    keys = (
        fields["series_description"].as_string(),
        scans.c.type,
        fields["frames"].as_string(),
        fields["parameters/imageType"].as_string(),
    )
    stmt = (
        select(*keys)
        .join(experiments, experiments.c.id == scans.c.experiment_id)
        .where(experiments.c.project_id == project_id, scans.c.kind == "scan")
        .where(scans.c.type.is_not(None), scans.c.type != "", keys[0].is_not(None))
        .order_by(scans.c.pk)
    )
    # distinct here, keeping the first of each: PostgreSQL will not group by the JSON lookups (their
    # keys are bound parameters, so the grouped and the selected expressions differ)
    seen = dict.fromkeys((str(d), str(t), f, i) for d, t, f, i in conn.execute(stmt).all())
    return list(seen)
