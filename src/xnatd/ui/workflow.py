"""The prearchive (sessions received, waiting: archive, move, delete) and processing jobs (launch a
conversion on a scan or a session, follow its status and log, cancel)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from xnatd.domain.table import ListQuery
from xnatd.domain.wording import count
from xnatd.errors import InvalidInput, NotFound
from xnatd.services.access import users
from xnatd.services.archive import browse
from xnatd.services.jobs import jobs
from xnatd.services.prearchive import archiver
from xnatd.services.prearchive import prearchive as pre
from xnatd.services.prearchive.archive_options import OVERWRITE, ArchiveOptions
from xnatd.ui.web import Page, page

MAX_SESSIONS = 200  # sessions shown with their scans; the REST listing has them all


@page
async def prearchive_page(p: Page) -> Response:
    if p.request.method == "POST":
        return await _prearchive_action(p)
    table = await p.call(pre.listing, None, ListQuery())
    sessions: list[dict[str, Any]] = []
    for row in table.rows[:MAX_SESSIONS]:
        key = pre.Key.parse(row["url"])
        scans = await p.call(pre.scans, key, ListQuery())
        sessions.append({**row, "scans": scans.rows})
    targets = [
        r["ID"] for r in await p.call(users.access_projects) if r["role"] in ("owner", "member", "admin")
    ]
    return p.render(
        "prearchive.html",
        sessions=sessions,
        total=len(table.rows),
        targets=targets,
        rest="/data/prearchive/projects",
    )


async def _prearchive_action(p: Page) -> Response:
    action, url = p.field("action"), p.field("session")
    key = pre.Key.parse(url)
    if action == "archive":
        overwrite = OVERWRITE.get(p.field("overwrite", "none"))
        if overwrite is None:
            raise InvalidInput("overwrite is none, append or delete")
        opts = ArchiveOptions(
            project=p.field("project") or None,
            subject=p.field("subject") or None,
            label=p.field("label") or None,
            overwrite=overwrite,
        )
        done = await p.call(archiver.archive, key, opts)
        target = f"/app/projects/{done.project}/subjects/{done.subject_label}/experiments/{done.label}"
        return p.redirect(target, f"Archived as {done.label}.")
    if action == "move":
        await p.call(pre.move, key, p.field("project"))
        return p.redirect("/app/prearchive", f"Moved {key.folder} to {p.field('project')}.")
    if action == "delete":
        asked = p.confirmation(f"Delete prearchive session {key.folder} and its files?")
        if asked is not None:
            return asked
        await p.call(pre.delete, key)
        return p.redirect("/app/prearchive", f"Deleted {key.folder}.")
    raise InvalidInput(f"Unknown action {action}")


@page
async def jobs_page(p: Page) -> Response:
    """``GET``: recent jobs the user may read; ``POST``: launch a command on a scan or a session."""
    if p.request.method == "POST":
        doc = {
            "command": p.field("command", "dcm2niix"),
            "target": p.field("target"),
            "overwrite": p.field("overwrite") == "on",
        }
        launched = await p.call(jobs.launch, doc)
        if len(launched) == 1:
            return p.redirect(f"/app/jobs/{launched[0]['id']}", "Job queued.")
        return p.redirect("/app/jobs", f"{count(len(launched), 'job')} queued.")
    project = p.param("project") or None
    if project is not None:
        await p.call(browse.rights, project)  # a project the user may not see is not found, as any other
    found = await p.call(jobs.list_jobs, project, None, 200)
    query = f"?project={quote(project)}" if project else ""
    return p.render("jobs.html", jobs=found, project=project, rest="/xapi/jobs", rest_query=query)


@page
async def job_page(p: Page) -> Response:
    raw = p.request.path_params["job_id"]
    if not raw.isdigit():
        raise NotFound(f"Job {raw} not found")
    job_id = int(raw)
    if p.request.method == "POST":
        await p.call(jobs.cancel, job_id)
        return p.redirect(f"/app/jobs/{job_id}", "Job cancelled.")
    job = await p.call(jobs.get, job_id)
    log_text = await p.call(jobs.job_log, job_id)
    return p.render(
        "job.html",
        job=job,
        log=log_text,
        rest=f"/xapi/jobs/{job_id}",
        active=job["status"] in ("queued", "running"),
    )
