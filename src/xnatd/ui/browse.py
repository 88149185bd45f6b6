"""Browsing the archive: projects, a project (subjects, sessions, and its owners' settings), a subject
(demographics), a session (fields, scans with thumbnails), and the search box."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from xnatd.domain import address as A
from xnatd.domain.items import Item
from xnatd.domain.table import ListQuery
from xnatd.services.access import users
from xnatd.services.archive import browse, deletion, listing_service, objects, projects
from xnatd.services.jobs import job_commands
from xnatd.ui.web import Page, page

PAGE_SIZE = 50
DEMOGRAPHICS = (
    "gender",
    "handedness",
    "age",
    "yob",
    "dob",
    "height",
    "weight",
    "education",
    "race",
    "ethnicity",
)
SUBJECT_FIELDS = ("group", "src", "initials")


def addr_of(p: Page, kind: str = "") -> A.Address:
    """The archive address a page's URL names (``/app/projects/P[/subjects/S[/experiments/E]]``)."""
    params = p.request.path_params
    project, subject, experiment = params.get("project"), params.get("subject"), params.get("experiment")
    level = A.EXPERIMENT if experiment else A.SUBJECT if subject else A.PROJECT
    return A.Address(kind or level, project=project, subject=subject, experiment=experiment)


def page_number(p: Page, name: str) -> int:
    raw = p.param(name, "1")
    return max(1, int(raw)) if raw.isdigit() else 1


def item_fields(item: Item) -> list[tuple[str, str]]:
    """An object's own non-empty fields, for a definition list."""
    return [(k, str(v)) for k, v in sorted(item.fields.items()) if v not in (None, "") and k != "id"]


def children(item: Item, name: str) -> list[Item]:
    return next((kids for field_name, kids in item.children if field_name == name), [])


@page
async def projects_page(p: Page) -> Response:
    """The projects the user may read; anyone allowed to may create one."""
    if p.request.method == "POST":
        pid = p.field("project")
        await p.call(browse.create_project, pid, p.field("name"), p.field("description"))
        return p.redirect(f"/app/projects/{pid}", f"Project {pid} created.")
    readable = {r["ID"]: r["role"] for r in await p.call(users.access_projects)}
    query = ListQuery(columns=["ID", "name", "description", "accessibility"])
    table = await p.call(listing_service.listing, A.Address(A.PROJECTS), query, [])
    rows = [{**r, "role": readable[r["ID"]]} for r in table.rows if r["ID"] in readable]
    may_create = p.actor.is_admin or p.ctx.settings.allow_project_creation
    return p.render("projects.html", rows=rows, may_create=may_create, rest="/data/projects")


@page
async def project_page(p: Page) -> Response:
    addr = addr_of(p)
    assert addr.project is not None
    if p.request.method == "POST":
        return await _project_action(p, addr.project)
    rights = await p.call(browse.rights, addr.project)
    pid = rights.project["id"]
    values: dict[str, Any] = {"rights": rights, "rest": f"/data/projects/{pid}"}
    if rights.read:
        values |= await _project_data(p, pid)
    if rights.own:
        values |= await _owner_data(p, pid)
    return p.render("project.html", **values)


