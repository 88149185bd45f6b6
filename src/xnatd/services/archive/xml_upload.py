"""Objects created from their XML document alone: ``POST`` of a subject or experiment document to its
collection (``/data/projects/P/subjects``, ``.../experiments``) and XNAT's XML upload
(``/xapi/archive/upload/xml``), where the document says where the object goes.

The document names the object (``label``), its project (``project``) and, for an experiment, its
subject (``subject_ID``: ID or label); the object is then stored exactly as a ``PUT`` of the document
to its own URL would store it (``objects.put``), with the same rights and checks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from xnatd.domain import address as A
from xnatd.domain import types
from xnatd.domain.items import XNAT_NS, XSI_NS
from xnatd.errors import InvalidInput
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import objects

Params = list[tuple[str, str]]


@dataclass(frozen=True)
class Placement:
    """What a document says about where it belongs."""

    xsi_type: str
    label: str | None
    project: str | None
    subject: str | None


def read_placement(body: bytes) -> Placement:
    try:
        root: Any = SafeET.fromstring(body, forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise InvalidInput(f"Malformed XML document: {exc}") from None
    xsi_type = root.get(f"{{{XSI_NS}}}type")
    if not xsi_type:
        local = str(root.tag).rsplit("}", 1)[-1]
        xsi_type = next(
            (t.xsi_type for t in types.all_types() if (t.element or "").endswith(f":{local}")), ""
        )
    if not xsi_type or xsi_type not in types.REGISTRY:
        raise InvalidInput(f"Not a document of a known data type: <{root.tag}>")
    subject = root.find(f"{{{XNAT_NS}}}subject_ID")
    subject_id = (subject.text or "").strip() if subject is not None else None
    return Placement(
        types.get(xsi_type).xsi_type,
        (root.get("label") or "").strip() or None,
        (root.get("project") or "").strip() or None,
        subject_id or None,
    )


def _check_project(where: Placement, project: str | None) -> str:
    if project and where.project and where.project != project:
        raise InvalidInput(f"The document belongs to project {where.project}, not {project}")
    found = project or where.project
    if not found:
        raise InvalidInput("The document names no project (its project attribute)")
    return found


def _address(where: Placement, collection: A.Address) -> A.Address:
    """The object's own URL in the collection it is posted to."""
    if not where.label:
        raise InvalidInput("The document needs a label (its label attribute)")
    project = _check_project(where, collection.project)
    if types.is_a(where.xsi_type, "xnat:subjectData"):
        if collection.kind != A.SUBJECTS:
            raise InvalidInput(f"A {where.xsi_type} document is posted to a subjects collection")
        return A.Address(A.SUBJECT, project=project, subject=where.label)
    if not types.is_a(where.xsi_type, "xnat:subjectAssessorData") or collection.kind != A.EXPERIMENTS:
        raise InvalidInput(f"A {where.xsi_type} document cannot be posted to this collection")
    subject = collection.subject or where.subject
    if not subject:
        raise InvalidInput("The experiment document names no subject (its subject_ID)")
    return A.Address(A.EXPERIMENT, project=project, subject=subject, experiment=where.label)


def post_to_collection(
    ctx: Context, actor: Actor, collection: A.Address, params: Params, body: bytes
) -> objects.PutResult:
    """``POST`` of a subject or experiment document to its project's (or subject's) collection."""
    if collection.project is None:
        raise InvalidInput("Post the document to a project's collection (/data/projects/P/subjects)")
    addr = _address(read_placement(body), collection)
    return objects.put(ctx, actor, addr, params, body)


def upload(ctx: Context, actor: Actor, params: Params, body: bytes, project: str | None) -> str:
    """``POST /xapi/archive/upload/xml``: store the subject or experiment the document describes
    where it says (``project`` overrides a document without one); the object's URI."""
    where = read_placement(body)
    project_id = _check_project(where, project)
    if types.is_a(where.xsi_type, "xnat:subjectData"):
        collection = A.Address(A.SUBJECTS, project=project_id)
    else:
        collection = A.Address(A.EXPERIMENTS, project=project_id)
    addr = _address(replace(where, project=project_id), collection)
    result = objects.put(ctx, actor, addr, params, body)
    kind = "subjects" if addr.kind == A.SUBJECT else "experiments"
    return f"/data/projects/{project_id}/{kind}/{result.body}"
