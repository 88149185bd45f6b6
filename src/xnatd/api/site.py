"""Site-level endpoints: logins and sessions, version and build info, schemas and search elements."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from xnatd import __version__
from xnatd.api import render
from xnatd.api.auth import COOKIE, basic_credentials, context, optional_actor, require_actor
from xnatd.domain import search_elements, xsd
from xnatd.domain.table import Table
from xnatd.errors import InvalidInput, NotFound, Unauthenticated
from xnatd.services.access import auth
from xnatd.services.access import tokens as token_service
from xnatd.services.access.context import Actor
from xnatd.threads import run_in_threadpool

BUILD = {
    "version": "1.8.10",
    "buildNumber": "xnatd-" + __version__,
    "buildDate": "",
    "sha": "",
    "shaFull": "",
    "commit": "",
    "branch": "main",
    "tag": "",
    "isDirty": "false",
    "timestamp": "",
    "hostName": "",
    "displayHostName": "",
    "nodeId": "",
    "xnatdVersion": __version__,
}


def session_response(request: Request, session_id: str) -> Response:
    """The session id as text, with the cookies xnatpy looks for (JSESSIONID, SESSION_EXPIRATION_TIME)."""
    response = render.text(session_id)
    set_session_cookies(request, response, session_id)
    return response


def set_session_cookies(request: Request, response: Response, session_id: str) -> None:
    timeout_ms = context(request).settings.session_timeout * 1000
    response.set_cookie(COOKIE, session_id, path="/", httponly=True, samesite="lax")
    expiry = f'"{int(time.time() * 1000)},{timeout_ms}"'
    response.headers.append("Set-Cookie", f"SESSION_EXPIRATION_TIME={expiry}; Path=/")


async def jsession(request: Request) -> Response:
    ctx = context(request)
    if request.method == "DELETE":
        session_id = request.cookies.get(COOKIE)
        if session_id:
            await run_in_threadpool(auth.close_session, ctx, session_id)
        response = render.text("")
        response.delete_cookie(COOKIE, path="/")
        return response
    current = request.cookies.get(COOKIE)
    if current and await run_in_threadpool(auth.session_actor, ctx, current) is not None:
        return session_response(request, current)
    actor = await require_actor(request)
    session_id = await run_in_threadpool(auth.open_session, ctx, actor)
    return session_response(request, session_id)


async def services_auth(request: Request) -> Response:
    """``PUT|POST /data/services/auth`` with a form body ``username=..&password=..`` (public)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > 64 * 1024:
            raise InvalidInput("Login form too large")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    form.update({k: v for k, v in request.query_params.items() if k in ("username", "password")})
    if "username" not in form or "password" not in form:
        creds = basic_credentials(request)
        if creds is None:
            raise InvalidInput("Give username and password as form fields")
        form["username"], form["password"] = creds
    ctx = context(request)
    actor = await run_in_threadpool(auth.check_password, ctx, form["username"], form["password"])
    session_id = await run_in_threadpool(auth.open_session, ctx, actor)
    return session_response(request, session_id)


async def tokens(request: Request) -> Response:
    """``/data/services/tokens/{issue[/user/U] | validate/A/S | invalidate/A/S | show}``."""
    actor = await require_actor(request)
    parts = [p for p in request.path_params["rest"].split("/") if p]
    ctx = context(request)
    if parts == ["issue"]:
        return JSONResponse(await run_in_threadpool(token_service.issue, ctx, actor))
    if len(parts) == 3 and parts[:2] == ["issue", "user"]:
        return JSONResponse(await run_in_threadpool(token_service.issue, ctx, actor, parts[2]))
    if len(parts) == 3 and parts[0] == "validate":
        return JSONResponse(await run_in_threadpool(token_service.validate, ctx, actor, parts[1], parts[2]))
    if len(parts) == 3 and parts[0] == "invalidate":
        return JSONResponse(await run_in_threadpool(token_service.invalidate, ctx, actor, parts[1], parts[2]))
    if parts == ["show"]:
        return JSONResponse(await run_in_threadpool(token_service.show, ctx, actor))
    raise NotFound(f"Unknown token service: {request.url.path}")


async def data_auth(request: Request) -> Response:
    actor = await require_actor(request)
    return render.text(f"User '{actor.username}' is logged in")


async def version(request: Request) -> Response:
    raise NotFound("The /data/version service is gone since XNAT 1.7: use /xapi/siteConfig/buildInfo")


async def build_info(request: Request) -> Response:
    key = request.path_params.get("key")
    if key:
        if key not in BUILD:
            raise NotFound(f"No build property {key}")
        return render.text(BUILD[key])
    return JSONResponse(BUILD)


async def schemas(request: Request) -> Response:
    await require_actor(request)
    return JSONResponse(xsd.schema_names())


async def schema(request: Request) -> Response:
    await require_actor(request)
    name = request.path_params["name"].removesuffix(".xsd")
    return Response(xsd.render_schema(name), media_type="text/xml")


async def search_element_list(request: Request) -> Response:
    await require_actor(request)
    element = request.path_params.get("element")
    columns, rows = search_elements.field_rows(element) if element else search_elements.element_rows()
    table = Table(columns=columns, rows=rows, total=len(rows))
    return render.table_response(table, request.query_params.get("format"))


async def root(request: Request) -> Response:
    """``GET /``: xnatpy's token login sends Basic credentials here and expects a session cookie back;
    a browser (no Basic credentials) goes to the web pages, which send it to log in if it must."""
    if "authorization" not in request.headers:
        return RedirectResponse("/app/projects", status_code=303)
    actor: Actor | None
    try:
        actor = await optional_actor(request)
    except Unauthenticated:
        actor = None
    response = HTMLResponse(
        "<!doctype html><title>xnatd</title><h1>xnatd</h1><p>An imaging archive that speaks the XNAT REST "
        "API. Try <a href='/data/projects?format=html'>/data/projects</a>.</p>"
    )
    if actor is not None and basic_credentials(request) is not None and not request.cookies.get(COOKIE):
        session_id = await run_in_threadpool(auth.open_session, context(request), actor)
        set_session_cookies(request, response, session_id)
    return response
