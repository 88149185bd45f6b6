"""The ASGI application: routes, error translation, and start-up (migrations, first admin)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from xnatd import errors
from xnatd.api import archive, dicomscp, jobs, more_routes, openapi, prearchive, site, users
from xnatd.api import search as search_api
from xnatd.api.errors import handle_domain_error, handle_unexpected
from xnatd.config import Settings
from xnatd.jobs import dispatcher
from xnatd.services.ingest import helper_pool, rebuilder
from xnatd.services.operations.bootstrap import open_context
from xnatd.ui import routes as ui_routes

log = logging.getLogger("xnatd")
ALL = ["GET", "HEAD", "PUT", "POST", "DELETE"]
CONTEXT_PATHS = ("/xnat",)


class ContextPath:
    """Accept XNAT URLs that carry a servlet context path (``http://host/xnat/data/...``) or a
    trailing slash, as XNAT (Tomcat) does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            new = path
            for prefix in CONTEXT_PATHS:
                if path == prefix or path.startswith(prefix + "/"):
                    new = path[len(prefix) :] or "/"
                    break
            if len(new) > 1 and new.endswith("/"):
                new = new.rstrip("/") or "/"  # ``/data/JSESSION/``, ``/data/archive/projects/``
            if new != path:
                scope = dict(scope, path=new, raw_path=new.encode())
        await self.app(scope, receive, send)


def routes() -> list[Route]:
    # Starlette tries routes in order: the API's come first, the import service first of all (a
    # stream of one-file requests is the busiest caller); the pages, all under /app, come last
    out = [Route("/", site.root, methods=["GET", "HEAD"]), *more_routes.root_routes()]
    for root in ("/data", "/REST"):
        out += [
            Route(f"{root}/services/import", prearchive.services_import, methods=ALL),
            Route(f"{root}/JSESSION", site.jsession, methods=["GET", "POST", "DELETE"]),
            Route(f"{root}/services/auth", site.services_auth, methods=["PUT", "POST"]),
            Route(f"{root}/auth", site.data_auth, methods=["GET"]),
            Route(f"{root}/users", users.data_users, methods=["GET"]),
            Route(f"{root}/services/tokens/{{rest:path}}", site.tokens, methods=["GET", "POST", "PUT"]),
            Route(f"{root}/version", site.version, methods=["GET"]),
            Route(f"{root}/search/elements", site.search_element_list, methods=["GET"]),
            Route(f"{root}/search/elements/{{element}}", site.search_element_list, methods=["GET"]),
            Route(f"{root}/search", search_api.search, methods=ALL),  # before the catch-all
            Route(f"{root}/services/archive", prearchive.services_archive, methods=ALL),
            Route(f"{root}/services/prearchive/{{op}}", prearchive.services_prearchive, methods=ALL),
            Route(f"{root}/prearchive/{{rest:path}}", prearchive.prearchive_endpoint, methods=ALL),
            *more_routes.data_routes(root),
            Route(f"{root}/{{rest:path}}", archive.endpoint, methods=ALL),
        ]
    out += [
        *more_routes.xapi_before(),
        Route("/xapi/siteConfig/buildInfo", site.build_info, methods=["GET"]),
        Route("/xapi/siteConfig/buildInfo/{key}", site.build_info, methods=["GET"]),
        Route("/xapi/users", users.user_list, methods=["GET", "POST"]),
        Route("/xapi/users/profile", users.user_one, methods=["GET", "PUT"]),
        Route("/xapi/users/active", users.active_users, methods=["GET"]),
        Route("/xapi/users/{name}/roles", users.user_roles, methods=["GET"]),
        Route("/xapi/users/{name}", users.user_one, methods=["GET", "PUT"]),
        Route("/xapi/access/projects", users.access_projects, methods=["GET"]),
        Route("/xapi/schemas", site.schemas, methods=["GET"]),
        Route("/xapi/schemas/{name}", site.schema, methods=["GET"]),
        Route("/xapi/dicomscp", dicomscp.receivers, methods=["GET", "POST"]),
        Route("/xapi/dicomscp/{id}", dicomscp.receiver, methods=["GET", "PUT", "DELETE"]),
        Route("/xapi/dicomscp/{id}/enabled", dicomscp.enabled, methods=["GET"]),
        Route("/xapi/dicomscp/{id}/enabled/{flag}", dicomscp.enabled, methods=["PUT"]),
        Route("/xapi/jobs", jobs.jobs, methods=["GET", "POST"]),
        Route("/xapi/jobs/commands", jobs.commands, methods=["GET", "POST"]),
        Route("/xapi/jobs/commands/{name}", jobs.command, methods=["GET", "PUT", "DELETE"]),
        Route("/xapi/jobs/auto/{project}", jobs.automation, methods=["GET", "PUT"]),
        Route("/xapi/jobs/{job_id}", jobs.job, methods=["GET"]),
        Route("/xapi/jobs/{job_id}/log", jobs.job_log, methods=["GET"]),
        Route("/xapi/jobs/{job_id}/cancel", jobs.job_cancel, methods=["POST"]),
        Route("/xapi/openapi.json", openapi.document, methods=["GET"]),
        Route("/xapi/v2/api-docs", openapi.document, methods=["GET"]),  # where XNAT serves its Swagger
        *more_routes.xapi_after(),
    ]
    return out + ui_routes.routes()


def create_app(settings: Settings) -> ASGIApp:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx = open_context(settings)
        app.state.ctx = ctx
        app.state.realm = settings.site_id
        builder = asyncio.create_task(rebuilder.run(ctx))  # builds idle prearchive sessions
        jobs_loop = dispatcher.start_in_server(ctx)  # runs queued jobs (see docs/jobs.md)
        # Everything loaded so far (modules, classes, functions: some 100,000 objects) lives as long
        # as the process: out of the collector's sight, a full collection during a zip import took
        # 40-80 ms instead of 10.
        gc.freeze()
        try:
            yield
        finally:
            if jobs_loop is not None:
                await asyncio.to_thread(jobs_loop.stop)
            builder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await builder
            await asyncio.to_thread(helper_pool.stop_helpers, ctx)
            ctx.db.dispose()

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={errors.XnatdError: handle_domain_error, Exception: handle_unexpected},
    )
    app.router.redirect_slashes = False
    return ContextPath(app)
