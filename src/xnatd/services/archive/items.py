"""Build the single-object documents (``Item``) of every archive object from its rows.

A document shows its reader only what they may read (``visibility``): children of projects they
cannot read are left out, and no project they cannot read is named.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.domain import types
from xnatd.domain.address import Address
from xnatd.domain.items import Item
from xnatd.services.access.visibility import EVERYTHING, Viewer, shown_as
from xnatd.services.archive import protocols, records
from xnatd.services.archive.resolve import Target


def build_item(conn: Connection, addr: Address, t: Target, v: Viewer, with_data: bool = True) -> Item:
    """The document of the object ``addr`` names, as ``v`` may see it; ``with_data=False`` (a
    protected project seen by a non-member) leaves out everything but the project's own description."""
    level = addr.level
    via = t.project_id if addr.project else None
    if level == "project":
        return project_item(conn, t.project, v, with_data)
    if level == "subject":
        return subject_item(conn, v, t.subject, via, t.subject_label)
    if level in ("experiment", "assessor"):
        row = t.child if level == "assessor" else t.experiment
        label = t.experiment_label if level == "experiment" else row["label"] if row else None
        return experiment_item(conn, v, row, via, label)
    return child_item(
        conn, v, t.child, t.experiment, _project_shown(conn, v, "experiment", t.experiment, via)
    )


def _shares(conn: Connection, v: Viewer, kind: str, row: Any) -> list[Item]:
    return [
        Item("xnat:projectParticipant", {"project": s["project_id"], "label": s["label"]}, element="share")
        for s in q.shares_of(conn, kind, row["id"])
        if v.reads(s["project_id"])
    ]


def _project_shown(conn: Connection, v: Viewer, kind: str, row: Any, via: str | None) -> str:
    """The project a document gives for an object the reader may read (see visibility.shown_as)."""
    shown = shown_as(conn, v, kind, row, via)
    return shown[0] if shown is not None else (via or "")


def resource_items(conn: Connection, owner: str, v: Viewer = EVERYTHING) -> list[Item]:
    rows = q.resources_of(conn, [owner])
    stats = q.resource_stats(conn, [r["pk"] for r in rows])
    return [resource_item(r, stats.get(r["pk"], (0, 0)), v) for r in rows]


def resource_item(row: Any, stat: tuple[int, int], v: Viewer) -> Item:
    """A resource; its folder (``URI``, under its project's) only for readers of that project."""
    values = {
        "xnat_abstractresource_id": row["pk"],
        "label": row["label"],
        "format": row["format"] or None,
        "content": row["content"] or None,
        "description": row["description"] or None,
        "file_count": stat[0],
        "file_size": stat[1],
        "URI": row["directory"] if v.reads(row["project_id"]) else None,
    }
    item = Item("xnat:resourceCatalog", values, created=row["insert_date"], element="file")
    tags = [t for t in (row["tags"] or "").split(",") if t]
    item.child("tags/tag", [Item("xnat:abstractResource_tag", {"tag": tag}, element="tag") for tag in tags])
    return item


def project_item(conn: Connection, row: Any, v: Viewer, with_data: bool = True) -> Item:
    values = records.field_values("project", row)
    stored_protocols = {protocols.STORED: values.pop(protocols.STORED, None)}
    item = Item("xnat:projectData", values, created=row["insert_date"])
    aliases = q.aliases(conn, row["id"])
    item.child(
        "aliases/alias", [Item("xnat:projectData_alias", {"alias": a}, element="alias") for a in aliases]
    )
    if with_data:
        item.child("resources/resource", _as(resource_items(conn, f"project:{row['id']}", v), "resource"))
        item.child("studyProtocol", protocols.protocol_items(conn, row["id"], stored_protocols))
    return item


def _as(items: list[Item], element: str) -> list[Item]:
    for it in items:
        it.element = element
    return items


def subject_item(conn: Connection, v: Viewer, row: Any, via: str | None, label: str | None) -> Item:
    """A subject, read directly or through a project it is shared into (``via``, with ``label`` there)."""
    values = records.field_values("subject", row)
    demo = records.demographics(values)
    data = records.without_demographics(values)
    data["project"] = _project_shown(conn, v, "subject", row, via)
    if via and label:
        data["label"] = label
    item = Item("xnat:subjectData", data, created=row["insert_date"])
    item.child("demographics", [Item("xnat:demographicData", demo, element="demographics")] if demo else [])
    item.child("resources/resource", _as(resource_items(conn, f"subject:{row['id']}", v), "resource"))
    exps, _ = q.experiments_query(conn, None, row["id"], None, types.subtypes("xnat:subjectAssessorData"))
    item.child("experiments/experiment", _children(conn, v, exps, via, "experiment"))
    item.child("sharing/share", _shares(conn, v, "subject", row))
    return item


def _children(conn: Connection, v: Viewer, rows: Any, via: str | None, element: str) -> list[Item]:
    """Experiments or assessors under an object, those the reader may read, each under the project
    and label it shows to them."""
    out = []
    for row, _p, _l in rows:
        shown = shown_as(conn, v, "experiment", row, via)
        if shown is not None:
            out.append(experiment_item(conn, v, row, shown[0], shown[1], element, shown_in=shown[0]))
    return out


def experiment_item(
    conn: Connection,
    v: Viewer,
    row: Any,
    via: str | None,
    label: str | None,
    element: str | None = None,
    shown_in: str | None = None,
) -> Item:
    """An experiment (or assessor) as ``v`` sees it, read directly or through ``via``."""
    values = records.field_values("experiment", row)
    values["id"] = row["id"]
    values["project"] = shown_in or _project_shown(conn, v, "experiment", row, via)
    if label:
        values["label"] = label
    item = Item(row["xsi_type"], values, created=row["insert_date"], element=element)
    if types.is_a(row["xsi_type"], "xnat:imageSessionData"):
        project = str(values["project"])
        scans = [child_item(conn, v, s, row, project, "scan") for s in q.children(conn, row["id"], "scan")]
        item.child("scans/scan", scans)
        recons = [
            child_item(conn, v, s, row, project, "reconstructedImage")
            for s in q.children(conn, row["id"], "reconstruction")
        ]
        item.child("reconstructions/reconstructedImage", recons)
        assessors, _ = q.experiments_query(conn, None, None, row["id"], None)
        item.child("assessors/assessor", _children(conn, v, assessors, via, "assessor"))
    resources = resource_items(conn, f"experiment:{row['id']}", v)
    if types.is_a(row["xsi_type"], "xnat:imageAssessorData"):
        # XNAT files an assessor's resources as its outputs (``.../assessors/A/resources/R`` is
        # ``.../out/resources/R``): readers look for them there (dax's chained pipelines among them).
        item.child("out/file", resources)
    else:
        item.child("resources/resource", _as(resources, "resource"))
    item.child("sharing/share", _shares(conn, v, "experiment", row))
    return item


def child_item(
    conn: Connection, v: Viewer, row: Any, experiment: Any, project: str | None, element: str | None = None
) -> Item:
    """A scan or reconstruction; ``project`` is the one its session shows under to the reader."""
    values = records.field_values("scan", row)
    values["image_session_ID"] = experiment["id"]
    values["project"] = project or _project_shown(conn, v, "experiment", experiment, None)
    key = "xnat_imagescandata_id" if row["kind"] == "scan" else "xnat_reconstructedimagedata_id"
    values[key] = row["pk"]
    item = Item(row["xsi_type"], values, created=row["insert_date"], element=element)
    kind = row["kind"]
    item.child("file" if kind == "scan" else "out/file", resource_items(conn, f"{kind}:{row['pk']}", v))
    return item