async def _project_data(p: Page, pid: str) -> dict[str, Any]:
    n_subjects, n_sessions = await p.call(browse.counts, pid)
    sp, ep = page_number(p, "sp"), page_number(p, "ep")
    project = A.Address(A.PROJECT, project=pid)
    subjects = await p.call(
        listing_service.listing,
        A.Address(A.SUBJECTS, project=pid),
        ListQuery(offset=(sp - 1) * PAGE_SIZE, limit=PAGE_SIZE),
        [],
    )
    columns = ["ID", "label", "date", "xsiType", "subject_ID", "insert_date"]
    query = ListQuery(columns=columns, offset=(ep - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    sessions = await p.call(
        listing_service.listing,
        A.Address(A.EXPERIMENTS, project=pid),
        query,
        [("xsiType", "xnat:subjectAssessorData")],
    )
    ids = sorted({r.get("subject_ID", "") for r in sessions.rows} - {""})
    labels = await p.call(browse.subject_labels, pid, ids)
    for row in sessions.rows:
        row["subject_label"] = labels.get(row.get("subject_ID", ""), row.get("subject_ID", ""))
    return {
        "subjects": subjects.rows,
        "sessions": sessions.rows,
        "n_subjects": n_subjects,
        "n_sessions": n_sessions,
        "sp": sp,
        "ep": ep,
        "pages_s": max(1, -(-n_subjects // PAGE_SIZE)),
        "pages_e": max(1, -(-n_sessions // PAGE_SIZE)),
        "project_addr": project,
    }


async def _owner_data(p: Page, pid: str) -> dict[str, Any]:
    members = await p.call(projects.users, pid, ListQuery())
    auto = await p.call(job_commands.get_automation, pid)
    commands = await p.call(job_commands.list_commands)
    return {"members": members.rows, "auto": auto["commands"], "commands": [c["name"] for c in commands]}


async def _project_action(p: Page, pid: str) -> Response:
    action, here = p.field("action"), f"/app/projects/{pid}"
    if action == "add_subject":
        label = p.field("label")
        await p.call(objects.put, A.Address(A.SUBJECT, project=pid, subject=label), [], None)
        return p.redirect(f"{here}/subjects/{label}", f"Subject {label} saved.")
    if action == "add_session":
        subject, label = p.field("subject"), p.field("label")
        addr = A.Address(A.EXPERIMENT, project=pid, subject=subject, experiment=label)
        await p.call(objects.put, addr, [("xsiType", p.field("xsi_type", "xnat:mrSessionData"))], None)
        return p.redirect(f"{here}/subjects/{subject}/experiments/{label}", f"Session {label} saved.")
    if action in ("accessibility", "prearchive_code"):
        await p.call(projects.set_setting, pid, action, p.field("value"))
    elif action == "auto_convert":
        names = [key[4:] for key, value in p.form.items() if key.startswith("cmd:") and value == "on"]
        await p.call(job_commands.set_automation, pid, {"commands": names})
    elif action == "member_add":
        await p.call(projects.set_user, pid, p.field("group"), p.field("username"))
    elif action == "member_remove":
        await p.call(projects.remove_user, pid, p.field("group"), p.field("username"))
    elif action == "delete":
        asked = p.confirmation(f"Delete project {pid} with all its subjects, sessions and files?")
        if asked is not None:
            return asked
        await p.call(deletion.delete, A.Address(A.PROJECT, project=pid), True)
        return p.redirect("/app/projects", f"Project {pid} deleted.")
    else:
        return p.redirect(here, f"Unknown action {action}", "error")
    return p.redirect(here, "Saved.")


@page
async def subject_page(p: Page) -> Response:
    addr = addr_of(p)
    assert addr.project is not None
    if p.request.method == "POST":
        return await _subject_action(p, addr)
    rights = await p.call(browse.rights, addr.project, addr)
    item = await p.call(objects.get_item, addr)
    demo_items = children(item, "demographics")
    demo = {k: str(v) for k, v in demo_items[0].fields.items() if v not in (None, "")} if demo_items else {}
    # the subject's sessions in this project (its own and those shared into it), as the project page
    # lists them: each link opens here, and a session of a project the user may not read never shows
    listed = await p.call(
        listing_service.listing,
        A.Address(A.EXPERIMENTS, project=addr.project, subject=addr.subject),
        ListQuery(columns=["ID", "label", "date"]),
        [("xsiType", "xnat:subjectAssessorData")],
    )
    sessions = [{"id": r["ID"], "label": r["label"], "date": r.get("date", "")} for r in listed.rows]
    return p.render(
        "subject.html",
        rights=rights,
        addr=addr,
        fields=item_fields(item),
        own=dict(item_fields(item)),
        demo=demo,
        demo_names=DEMOGRAPHICS,
        subject_names=SUBJECT_FIELDS,
        sessions=sessions,
        rest=f"/data/{browse.rest_path(addr)}",
    )


async def _subject_action(p: Page, addr: A.Address) -> Response:
    here = f"/app/{browse.rest_path(addr)}"
    if p.field("action") == "delete":
        asked = p.confirmation(f"Delete subject {addr.subject} with all its sessions and files?")
        if asked is not None:
            return asked
        await p.call(deletion.delete, addr, True)
        return p.redirect(f"/app/projects/{addr.project}", f"Subject {addr.subject} deleted.")
    params = [(name, p.field(name)) for name in DEMOGRAPHICS + SUBJECT_FIELDS if name in p.form]
    await p.call(objects.put, addr, params, None)
    return p.redirect(here, "Subject saved.")


@page
async def session_page(p: Page) -> Response:
    addr = addr_of(p)
    assert addr.project is not None
    if p.request.method == "POST":
        asked = p.confirmation(f"Delete session {addr.experiment} with all its scans and files?")
        if asked is not None:
            return asked
        await p.call(deletion.delete, addr, True)
        return p.redirect(f"/app/projects/{addr.project}/subjects/{addr.subject}", "Session deleted.")
    rights = await p.call(browse.rights, addr.project, addr)
    item = await p.call(objects.get_item, addr)
    columns = ["ID", "type", "series_description", "frames", "quality", "xsiType"]
    scans = await p.call(
        listing_service.listing, A.Address(A.CHILDREN, addr.project, addr.subject, addr.experiment, "scan"),
        ListQuery(columns=columns), [],
    )  # fmt: skip
    snaps = await p.call(browse.snapshot_files, addr)
    commands = await p.call(job_commands.list_commands) if rights.edit else []
    return p.render(
        "session.html",
        rights=rights,
        addr=addr,
        fields=item_fields(item),
        xsi_type=item.xsi_type,
        scans=scans.rows,
        snaps=snaps,
        commands=[c["name"] for c in commands],
        rest=f"/data/{browse.rest_path(addr)}",
    )


@page
async def search_page(p: Page) -> Response:
    text = p.param("q")
    subjects, sessions = await p.call(browse.search, text)
    query = f"?format=json&label=*{quote(text)}*" if text else "?format=json"
    return p.render(
        "search.html",
        q=text,
        subjects=subjects,
        sessions=sessions,
        rest="/data/experiments",
        rest_query=query,
    )
