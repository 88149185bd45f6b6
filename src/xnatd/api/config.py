"""XNAT's configuration service over HTTP: ``/data/config[/{tool}[/{path}]]`` and
``/data/projects/{project}/config[/{tool}[/{path}]]`` (GET, PUT, DELETE)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from xnatd.api import bodies, render
from xnatd.api.archive import fmt, query_params
from xnatd.api.auth import context, require_actor
from xnatd.domain.params import flag, param
from xnatd.domain.table import Table
from xnatd.errors import InvalidInput, MethodNotAllowed, NotFound
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import config_service as service
from xnatd.threads import run_in_threadpool

Params = list[tuple[str, str]]


def _where(request: Request) -> service.Where:
    parts = [p for p in request.path_params.get("rest", "").split("/") if p]
    project = request.path_params.get("project")
    if not parts:
        return service.Where(project)
    return service.Where(project, parts[0], "/".join(parts[1:]) or None)


def _version(params: Params) -> int | None:
    raw = param(params, "version")
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdecimal() or len(raw.strip()) > 9:
        raise InvalidInput(f"version must be a whole number, not {raw!r}")
    return int(raw)


async def config(request: Request) -> Response:
    actor = await require_actor(request)
    ctx = context(request)
    params, where = query_params(request), _where(request)
    if request.method in ("GET", "HEAD"):
        return await _get(ctx, actor, where, params)
    if where.tool is None or where.path is None:
        raise MethodNotAllowed(f"{request.method} needs a tool and a path: {request.url.path}")
    if request.method == "DELETE":
        await run_in_threadpool(service.disable, ctx, actor, where)
        return Response(status_code=200)
    if request.method != "PUT":
        raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
    change = await _change(request, params)
    created = await run_in_threadpool(service.put, ctx, actor, where, change)
    return Response(status_code=201 if created else 200)


async def _get(ctx: Context, actor: Actor, where: service.Where, params: Params) -> Response:
    accept_missing = flag(params, "accept-not-found")
    try:
        if where.tool is None:
            tools = await run_in_threadpool(service.tools, ctx, actor, where)
            rows = [{"tool": t} for t in tools]
            return render.table_response(Table(columns=["tool"], rows=rows, total=len(rows)), fmt(params))
        meta, want_contents = flag(params, "meta"), flag(params, "contents")
        if want_contents and not meta and where.path is not None:
            text = await run_in_threadpool(service.contents, ctx, actor, where, _version(params))
            if text is None:
                raise NotFound(service.missing_text(actor, where))
            return PlainTextResponse(text)
        history = (param(params, "action") or "").lower() == "gethistory"
        table = await run_in_threadpool(service.listing, ctx, actor, where, history, _version(params), meta)
        return render.table_response(table, fmt(params))
    except NotFound:
        if accept_missing:
            return Response(status_code=204)
        raise


async def _change(request: Request, params: Params) -> service.Change:
    status = service.parse_status(param(params, "status"))
    unversioned_raw = param(params, "unversioned")
    unversioned = None if not unversioned_raw else unversioned_raw.strip().lower() == "true"
    reason = param(params, "reason") or ""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await bodies.one_document(request, service.MAX_CONTENTS * 4, "A configuration document")
    contents = None if body is None else body.decode("utf-8", "replace")
    if media == "application/json" and body is not None:
        try:
            doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            doc = None
        if isinstance(doc, dict) and ("contents" in doc or "status" in doc):
            status = service.parse_status(str(doc["status"])) if "status" in doc else status
            contents = str(doc["contents"]) if "contents" in doc else None
    return service.Change(contents, status, unversioned, reason)
