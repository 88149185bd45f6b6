"""The archive tree: one URL grammar, a handful of handlers serving every level identically.

The path is parsed once into an Address; the handler is chosen by (address kind, method).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from xnatd.api import bodies, project_extras, render
from xnatd.api.auth import context, require_actor
from xnatd.api.streaming import read_ahead
from xnatd.domain import address as A
from xnatd.domain.params import flag, param
from xnatd.domain.table import ListQuery
from xnatd.errors import InvalidInput, MethodNotAllowed, NotAcceptable, NotFound
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import deletion, files, listing_service, objects, resources, sharing, xml_upload
from xnatd.threads import run_in_threadpool

Params = list[tuple[str, str]]
Handler = Callable[[Request, Context, Actor, A.Address, Params], Awaitable[Response]]
OBJECTS = (A.PROJECT, A.SUBJECT, A.EXPERIMENT, A.CHILD)
BUNDLES = ("zip", "tar.gz", "tar", "tgz")


def query_params(request: Request) -> Params:
    """XNAT's query parsing: split on ``&``, then at the first ``=``; keys may be XPaths."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    pairs = parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="replace")
    return [_predicate_key(key, value) for key, value in pairs]


def _predicate_key(key: str, value: str) -> tuple[str, str]:
    """An ``=`` inside an XPath predicate sent unencoded belongs to the key: ``fields/field[name=X]/field=v``
    is key ``fields/field[name=X]/field`` and value ``v``, whether or not the client encoded the key."""
    if key.count("[") <= key.count("]"):
        return key, value
    whole, depth = f"{key}={value}", 0
    for at, char in enumerate(whole):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif char == "=" and depth == 0:
            return whole[:at], whole[at + 1 :]
    return key, value


def fmt(params: Params) -> str | None:
    value = param(params, "format")
    return value.lower() if value else None


async def endpoint(request: Request) -> Response:
    segments = A.split_path(request.path_params["rest"])
    addr = A.parse(segments)
    if addr.extra and addr.kind != A.PROJECT:
        raise NotFound(f"Unknown address: {request.url.path}")
    actor = await require_actor(request)
    params = query_params(request)
    ctx = context(request)
    if addr.extra:
        return await project_extras.handle(request, ctx, actor, addr, params)
    method = "PUT" if request.method == "POST" else request.method
    method = "GET" if method == "HEAD" else method
    handler = ROUTES.get((addr.kind, method))
    if handler is None:
        raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
    return await handler(request, ctx, actor, addr, params)


# --- GET ---------------------------------------------------------------------------------------------


