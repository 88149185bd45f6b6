"""The users API: `/xapi/users[/{name}[/roles]|/profile[/{name}]|/profiles|/active]`, `/data/users`,
`/xapi/access/projects`."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xnatd.api import render
from xnatd.api.archive import query_params
from xnatd.api.auth import context, require_actor
from xnatd.api.bodies import raw_chunks
from xnatd.domain.table import ListQuery
from xnatd.errors import InvalidInput
from xnatd.services.access import users
from xnatd.threads import run_in_threadpool

MAX_JSON = 64 * 1024


async def json_body(request: Request) -> dict[str, Any]:
    body = b""
    async for chunk in raw_chunks(request):
        body += chunk
        if len(body) > MAX_JSON:
            raise InvalidInput("JSON body too large")
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"Malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (UnicodeDecodeError, RecursionError):  # bytes that are no UTF-8/16/32 text; absurd nesting
        raise InvalidInput("Malformed JSON body: not UTF-8 text, or nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object")
    return data


async def user_list(request: Request) -> Response:
    actor = await require_actor(request)
    if request.method == "POST":
        created = await run_in_threadpool(users.create, context(request), actor, await json_body(request))
        return JSONResponse(created, status_code=201)
    return JSONResponse(await run_in_threadpool(users.names, context(request), actor))


async def user_one(request: Request) -> Response:
    actor = await require_actor(request)
    name = request.path_params.get("name") or actor.username
    if request.method == "PUT":
        doc = await run_in_threadpool(users.update, context(request), actor, name, await json_body(request))
    else:
        doc = await run_in_threadpool(users.get, context(request), actor, name)
    return JSONResponse(doc)


async def user_roles(request: Request) -> Response:
    """A user's site roles (``Administrator`` for site administrators); yours, or anyone's for admins."""
    actor = await require_actor(request)
    name = request.path_params["name"]
    return JSONResponse(await run_in_threadpool(users.roles, context(request), actor, name))


async def active_users(request: Request) -> Response:
    """Users with open login sessions and how many each has (site administrators only)."""
    actor = await require_actor(request)
    return JSONResponse(await run_in_threadpool(users.active, context(request), actor))


async def user_profiles(request: Request) -> Response:
    """``GET /xapi/users/profiles``: every user's JSON object."""
    actor = await require_actor(request)
    return JSONResponse(await run_in_threadpool(users.profiles, context(request), actor))


async def user_profile(request: Request) -> Response:
    """``GET /xapi/users/profile/{name}``: one user's JSON object (XNAT's short profile)."""
    actor = await require_actor(request)
    return JSONResponse(
        await run_in_threadpool(users.get, context(request), actor, request.path_params["name"])
    )


async def data_users(request: Request) -> Response:
    actor = await require_actor(request)
    params = query_params(request)
    table = await run_in_threadpool(users.table, context(request), actor, ListQuery.from_params(params))
    return render.table_response(table, request.query_params.get("format"))


async def access_projects(request: Request) -> Response:
    actor = await require_actor(request)
    return JSONResponse(await run_in_threadpool(users.access_projects, context(request), actor))
