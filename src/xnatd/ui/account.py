"""Logging in and out, the user's alias tokens, and the site administrator's user page."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from xnatd.domain.table import ListQuery
from xnatd.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from xnatd.services.access import auth, token_admin, tokens, users
from xnatd.services.access.context import Context
from xnatd.threads import run_in_threadpool
from xnatd.ui import web
from xnatd.ui.web import Page, page


async def login(request: Request) -> Response:
    """``GET``: the form; ``POST``: check the password (or an alias token) and open a session."""
    next_url = web.local_path(request.query_params.get("next"), "/app/projects")
    if request.method == "GET":
        if await web.current(request) is not None:
            return RedirectResponse(next_url, status_code=303)
        return web.anonymous_page(request, "login.html", next_url=next_url)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > web.MAX_FORM:
            break
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    expected = request.cookies.get(web.LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(form.get("token", "").encode(), expected.encode()):
        return web.anonymous_page(
            request, "login.html", 403, next_url=next_url, error="The login form expired: try again."
        )
    ctx: Context = request.app.state.ctx
    try:
        actor = await run_in_threadpool(
            auth.check_password, ctx, form.get("username", ""), form.get("password", "")
        )
    except Unauthenticated:
        return web.anonymous_page(
            request, "login.html", 401, next_url=next_url, error="Wrong user name or password."
        )
    session_id = await run_in_threadpool(auth.open_session, ctx, actor)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(web.COOKIE, session_id, path="/", httponly=True, samesite="lax")
    response.delete_cookie(web.LOGIN_COOKIE, path="/app")
    return response


@page
async def logout(p: Page) -> Response:
    await run_in_threadpool(auth.close_session, p.ctx, p.session_id)
    response = RedirectResponse("/app/login", status_code=303)
    response.delete_cookie(web.COOKIE, path="/")
    return response


@page
async def home(p: Page) -> Response:
    return p.redirect("/app/projects")


@page
async def token_page(p: Page) -> Response:
    """Alias tokens: a temporary user name and password for scripts and upload tools."""
    issued = None
    if p.request.method == "POST":
        if p.field("action") == "issue":
            issued = await p.call(tokens.issue)
        elif p.field("action") == "invalidate":
            await p.call(token_admin.revoke, p.field("alias"))
            return p.redirect("/app/tokens", f"Token {p.field('alias')} no longer works.")
    mine = await p.call(tokens.show)
    return p.render(
        "tokens.html",
        issued=issued,
        tokens=mine,
        lifetime=p.ctx.settings.token_timeout // 3600,
        rest="/data/services/tokens/show",
        rest_query="",
    )


@page
async def account_page(p: Page) -> Response:
    """The logged-in user's account; ``POST`` changes the password (the current one is asked)."""
    if p.request.method == "POST":
        if p.form.get("password", "") != p.form.get("again", ""):
            raise InvalidInput("The two new passwords differ.")
        change = {"password": p.form.get("password", ""), "currentPassword": p.form.get("current", "")}
        await p.call(users.update, p.actor.username, change)
        return p.redirect("/app/account", "Password changed. Your other logins and alias tokens have ended.")
    me = await p.call(users.get, p.actor.username)
    return p.render(
        "account.html", me=me, min_length=p.ctx.settings.password_min_length, rest="/xapi/users/profile"
    )


@page
async def users_page(p: Page) -> Response:
    """Site administrators: every account, create one, enable, disable, promote, set a password."""
    if not p.actor.is_admin:
        raise NotFound("Page not found")
    if p.request.method == "POST":
        return await _change_user(p)
    table = await p.call(users.table, ListQuery())
    details = {row["login"]: await p.call(users.get, row["login"]) for row in table.rows}
    return p.render("users.html", users=list(details.values()), rest="/xapi/users", rest_query="")


async def _change_user(p: Page) -> Response:
    action, name = p.field("action"), p.field("username")
    if action == "create":
        await p.call(
            users.create,
            {
                "username": name,
                "password": p.form.get("password", ""),
                "email": p.field("email"),
                "firstName": p.field("first_name"),
                "lastName": p.field("last_name"),
                "admin": p.field("admin") == "on",
                "enabled": True,
            },
        )
        return p.redirect("/app/admin/users", f"User {name} created.")
    options: dict[str, dict[str, object]] = {
        "enable": {"enabled": True},
        "disable": {"enabled": False},
        "promote": {"admin": True},
        "demote": {"admin": False},
        "password": {"password": p.form.get("password", "")},
    }
    changes = options.get(action, {})
    if action == "password" and not p.form.get("password"):
        raise InvalidInput("Give the new password.")
    if not changes:
        raise NotFound(f"Unknown action {action}")
    if name == p.actor.username and action in ("disable", "demote"):
        raise Forbidden("You cannot disable or demote yourself here.")
    await p.call(users.update, name, changes)
    return p.redirect("/app/admin/users", f"User {name}: {action} done.")