async def get_listing(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    query = ListQuery.from_params(params)
    table = await run_in_threadpool(listing_service.listing, ctx, actor, addr, query, params)
    return render.table_response(table, fmt(params))


async def get_object(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    item = await run_in_threadpool(objects.get_item, ctx, actor, addr)
    return render.item_response(item, fmt(params))


async def get_resource(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    item = await run_in_threadpool(resources.resource_item_of, ctx, actor, addr)
    return render.item_response(item, fmt(params))


async def get_files(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    kind = fmt(params)
    all_levels = flag(params, "all")
    recursive = (param(params, "recursive") or "").strip().lower() != "false"
    if kind in BUNDLES:
        level = param(params, "compression")
        dl = await run_in_threadpool(
            files.bundle,
            ctx,
            actor,
            addr,
            "tar.gz" if kind == "tgz" else kind,
            all_levels,
            _compression(level),
            recursive,
        )
        headers = render.stored_file_headers(dl.filename, dl.media_type)
        if dl.length is not None:
            headers["Content-Length"] = str(dl.length)
        return StreamingResponse(read_ahead(dl.chunks), media_type=dl.media_type, headers=headers)
    table = await run_in_threadpool(
        files.list_files, ctx, actor, addr, ListQuery.from_params(params), all_levels, recursive
    )
    return render.table_response(table, kind)


def _compression(level: str | None) -> int | None:
    """``compression=0..9`` (zlib's levels); anything else is refused rather than failing mid-download."""
    if not level:
        return None
    if len(level) != 1 or not level.isdecimal():
        raise InvalidInput(f"compression must be a level from 0 to 9, not {level!r}")
    return int(level)


async def get_file(request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params) -> Response:
    """One file; a folder path (``files/sub/``) is listed (or zipped) instead, as XNAT does."""
    info = await run_in_threadpool(files.open_file, ctx, actor, addr)
    if info is None:
        if await run_in_threadpool(files.is_folder, ctx, actor, addr):
            return await get_files(request, ctx, actor, addr, params)
        if flag(params, "accept-not-found"):
            return Response(status_code=204)
        raise NotFound("Unable to find file.")
    headers = {**render.stored_file_headers(info.name, info.media_type), "ETag": f'"{info.md5}"'}
    return FileResponse(info.path, media_type=info.media_type, headers=headers)


# --- PUT / POST --------------------------------------------------------------------------------------


async def put_object(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    params = [*params, *await _form_params(request, params)]
    xml = await _xml_body(request, params)
    result = await run_in_threadpool(objects.put, ctx, actor, addr, params, xml)
    status = 201 if result.created and addr.level not in ("project", "scan", "reconstruction") else 200
    return render.text(result.body, status)


_MAX_XML = 16 * 1024 * 1024
_FORM = "application/x-www-form-urlencoded"


async def _form_params(request: Request, params: Params) -> Params:
    """Fields sent as a form body (``application/x-www-form-urlencoded``): XNAT reads them as it
    reads query parameters, so a PUT or POST may set fields either way. With ``inbody=true`` the
    body is the object's XML document whatever its type says (``curl -d @doc.xml`` sends it as a
    form), and it is read once, as the document."""
    if not request.headers.get("content-type", "").lower().startswith(_FORM) or not bodies.has_body(request):
        return []
    if flag(params, "inbody") or (param(params, "req_format") or "").lower() == "xml":
        return []
    body = await _read_all(bodies.raw_chunks(request), "Form body")
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


async def _read_all(chunks: AsyncIterator[bytes], what: str) -> bytes:
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) > _MAX_XML:
            raise NotAcceptable(f"{what} larger than 16 MiB")
    return body


async def _xml_body(request: Request, params: Params) -> bytes | None:
    """The XML document of a PUT or POST: the body itself, or the first part of a multipart body
    (pyxnat uploads documents as a file: ``provenance.set``, ``add_custom_variables``)."""
    ctype = request.headers.get("content-type", "").lower()
    if bodies.is_multipart(request) and bodies.has_body(request):
        body = b""
        async for part in bodies.multipart_parts(request):
            body = await _read_all(part.chunks, "XML document")
            break
        return body if body.lstrip().startswith(b"<") else None
    wants_xml = "xml" in ctype or (param(params, "req_format") or "").lower() == "xml"
    if not (wants_xml or flag(params, "inbody")) or not bodies.has_body(request):
        return None
    return await _read_all(bodies.raw_chunks(request), "XML document") or None


async def post_projects(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    xml = await _xml_body(request, [*params, ("req_format", "xml")])
    project_id = await run_in_threadpool(objects.create_project, ctx, actor, xml, params)
    url = f"{str(request.base_url).rstrip('/')}/data/projects/{project_id}"
    return Response(url, media_type="text/plain", headers={"Location": url})


async def post_collection(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    """``POST`` of a subject's or experiment's XML document to its collection: created (201) or
    changed (200) where the document's label says, answering its ID."""
    xml = await _xml_body(request, [*params, ("req_format", "xml")])
    if xml is None:
        raise InvalidInput("Post the object's XML document to create it in this collection")
    result = await run_in_threadpool(xml_upload.post_to_collection, ctx, actor, addr, params, xml)
    return render.text(result.body, 201 if result.created else 200)


async def put_resource(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    await run_in_threadpool(resources.create_resource, ctx, actor, addr, params)
    return render.text("")


async def put_files(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    inbody = flag(params, "inbody")
    if bodies.is_multipart(request):
        if inbody:
            raise NotAcceptable("inbody=true cannot be combined with a multipart body")
        parts = bodies.multipart_parts(request)
    elif bodies.has_body(request):
        parts = bodies.raw_part(request, None)
    else:
        raise InvalidInput("You tried to PUT to this service, but didn't provide any data.")
    opts = files.UploadOptions(
        overwrite=flag(params, "overwrite"),
        extract=flag(params, "extract"),
        format=param(params, "format") or "",
        content=param(params, "content") or "",
        tags=param(params, "tags") or "",
        params=params,
    )
    await files.upload(ctx, actor, addr, parts, opts)
    return render.text("")


async def put_share(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    await run_in_threadpool(sharing.share, ctx, actor, addr, params)
    return render.text("")


# --- DELETE ------------------------------------------------------------------------------------------


async def delete_object(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    await run_in_threadpool(deletion.delete, ctx, actor, addr, flag(params, "removeFiles"))
    return render.text("")


async def delete_resource(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    remove = (param(params, "removeFiles") or "true").lower() != "false"
    await run_in_threadpool(resources.delete_resource, ctx, actor, addr, remove)
    return render.text("")


async def delete_files(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    await run_in_threadpool(files.delete_files, ctx, actor, addr)
    return render.text("")


async def delete_share(
    request: Request, ctx: Context, actor: Actor, addr: A.Address, params: Params
) -> Response:
    await run_in_threadpool(sharing.unshare, ctx, actor, addr)
    return render.text("")


ROUTES: dict[tuple[str, str], Handler] = {
    **{
        (k, "GET"): get_listing
        for k in (A.PROJECTS, A.SUBJECTS, A.EXPERIMENTS, A.CHILDREN, A.RESOURCES, A.SHARES)
    },
    **{(k, "GET"): get_object for k in OBJECTS},
    **{(k, "PUT"): put_object for k in OBJECTS},
    **{(k, "DELETE"): delete_object for k in OBJECTS},
    (A.PROJECTS, "PUT"): post_projects,
    (A.SUBJECTS, "PUT"): post_collection,
    (A.EXPERIMENTS, "PUT"): post_collection,
    (A.RESOURCE, "GET"): get_resource,
    (A.RESOURCE, "PUT"): put_resource,
    (A.RESOURCE, "DELETE"): delete_resource,
    (A.FILES, "GET"): get_files,
    (A.FILES, "PUT"): put_files,
    (A.FILES, "DELETE"): delete_files,
    (A.FILE, "GET"): get_file,
    (A.FILE, "PUT"): put_files,
    (A.FILE, "DELETE"): delete_files,
    (A.SHARE, "PUT"): put_share,
    (A.SHARE, "DELETE"): delete_share,
}
