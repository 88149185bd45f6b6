"""Workflows over HTTP: ``/data/workflows[/{id}]`` (XNAT's ``WorkflowResource``),
``/data/services/workflows[/{pipeline}|/workflowid/{id}]`` (its pipeline-status service) and
``.../experiments/{E}/workflows``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xnatd.api import bodies, render
from xnatd.api.archive import fmt, query_params
from xnatd.api.auth import context, require_actor
from xnatd.domain import address as A
from xnatd.domain.params import param
from xnatd.domain.table import ListQuery, Table
from xnatd.errors import InvalidInput, MethodNotAllowed
from xnatd.services.archive import workflows as service
from xnatd.threads import run_in_threadpool

Params = list[tuple[str, str]]
MAX_XML = 1 << 20


def _id(raw: str) -> int:
    if not raw.isdecimal() or len(raw) > 12:
        raise InvalidInput(f"Not a workflow ID: {raw}")
    return int(raw)


def _item(attrs: dict[str, Any], params: Params) -> Response:
    if fmt(params) == "json":
        return JSONResponse(service.to_json(attrs))
    return Response(service.to_xml(attrs), media_type="text/xml")


async def workflows(request: Request) -> Response:
    """``/data/workflows[/{id}]``: GET one workflow (by ID, or by pipeline_name, ID and launch_time) or
    the list; PUT (or POST) creates or changes one from ``wrk:workflowData/...`` parameters or a
    ``<wrk:Workflow>`` document, answering its ID."""
    actor = await require_actor(request)
    ctx, params = context(request), query_params(request)
    raw = request.path_params.get("id")
    wid = _id(raw) if raw is not None else None
    if request.method in ("GET", "HEAD"):
        given = service.from_params(params)
        if wid is not None:
            return _item(await run_in_threadpool(service.get, ctx, actor, wid), params)
        if given.get("pipeline_name") and given.get("ID") and given.get("launch_time"):
            return _item(await run_in_threadpool(service.find, ctx, actor, given), params)
        # the listing's filters: plain columns, or the attributes as XPaths (``wrk:workflowData/status``)
        plain = [(k, v) for k, v in params if "/" not in k]
        query = ListQuery.from_params(plain + [(service.list_key(a), v) for a, v in given.items()])
        table = await run_in_threadpool(service.listing, ctx, actor, query)
        return render.table_response(table, fmt(params))
    if request.method not in ("PUT", "POST"):
        raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
    body = await bodies.one_document(request, MAX_XML, "A workflow document")
    given = {**(service.from_xml(body) if body and body.strip() else {}), **service.from_params(params)}
    new_id = await run_in_threadpool(service.put, ctx, actor, given, wid)
    return render.text(str(new_id))


async def pipeline_status(request: Request) -> Response:
    """``/data/services/workflows[/{names}]``: pipeline status by experiment or project."""
    actor = await require_actor(request)
    ctx, params = context(request), query_params(request)
    rest = [p for p in request.path_params.get("rest", "").split("/") if p]
    if len(rest) == 2 and rest[0] == "workflowid":
        return _item(await run_in_threadpool(service.get, ctx, actor, _id(rest[1])), params)
    if len(rest) > 1:
        raise InvalidInput(f"Unknown workflow service: {request.url.path}")
    names = rest[0].split(",") if rest else []
    opts = {k: v for k in ("project", "experiment", "status", "display") if (v := param(params, k))}
    found = await run_in_threadpool(service.pipeline_status, ctx, actor, names, opts)
    if isinstance(found, Table):
        return render.table_response(found, fmt(params))
    return _item(found, params)


async def experiment_workflows(request: Request) -> Response:
    """``.../experiments/{E}/workflows``: an experiment's workflows."""
    actor = await require_actor(request)
    params = query_params(request)
    p = request.path_params
    addr = A.Address(
        A.EXPERIMENT, project=p.get("project"), subject=p.get("subject"), experiment=p["experiment"]
    )
    table = await run_in_threadpool(
        service.of_experiment, context(request), actor, addr, ListQuery.from_params(params)
    )
    return render.table_response(table, fmt(params))
