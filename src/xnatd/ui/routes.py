"""The pages' URLs, all under ``/app`` (``api/app.py`` adds them to the application)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from xnatd.errors import NotFound
from xnatd.ui import account, browse, manage, web, workflow

GP = ["GET", "POST"]
STATIC = {"style.css": "text/css", "app.js": "text/javascript"}
SESSION = "/app/projects/{project}/subjects/{subject}/experiments/{experiment}"


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        raise NotFound("No such file")
    headers = {"Cache-Control": "max-age=300"}
    return FileResponse(web.HERE / "static" / name, media_type=STATIC[name], headers=headers)


@web.page
async def not_found(p: web.Page) -> Response:
    raise NotFound("Page not found")


def routes() -> list[Route]:
    return [
        Route("/app", account.home, methods=["GET"]),
        Route("/app/login", account.login, methods=GP),
        Route("/app/logout", account.logout, methods=["POST"]),
        Route("/app/static/{name}", static, methods=["GET"]),
        Route("/app/tokens", account.token_page, methods=GP),
        Route("/app/account", account.account_page, methods=GP),
        Route("/app/admin/users", account.users_page, methods=GP),
        Route("/app/search", browse.search_page, methods=["GET"]),
        Route("/app/projects", browse.projects_page, methods=GP),
        Route("/app/projects/{project}", browse.project_page, methods=GP),
        Route("/app/projects/{project}/subjects/{subject}", browse.subject_page, methods=GP),
        Route(SESSION, browse.session_page, methods=GP),
        Route("/app/files/{rest:path}", manage.manage_page, methods=GP),
        Route("/app/upload/{rest:path}", manage.upload_endpoint, methods=["POST"]),
        Route("/app/prearchive", workflow.prearchive_page, methods=GP),
        Route("/app/jobs", workflow.jobs_page, methods=GP),
        Route("/app/jobs/{job_id}", workflow.job_page, methods=GP),
        Route("/app/{rest:path}", not_found, methods=GP),
    ]
