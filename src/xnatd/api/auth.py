"""Who is calling an HTTP request: a JSESSIONID cookie or HTTP Basic credentials."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from xnatd.errors import Unauthenticated
from xnatd.services import auth
from xnatd.services.context import GUEST, Actor, Context
from xnatd.services.threads import run_in_threadpool

COOKIE = "JSESSIONID"


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Malformed Basic credentials") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated("Malformed Basic credentials")
    return user, password


async def optional_actor(request: Request) -> Actor | None:
    """The caller, or None when the request carries no usable credentials at all."""
    ctx: Context = request.app.state.ctx
    session_id = request.cookies.get(COOKIE)
    if session_id:
        actor = await run_in_threadpool(auth.session_actor, ctx, session_id)
        if actor is not None:
            return actor
    creds = basic_credentials(request)
    if creds is not None:
        return await run_in_threadpool(auth.check_password, ctx, creds[0], creds[1])
    return None


async def require_actor(request: Request) -> Actor:
    """The caller; without credentials, the guest where the site allows guests, else 401."""
    actor = await optional_actor(request)
    if actor is None:
        ctx: Context = request.app.state.ctx
        if ctx.settings.guest_access:
            return GUEST
        raise Unauthenticated("The request requires user authentication")
    return actor
