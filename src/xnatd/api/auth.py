"""Who is calling an HTTP request: a JSESSIONID cookie or HTTP Basic credentials."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from xnatd.errors import Unauthenticated
from xnatd.services.access import auth
from xnatd.services.access.context import Actor, Context
from xnatd.threads import run_in_threadpool

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


def credentials(request: Request) -> auth.Credentials:
    """The request's cookie and Basic header, read but not yet checked (no I/O)."""
    session_id = request.cookies.get(COOKIE) or None
    try:
        return auth.Credentials(session_id, basic_credentials(request))
    except Unauthenticated:
        return auth.Credentials(session_id, None, malformed_basic=True)


def context(request: Request) -> Context:
    """The services' shared parts (settings, database) the application was started with."""
    ctx: Context = request.app.state.ctx
    return ctx


async def optional_actor(request: Request) -> Actor | None:
    """The caller, or None when the request carries no usable credentials at all."""
    return await run_in_threadpool(auth.caller, context(request), credentials(request))


async def require_actor(request: Request) -> Actor:
    """The caller; without credentials, the guest where the site allows guests, else 401."""
    return await run_in_threadpool(auth.required_caller, context(request), credentials(request))
