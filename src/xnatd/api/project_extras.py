"""``/data/projects/P/{setting}[/{value}]`` and ``/data/projects/P/users[/{group}/{user}]``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from xnatd.api import render
from xnatd.domain.address import Address
from xnatd.domain.table import ListQuery
from xnatd.errors import MethodNotAllowed, NotFound
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import projects
from xnatd.threads import run_in_threadpool


async def handle(
    request: Request, ctx: Context, actor: Actor, addr: Address, params: list[tuple[str, str]]
) -> Response:
    assert addr.project is not None
    word, rest = addr.extra[0], list(addr.extra[1:])
    method = request.method
    if word == "users":
        return await _users(request, ctx, actor, addr.project, rest, params)
    if method in ("GET", "HEAD") and not rest:
        value = await run_in_threadpool(projects.get_setting, ctx, actor, addr.project, word)
        return render.text(value)
    if method in ("PUT", "POST") and len(rest) == 1:
        await run_in_threadpool(projects.set_setting, ctx, actor, addr.project, word, rest[0])
        return render.text("")
    raise MethodNotAllowed(f"{method} is not supported on {request.url.path}")


async def _users(
    request: Request, ctx: Context, actor: Actor, project: str, rest: list[str], params: list[tuple[str, str]]
) -> Response:
    if not rest and request.method in ("GET", "HEAD"):
        table = await run_in_threadpool(projects.users, ctx, actor, project, ListQuery.from_params(params))
        fmt = next((v for k, v in params if k == "format"), None)
        return render.table_response(table, fmt)
    if len(rest) != 2:
        raise NotFound(f"Unknown address: {request.url.path}")
    if request.method in ("PUT", "POST"):
        await run_in_threadpool(projects.set_user, ctx, actor, project, rest[0], rest[1])
    elif request.method == "DELETE":
        await run_in_threadpool(projects.remove_user, ctx, actor, project, rest[0], rest[1])
    else:
        raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
    return render.text("")
