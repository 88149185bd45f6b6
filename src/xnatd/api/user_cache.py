"""XNAT's user cache over HTTP: ``/data/user/cache/resources[/{name}[/files[/{path}]]]``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from xnatd.api import bodies, render
from xnatd.api.archive import fmt, query_params
from xnatd.api.auth import context, require_actor
from xnatd.api.streaming import read_ahead
from xnatd.domain.params import flag, param
from xnatd.domain.table import ListQuery
from xnatd.errors import InvalidInput, MethodNotAllowed
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import user_cache as service
from xnatd.services.archive.files import UploadPart, media_type
from xnatd.threads import run_in_threadpool


async def resources(request: Request) -> Response:
    """``GET /data/user/cache/resources``: the caller's cache folders."""
    actor = await require_actor(request)
    params = query_params(request)
    table = await run_in_threadpool(service.resources, context(request), actor, ListQuery.from_params(params))
    return render.table_response(table, fmt(params))


async def resource(request: Request) -> Response:
    """``/data/user/cache/resources/{name}[/files]``: GET lists its files (``format=zip``: all of them),
    PUT creates it, POST uploads (multipart), DELETE removes it."""
    actor = await require_actor(request)
    ctx, params, name = context(request), query_params(request), request.path_params["name"]
    method = request.method
    if method in ("GET", "HEAD"):
        if fmt(params) == "zip":
            chunks, length = await run_in_threadpool(service.zipped, ctx, actor, name, 0)
            headers = render.stored_file_headers(f"{name}.zip", "application/zip")
            if length is not None:
                headers["Content-Length"] = str(length)
            return StreamingResponse(read_ahead(chunks), media_type="application/zip", headers=headers)
        table = await run_in_threadpool(service.files, ctx, actor, name, ListQuery.from_params(params))
        return render.table_response(table, fmt(params))
    if method == "DELETE":
        await run_in_threadpool(service.delete, ctx, actor, name, None)
        return Response(status_code=200)
    if (
        method == "PUT"
        and not request.url.path.rstrip("/").endswith("/files")
        and not bodies.has_body(request)
    ):
        await run_in_threadpool(service.create, ctx, actor, name)
        return Response(status_code=200)
    if flag(params, "inbody"):
        raise InvalidInput("Please use HTTP PUT request to specify a file name in the URL.")
    return await _upload(request, ctx, actor, name, None)


async def cached_file(request: Request) -> Response:
    """``/data/user/cache/resources/{name}/files/{path}``: GET the file, PUT it (raw body or one
    multipart file; ``extract=true`` unpacks an archive), DELETE it (``a,b``: several)."""
    actor = await require_actor(request)
    ctx, name, path = context(request), request.path_params["name"], request.path_params["path"]
    if request.method in ("GET", "HEAD"):
        found = await run_in_threadpool(service.file_path, ctx, actor, name, path)
        kind = media_type(found.name)
        return FileResponse(found, media_type=kind, headers=render.stored_file_headers(found.name, kind))
    if request.method == "DELETE":
        await run_in_threadpool(service.delete, ctx, actor, name, path)
        return Response(status_code=200)
    if request.method not in ("PUT", "POST"):
        raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
    return await _upload(request, ctx, actor, name, path)


async def _upload(request: Request, ctx: Context, actor: Actor, name: str, path: str | None) -> Response:
    params = query_params(request)
    if bodies.is_multipart(request):
        parts = bodies.multipart_parts(request)
    elif bodies.has_body(request):
        parts = bodies.raw_part(request, param(params, "filename"))
    else:
        raise InvalidInput("You tried to upload to this resource, but didn't provide any data.")
    await service.upload(ctx, actor, name, path, parts, flag(params, "extract"))
    return render.text("File(s) successfully uploaded", 201 if request.method == "POST" else 200)


async def cached_part(ctx: Context, actor: Actor, src: str) -> AsyncIterator[UploadPart]:
    """The file a ``src=/user/cache/resources/{name}/files/{path}`` names, as an upload part (XNAT's
    import of an already-uploaded file)."""
    segments = [p for p in src.strip().split("/") if p]
    if segments[:1] in (["data"], ["REST"]):
        segments = segments[1:]
    if len(segments) < 6 or segments[:3] != ["user", "cache", "resources"] or segments[4] != "files":
        raise InvalidInput(
            f"src must name a file of your cache: /user/cache/resources/NAME/files/PATH, not {src}"
        )
    found = await run_in_threadpool(service.file_path, ctx, actor, segments[3], "/".join(segments[5:]))

    async def chunks() -> AsyncIterator[bytes]:
        with found.open("rb") as fh:
            while chunk := await run_in_threadpool(fh.read, 1 << 20):
                yield chunk

    yield UploadPart(found.name, media_type(found.name), chunks())
