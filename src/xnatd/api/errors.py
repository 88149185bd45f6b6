"""Domain errors become HTTP answers here, in one place: a status and a plain-text reason.

Both clients choke on HTML error pages (pyxnat crashes on XNAT's ``<h3>`` page), so every error
body is ``text/plain``.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from xnatd import errors

log = logging.getLogger("xnatd.api")

STATUS: dict[type[errors.XnatdError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 400,
    errors.InvalidLabel: 417,
    errors.MissingContent: 417,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotAcceptable: 406,
    errors.TooLarge: 413,
    errors.StorageFull: 507,
    errors.MethodNotAllowed: 405,
}
UNAUTHENTICATED = "The request requires user authentication"


def status_of(exc: errors.XnatdError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def error_response(exc: errors.XnatdError, realm: str = "XNAT") -> Response:
    status = status_of(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
        return PlainTextResponse(UNAUTHENTICATED, status_code=401, headers=headers)
    return PlainTextResponse(str(exc), status_code=status, headers=headers)


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.XnatdError)
    realm = getattr(request.app.state, "realm", "XNAT")
    return error_response(exc, realm)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("Unexpected error on %s %s", request.method, request.url.path)
    return PlainTextResponse("Internal server error: see the server log", status_code=500)
