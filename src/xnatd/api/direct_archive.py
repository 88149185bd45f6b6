"""XNAT's Direct-Archive session API: ``/xapi/direct-archive`` (POST a page request: the staging
sessions), ``/xapi/direct-archive/{project}/{tag}/{name}`` (GET one; POST archives it now) and
``/xapi/direct-archive/{id}`` (DELETE)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xnatd.api import bodies
from xnatd.api.auth import context, require_actor
from xnatd.errors import InvalidInput
from xnatd.services.prearchive import direct_archive as service
from xnatd.threads import run_in_threadpool


async def sessions(request: Request) -> Response:
    """``POST /xapi/direct-archive`` (a paginated request: ``page``, ``size``, ``sortColumn``,
    ``sortDir``; GET takes the defaults): the Direct-Archive sessions the caller may manage."""
    actor = await require_actor(request)
    body = await bodies.small_body(request, 64 * 1024, "The request") if request.method == "POST" else b""
    try:
        page: Any = json.loads(body) if body.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("The body must be a JSON paginated request") from None
    if not isinstance(page, dict):
        raise InvalidInput("The body must be a JSON object")
    return JSONResponse(await run_in_threadpool(service.listing, context(request), actor, page))


async def session(request: Request) -> Response:
    """``/xapi/direct-archive/{project}/{tag}/{name}``: GET the session; POST archives it now."""
    actor = await require_actor(request)
    p = request.path_params
    if request.method == "POST":
        await run_in_threadpool(
            service.archive_now, context(request), actor, p["project"], p["tag"], p["name"]
        )
        return Response(status_code=200)
    return JSONResponse(
        await run_in_threadpool(service.one, context(request), actor, p["project"], p["tag"], p["name"])
    )


async def delete(request: Request) -> Response:
    """``DELETE /xapi/direct-archive/{id}``: drop a staging session and its files."""
    actor = await require_actor(request)
    raw = request.path_params["id"]
    if not raw.isdecimal() or len(raw) > 12:
        raise InvalidInput(f"Not a Direct-Archive session ID: {raw}")
    await run_in_threadpool(service.delete, context(request), actor, int(raw))
    return Response(status_code=200)
