"""Build the single-object documents (``Item``) of every archive object from its rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from xnatd.db import archive as q
from xnatd.domain import types
from xnatd.domain.address import Address
from xnatd.domain.items import Item
from xnatd.services import records
from xnatd.services.resolve import Target


def build_item(conn: Connection, addr: Address, t: Target, with_data: bool = True) -> Item:
    """The document of the object ``addr`` names; ``with_data=False`` (a protected project seen by a
    non-member) leaves out everything but the project's own description."""
    level = addr.level
    if level == "project":
        return project_item(conn, t.project, with_data)
    if level == "subject":
        return subject_item(conn, t.subject, t.project_id if addr.project else None, t.subject_label)
    if level in ("experiment", "assessor"):
        row = t.child if level == "assessor" else t.experiment
        label = t.experiment_label if level == "experiment" else row["label"] if row else None
        return experiment_item(conn, row, t.project_id if addr.project else None, label)
    return child_item(conn, t.child, t.experiment)


def _shares(conn: Connection, kind: str, row: Any) -> list[Item]:
    return [
        Item("xnat:projectParticipant", {"project": s["project_id"], "label": s["label"]}, element="share")
        for s in q.shares_of(conn, kind, row["id"])
    ]


def resource_items(conn: Connection, owner: str) -> list[Item]:
    rows = q.resources_of(conn, [owner])
    stats = q.resource_stats(conn, [r["pk"] for r in rows])
    return [resource_item(r, stats.get(r["pk"], (0, 0))) for r in rows]


def resource_item(row: Any, stat: tuple[int, int]) -> Item:
    values = {
        "xnat_abstractresource_id": row["pk"],
        "label": row["label"],
        "format": row["format"] or None,
        "content": row["content"] or None,
        "description": row["description"] or None,
        "file_count": stat[0],
        "file_size": stat[1],
        "URI": row["directory"],
    }
    item = Item("xnat:resourceCatalog", values, created=row["insert_date"], element="file")
    tags = [t for t in (row["tags"] or "").split(",") if t]
    item.child("tags/tag", [Item("xnat:abstractResource_tag", {"tag": tag}, element="tag") for tag in tags])
    return item


def project_item(conn: Connection, row: Any, with_data: bool = True) -> Item:
    values = records.field_values("project", row)
    item = Item("xnat:projectData", values, created=row["insert_date"])
    if with_data:
        item.child("resources/resource", _as(resource_items(conn, f"project:{row['id']}"), "resource"))
    aliases = q.aliases(conn, row["id"])
    item.child(
        "aliases/alias", [Item("xnat:projectData_alias", {"alias": a}, element="alias") for a in aliases]
    )
    return item


def _as(items: list[Item], element: str) -> list[Item]:
    for it in items:
        it.element = element
    return items


def subject_item(conn: Connection, row: Any, project_id: str | None, label: str | None) -> Item:
    values = records.field_values("subject", row)
    demo = records.demographics(values)
    data = records.without_demographics(values)
    if project_id and label:
        data["label"] = label
    item = Item("xnat:subjectData", data, created=row["insert_date"])
    item.child("demographics", [Item("xnat:demographicData", demo, element="demographics")] if demo else [])
    item.child("resources/resource", _as(resource_items(conn, f"subject:{row['id']}"), "resource"))
    exps, _ = q.experiments_query(conn, None, row["id"], None, types.subtypes("xnat:subjectAssessorData"))
    item.child(
        "experiments/experiment", [experiment_item(conn, e, None, None, "experiment") for e, _p, _l in exps]
    )
    item.child("sharing/share", _shares(conn, "subject", row))
    return item


def experiment_item(
    conn: Connection, row: Any, project_id: str | None, label: str | None, element: str | None = None
) -> Item:
    values = records.field_values("experiment", row)
    values["id"] = row["id"]
    if label:
        values["label"] = label
    item = Item(row["xsi_type"], values, created=row["insert_date"], element=element)
    if types.is_a(row["xsi_type"], "xnat:imageSessionData"):
        scans = [child_item(conn, s, row, "scan") for s in q.children(conn, row["id"], "scan")]
        item.child("scans/scan", scans)
        recons = [
            child_item(conn, s, row, "reconstructedImage")
            for s in q.children(conn, row["id"], "reconstruction")
        ]
        item.child("reconstructions/reconstructedImage", recons)
        assessors, _ = q.experiments_query(conn, None, None, row["id"], None)
        item.child(
            "assessors/assessor",
            [experiment_item(conn, a, None, None, "assessor") for a, _p, _l in assessors],
        )
    item.child("resources/resource", _as(resource_items(conn, f"experiment:{row['id']}"), "resource"))
    item.child("sharing/share", _shares(conn, "experiment", row))
    return item


def child_item(conn: Connection, row: Any, experiment: Any, element: str | None = None) -> Item:
    values = records.field_values("scan", row)
    values["image_session_ID"] = experiment["id"]
    values["project"] = experiment["project_id"]
    key = "xnat_imagescandata_id" if row["kind"] == "scan" else "xnat_reconstructedimagedata_id"
    values[key] = row["pk"]
    item = Item(row["xsi_type"], values, created=row["insert_date"], element=element)
    kind = row["kind"]
    item.child("file" if kind == "scan" else "out/file", resource_items(conn, f"{kind}:{row['pk']}"))
    return item
