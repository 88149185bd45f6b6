"""What every page shares: who is logged in, CSRF, templates, flash messages and error pages.

Pages use the login sessions of ``/data/JSESSION`` (the ``JSESSIONID`` cookie), so a user logged in
here can also click through to REST URLs, and a curl script's session works here. A browser that is
not logged in is sent to the login page; a domain error becomes an HTML page with the same status
the REST API would answer, or, after a form, a message on the page the form came from.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from xnatd import errors
from xnatd.domain import wording
from xnatd.services.access import auth
from xnatd.services.access.context import Actor, Context
from xnatd.threads import run_in_threadpool

COOKIE = "JSESSIONID"  # the same sessions as /data/JSESSION
LOGIN_COOKIE = "xnatd_login"  # double-submit token of the login form (there is no session yet)
FLASH = "xnatd_flash"
# Pages load only their own style sheet, script and pictures: an injected tag could do nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
MAX_FORM = 1024 * 1024
HERE = Path(__file__).parent
T = TypeVar("T")

STATUS: dict[type[errors.XnatdError], int] = {
    errors.NotFound: 404,
    errors.Forbidden: 403,
    errors.Unauthenticated: 401,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.StorageFull: 507,
    errors.InvalidLabel: 417,
    errors.MissingContent: 417,
    errors.NotAcceptable: 406,
    errors.MethodNotAllowed: 405,
}


def status_of(exc: errors.XnatdError) -> int:
    """The status the REST API gives the same error (400 for any other bad input)."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def human_size(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["size"] = human_size
templates.filters["count"] = wording.count
templates.filters["path"] = lambda value: quote(str(value), safe="/")


def csrf_for(session_id: str) -> str:
    """A form token tied to the login session: a page of another site cannot know it."""
    return hashlib.sha256(b"xnatd-csrf\0" + session_id.encode()).hexdigest()[:40]


def local_path(target: str | None, default: str) -> str:
    """Only redirect to our own pages (never ``//evil.example`` or ``https://...``)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@dataclass
class Page:
    """One request to a page, with the logged-in user and (after a POST) its checked form."""

    request: Request
    ctx: Context
    actor: Actor
    session_id: str
    form: dict[str, str] = field(default_factory=dict)
    uploads: list[UploadFile] = field(default_factory=list)
    flashes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def csrf(self) -> str:
        return csrf_for(self.session_id)

    @property
    def scripted(self) -> bool:
        """A request sent by our own script (uploads): it wants plain-text answers."""
        return "x-csrf-token" in self.request.headers

    def param(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def field(self, name: str, default: str = "") -> str:
        return self.form.get(name, default).strip()

    def base_url(self) -> str:
        return base_url(self.request)

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run a service function as the logged-in user, off the event loop."""
        return await run_in_threadpool(func, self.ctx, self.actor, *args)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        flash = self.request.cookies.get(FLASH)
        if flash:
            kind, _, text = unquote(flash).partition(":")
            self.flashes.append((kind, text))
        body = templates.get_template(template).render(page=self, actor=self.actor, **values)
        response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
        if flash:
            response.delete_cookie(FLASH, path="/")
        return response

    def redirect(self, target: str, message: str = "", kind: str = "ok") -> RedirectResponse:
        response = RedirectResponse(target, status_code=303)
        if message:
            flash(response, message, kind)
        return response

    def back(self) -> str:
        """Where a form returns to: its ``back`` field, else the page it was posted to."""
        return local_path(self.form.get("back"), self.request.url.path)

    async def read_form(self) -> None:
        """Parse a POST body and check its CSRF token (form field or, for scripts, a header)."""
        ctype = self.request.headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            body = b""
            async for chunk in self.request.stream():
                body += chunk
                if len(body) > MAX_FORM:
                    raise errors.TooLarge("Form too large")
            self.form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            given = self.form.get("csrf", "")
        elif ctype.startswith("multipart/form-data"):
            parsed = await self.request.form(max_files=100_000, max_fields=100)
            self.form = {k: v for k, v in parsed.multi_items() if isinstance(v, str)}
            self.uploads = [v for _, v in parsed.multi_items() if isinstance(v, UploadFile) and v.filename]
            given = self.form.get("csrf", "")
        else:
            given = self.request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(given.encode(), self.csrf.encode()):
            raise errors.Forbidden("The form has expired or did not come from this site: reload the page.")

    def confirmation(self, question: str) -> Response | None:
        """Without ``confirmed=yes`` (the script's confirm dialog sets it), a page that asks first."""
        if self.form.get("confirmed") == "yes":
            return None
        fields = {k: v for k, v in self.form.items() if k not in ("csrf", "confirmed")}
        return self.render("confirm.html", question=question, fields=fields, action=self.request.url.path)

    def failed(self, exc: errors.XnatdError) -> Response:
        status = status_of(exc)
        if self.scripted:
            return PlainTextResponse(str(exc), status_code=status)
        if self.request.method == "POST" and not isinstance(exc, errors.Forbidden | errors.NotFound):
            return self.redirect(self.back(), str(exc), "error")
        return self.render("error.html", status=status, status_code=status, message=str(exc))


def flash(response: Response, message: str, kind: str = "ok") -> None:
    response.set_cookie(FLASH, quote(f"{kind}:{message[:500]}"), path="/", httponly=True, samesite="lax")


async def current(request: Request) -> tuple[Actor, str] | None:
    """The logged-in user and their session id, from the JSESSIONID cookie."""
    ctx: Context = request.app.state.ctx
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    actor = await run_in_threadpool(auth.session_actor, ctx, session_id)
    return None if actor is None or actor.is_guest else (actor, session_id)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/app/login?next={quote(target, safe='')}", status_code=303)


Handler = Callable[[Page], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a page handler: log-in check, CSRF check of every POST, errors as pages."""

    async def endpoint(request: Request) -> Response:
        who = await current(request)
        if who is None:
            if "x-csrf-token" in request.headers:
                return PlainTextResponse("Your session has ended: log in again.", status_code=401)
            return login_redirect(request)
        p = Page(request, request.app.state.ctx, who[0], who[1])
        try:
            if request.method == "POST":
                await p.read_form()
            return await handler(p)
        except errors.XnatdError as exc:
            return p.failed(exc)
        finally:
            for upload in p.uploads:
                await upload.close()

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def base_url(request: Request) -> str:
    """The site's address for the URLs a page shows people to copy: the ``site_url`` setting (the
    public name behind a proxy), else the address this request came to."""
    ctx: Context = request.app.state.ctx
    return ctx.settings.site_url.rstrip("/") or str(request.base_url).rstrip("/")


def anonymous_page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A page for someone not logged in (the login form), with its own CSRF token cookie."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_hex(16)
    body = templates.get_template(template).render(
        page=None, actor=None, login_token=token, request_base=base_url(request), **values
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    response.set_cookie(LOGIN_COOKIE, token, path="/app", httponly=True, samesite="strict")
    return response
