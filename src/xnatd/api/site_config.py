"""``/xapi/siteConfig`` (XNAT's site preferences), ``/xapi/plugins``, ``POST /login`` (XNAT's form login)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from xnatd.api import bodies
from xnatd.api.auth import context, require_actor
from xnatd.api.site import set_session_cookies
from xnatd.errors import InvalidInput, NotFound
from xnatd.services.access import auth
from xnatd.services.operations import site_config as service
from xnatd.threads import run_in_threadpool

MAX_BODY = 2 << 20
FORM = "application/x-www-form-urlencoded"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _map_body(request: Request) -> dict[str, Any]:
    """A JSON object or a form of ``key=value`` pairs, as XNAT's ``setSiteConfigProperties`` takes."""
    body = await bodies.small_body(request, MAX_BODY, "The site configuration")
    if _media_type(request) == FORM:
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("The body must be a JSON object of site configuration properties") from None
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object of site configuration properties")
    return data


async def site_config(request: Request) -> Response:
    """``GET|POST /xapi/siteConfig``: the preferences the caller may read; set a map of them."""
    actor = await require_actor(request)
    ctx = context(request)
    if request.method == "POST":
        await run_in_threadpool(service.set_values, ctx, actor, await _map_body(request))
        return Response(status_code=200)
    return JSONResponse(await run_in_threadpool(service.all_values, ctx, actor))


async def site_config_key(request: Request) -> Response:
    """``GET|POST /xapi/siteConfig/{key}``: one preference; POST sets it from the body."""
    actor = await require_actor(request)
    ctx, key = context(request), request.path_params["key"]
    if request.method == "POST":
        body = await bodies.small_body(request, MAX_BODY, "The value")
        value = service.parse_single(body, _media_type(request))
        await run_in_threadpool(service.set_values, ctx, actor, {key: value})
        return Response(status_code=200)
    return JSONResponse(await run_in_threadpool(service.value, ctx, actor, key))


async def uptime(request: Request) -> Response:
    await require_actor(request)
    return JSONResponse(service.uptime())


async def uptime_display(request: Request) -> Response:
    await require_actor(request)
    return JSONResponse(service.uptime_display())


async def plugins(request: Request) -> Response:
    """``GET /xapi/plugins``: the installed XNAT plugins by ID; xnatd runs none."""
    await require_actor(request)
    return JSONResponse({})


async def plugin(request: Request) -> Response:
    await require_actor(request)
    raise NotFound(f"No plugin with the ID {request.path_params['plugin']}")


async def form_login(request: Request) -> Response:
    """``POST /login``: XNAT's login form (``username``, ``password``); a session cookie and a redirect
    home on success, 401 otherwise (XNAT sends the browser back to its login page)."""
    body = await bodies.small_body(request, 64 * 1024, "The login form")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if "username" not in form or "password" not in form:
        raise InvalidInput("Give username and password as form fields")
    ctx = context(request)
    actor = await run_in_threadpool(auth.check_password, ctx, form["username"], form["password"])
    session_id = await run_in_threadpool(auth.open_session, ctx, actor)
    response = PlainTextResponse("", status_code=302, headers={"Location": "/"})
    set_session_cookies(request, response, session_id)
    return response
