"""The jobs API: ``/xapi/jobs`` (launch, list), ``/xapi/jobs/{id}[/log|/cancel]``, command definitions
(``/xapi/jobs/commands[/{name}]``) and a project's automatic commands (``/xapi/jobs/auto/{project}``).
Each handler parses, calls one service, renders JSON (the log is plain text)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xnatd.api import render
from xnatd.api.auth import context, require_actor
from xnatd.api.users import json_body
from xnatd.errors import InvalidInput, NotFound
from xnatd.services.jobs import job_commands
from xnatd.services.jobs import jobs as job_service
from xnatd.threads import run_in_threadpool

MAX_ID = 2**62


def _job_id(request: Request) -> int:
    raw = request.path_params["job_id"]
    if not raw.isdecimal() or int(raw) > MAX_ID:  # ``²`` is a digit but no number; IDs fit 64 bits
        raise NotFound(f"Job {raw} not found")
    return int(raw)


async def jobs(request: Request) -> Response:
    """``POST``: queue a command on a target (201 with the jobs); ``GET``: list (``project``, ``status``)."""
    actor = await require_actor(request)
    if request.method == "POST":
        doc = await json_body(request)
        for key in ("command", "target", "overwrite"):
            if key in request.query_params and key not in doc:
                doc[key] = request.query_params[key]
        created = await run_in_threadpool(job_service.launch, context(request), actor, doc)
        return JSONResponse(created, status_code=201)
    params = request.query_params
    statuses = [s for v in params.getlist("status") for s in v.split(",") if s] or None
    limit = params.get("limit", "1000")
    if not limit.isdecimal():
        raise InvalidInput("limit must be a whole number")
    found = await run_in_threadpool(
        job_service.list_jobs,
        context(request),
        actor,
        params.get("project"),
        statuses,
        min(int(limit), 10**9),
    )
    return JSONResponse(found)


async def job(request: Request) -> Response:
    actor = await require_actor(request)
    return JSONResponse(await run_in_threadpool(job_service.get, context(request), actor, _job_id(request)))


async def job_log(request: Request) -> Response:
    actor = await require_actor(request)
    text = await run_in_threadpool(job_service.job_log, context(request), actor, _job_id(request))
    return render.text_of_stored(text)


async def job_cancel(request: Request) -> Response:
    actor = await require_actor(request)
    return JSONResponse(
        await run_in_threadpool(job_service.cancel, context(request), actor, _job_id(request))
    )


async def commands(request: Request) -> Response:
    actor = await require_actor(request)
    ctx = context(request)
    if request.method == "POST":
        doc = await json_body(request)
        new = await run_in_threadpool(job_commands.put_command, ctx, actor, doc)
        found = await run_in_threadpool(job_commands.get_command, ctx, actor, str(doc.get("name")))
        return JSONResponse(found, status_code=201 if new else 200)
    return JSONResponse(await run_in_threadpool(job_commands.list_commands, ctx, actor))


async def command(request: Request) -> Response:
    actor = await require_actor(request)
    ctx, name = context(request), request.path_params["name"]
    if request.method == "PUT":
        doc = await json_body(request)
        new = await run_in_threadpool(job_commands.put_command, ctx, actor, doc, name)
        found = await run_in_threadpool(job_commands.get_command, ctx, actor, name)
        return JSONResponse(found, status_code=201 if new else 200)
    if request.method == "DELETE":
        await run_in_threadpool(job_commands.delete_command, ctx, actor, name)
        return Response(status_code=204)
    return JSONResponse(await run_in_threadpool(job_commands.get_command, ctx, actor, name))


async def automation(request: Request) -> Response:
    actor = await require_actor(request)
    ctx, project = context(request), request.path_params["project"]
    if request.method == "PUT":
        doc = await json_body(request)
        return JSONResponse(await run_in_threadpool(job_commands.set_automation, ctx, actor, project, doc))
    return JSONResponse(await run_in_threadpool(job_commands.get_automation, ctx, actor, project))
