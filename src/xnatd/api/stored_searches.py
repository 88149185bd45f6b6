"""Stored searches over HTTP: ``/data/search/saved`` (GET), ``/data/search/saved/{id}`` (GET, PUT,
DELETE) and ``/data/search/saved/{id}/results`` (GET), as pyxnat's ``manage.search`` calls them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from xnatd.api import bodies, render
from xnatd.api.archive import fmt, query_params
from xnatd.api.auth import context, require_actor
from xnatd.domain import search as S
from xnatd.domain.params import flag, param
from xnatd.domain.table import ListQuery
from xnatd.errors import InvalidInput, MethodNotAllowed
from xnatd.services.search import stored_searches as service
from xnatd.threads import run_in_threadpool


async def saved_list(request: Request) -> Response:
    """``GET /data/search/saved``: the stored searches the caller may see."""
    actor = await require_actor(request)
    params = query_params(request)
    include_tag, everything = param(params, "includeTag"), flag(params, "all")
    query = ListQuery.from_params([(k, v) for k, v in params if k not in ("includeTag", "user")])
    table = await run_in_threadpool(service.listing, context(request), actor, query, include_tag, everything)
    return render.table_response(table, fmt(params))


async def saved_one(request: Request) -> Response:
    """``/data/search/saved/{id}``: GET the stored search, PUT (``inbody``) a bundle under that ID,
    DELETE it."""
    actor = await require_actor(request)
    ctx, sid, params = context(request), request.path_params["id"], query_params(request)
    if request.method in ("GET", "HEAD"):
        body = await run_in_threadpool(service.document, ctx, actor, sid)
        return Response(body, media_type="text/xml")
    if request.method == "DELETE":
        await run_in_threadpool(service.delete, ctx, actor, sid)
        return Response(status_code=200)
    if request.method not in ("PUT", "POST"):
        raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
    document = await bodies.one_document(request, S.MAX_BYTES, "The search document")
    if document is None:
        raise InvalidInput("Send the search bundle (<xdat:bundle>) as the request body")
    saved = await run_in_threadpool(service.save, ctx, actor, sid, document, flag(params, "saveAs"))
    return render.text(saved)


async def saved_results(request: Request) -> Response:
    """``GET /data/search/saved/{id}/results``: the stored search run for the caller."""
    actor = await require_actor(request)
    params = query_params(request)
    sort_by = param(params, "sortBy")
    descending = (param(params, "sortOrder") or "").strip().upper() == "DESC"
    table = await run_in_threadpool(
        service.results, context(request), actor, request.path_params["id"], sort_by, descending
    )
    return render.table_response(table, fmt(params))
