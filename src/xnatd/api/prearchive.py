"""DICOM import, the prearchive and the archive service over HTTP.

``POST /data/services/import``, ``/data/prearchive[/projects[/P[/TS/FOLDER[/scans...]]]]``,
``/data/services/prearchive/{move,delete,rebuild}`` and ``/data/services/archive``. Handlers parse
the request, call one service and render; URIs come back as XNAT sends them (``text/uri-list``,
one per line, or plain text with ``format=txt``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from xnatd.api import bodies, render, user_cache
from xnatd.api.archive import fmt, query_params
from xnatd.api.auth import context, credentials, require_actor
from xnatd.api.streaming import read_ahead
from xnatd.domain.params import param
from xnatd.domain.table import ListQuery
from xnatd.errors import InvalidInput, MethodNotAllowed, NotFound, XnatdError
from xnatd.services.access.context import Actor, Context
from xnatd.services.ingest import import_options as io
from xnatd.services.ingest import importer
from xnatd.services.prearchive import archive_options as ao
from xnatd.services.prearchive import archiver, prearchive_status
from xnatd.services.prearchive import prearchive as pre
from xnatd.threads import run_in_threadpool

Params = list[tuple[str, str]]
RAW_NAMES = {
    "application/zip": "upload.zip",
    "application/x-zip-compressed": "upload.zip",
    "application/dicom": "upload.dcm",
    "application/x-tar": "upload.tar",
    "application/x-gzip": "upload.tar.gz",
    "application/gzip": "upload.tar.gz",
}
FORM = "application/x-www-form-urlencoded"


def uri_response(params: Params, uris: list[str], status: int = 200) -> Response:
    """XNAT's answer of URI lists: ``text/uri-list`` lines, or one bare URI as ``text/plain``."""
    if (fmt(params) or "") in ("txt", "text", "plain") and len(uris) == 1:
        return Response(uris[0], status_code=status, media_type="text/plain")
    return Response("".join(f"{u}\r\n" for u in uris), status_code=status, media_type="text/uri-list")


async def _params_with_form(request: Request) -> Params:
    """Query parameters plus a form body (pyxnat posts ``src=...&async=false`` as a form)."""
    params = query_params(request)
    if request.headers.get("content-type", "").lower().startswith(FORM) and bodies.has_body(request):
        body = b""
        async for chunk in bodies.raw_chunks(request):
            body += chunk
            if len(body) > 1 << 20:
                raise InvalidInput("Form body larger than 1 MiB")
        params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return params


# --- import ------------------------------------------------------------------------------------------


async def services_import(request: Request) -> Response:
    ctx = context(request)
    params = query_params(request)
    ctype = request.headers.get("content-type")
    small = _small_dicom(request, params, ctype)
    actor = None if small else await require_actor(request)  # else: identified as it is filed
    if request.method != "POST":
        raise MethodNotAllowed("The import service only accepts POST")
    opts = small or io.parse(params, ctype)
    if bodies.is_multipart(request):
        parts = bodies.multipart_parts(request)
    elif bodies.has_body(request):
        # a raw DICOM body has no name of its own: it is named from its header, as XNAT does
        sent = param(params, "filename")
        name = sent if opts.handler == io.GRADUAL else sent or RAW_NAMES.get(io.media_type(ctype), "upload")
        parts = bodies.raw_part(request, name)
    elif param(params, "src"):  # a file uploaded to the caller's cache before (XNAT's user cache)
        actor = actor or await require_actor(request)
        parts = user_cache.cached_part(ctx, actor, param(params, "src") or "")
    else:
        raise InvalidInput("Unable to identify upload format.")
    if actor is None:
        result = await importer.import_small_file(ctx, credentials(request), parts, opts)
    else:
        result = await importer.import_upload(ctx, actor, parts, opts)
    response = uri_response(params, result.uris)
    response.headers["X-Xnatd-Import"] = result.report.summary()
    return response


def _small_dicom(request: Request, params: Params, ctype: str | None) -> io.ImportOptions | None:
    """The options of one gradual-DICOM file of a known, small size (read before its caller is
    identified, see ``importer.import_small_file``); None for any other import."""
    length = request.headers.get("content-length", "")
    if request.method != "POST" or not (length.isdecimal() and int(length) <= importer.SMALL_BODY):
        return None
    try:
        opts = io.parse(params, ctype)
    except XnatdError:
        return None  # refused once its caller is known, as any other import
    return opts if opts.handler == io.GRADUAL else None


# --- /data/prearchive --------------------------------------------------------------------------------


async def prearchive_endpoint(request: Request) -> Response:
    actor = await require_actor(request)
    ctx = context(request)
    parts = [p for p in request.path_params.get("rest", "").split("/") if p] or ["projects"]
    params = await _params_with_form(request)
    if not parts or parts[0] != "projects" or len(parts) == 3:
        raise NotFound(f"Unknown address: {request.url.path}")
    if len(parts) <= 2:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
        query = ListQuery.from_params(params)
        table = await run_in_threadpool(pre.listing, ctx, actor, parts[1] if len(parts) == 2 else None, query)
        return render.table_response(table, fmt(params))
    key = pre.Key(None if parts[1] == ao.UNASSIGNED else parts[1], parts[2], parts[3])
    rest = parts[4:]
    if not rest:
        return await _session(request, ctx, actor, key, params)
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
    return await _below_session(ctx, actor, key, rest, params, request)


async def _session(request: Request, ctx: Context, actor: Actor, key: pre.Key, params: Params) -> Response:
    method = request.method
    if method in ("GET", "HEAD"):
        kind = fmt(params) or "xml"
        if kind == "zip":
            name, chunks, length = await run_in_threadpool(pre.zip_of, ctx, actor, key, 0)
            headers = render.stored_file_headers(name, "application/zip")
            if length is not None:
                headers["Content-Length"] = str(length)
            return StreamingResponse(read_ahead(chunks), media_type="application/zip", headers=headers)
        if kind == "xml":
            item = await run_in_threadpool(pre.document, ctx, actor, key)
            return render.item_response(item, "xml")
        return render.table_response(await run_in_threadpool(pre.session_table, ctx, actor, key), kind)
    if method == "DELETE":
        await run_in_threadpool(pre.delete, ctx, actor, key)
        return render.text("")
    if method in ("POST", "PUT"):
        return await _action(ctx, actor, key, params)
    raise MethodNotAllowed(f"{method} is not supported on {request.url.path}")


def _one_uri(uri: str, status: int = 200) -> Response:
    """XNAT's answer of a prearchive session action: the URI alone, no line end (XNAT's REST tests
    compare the body of ``action=commit`` with the import's URI)."""
    return Response(uri, status_code=status, media_type="text/uri-list")


async def _action(ctx: Context, actor: Actor, key: pre.Key, params: Params) -> Response:
    action = (param(params, "action") or "").strip().lower()
    if action == "build":
        await run_in_threadpool(pre.build, ctx, actor, key)
        return _one_uri(_uri(key))
    if action == "commit":
        done = await run_in_threadpool(_commit, ctx, actor, key, params)
        return _one_uri(done, 301 if done.startswith("/data/archive") else 200)
    if action == "move":
        target = param(params, "newProject")
        if not target:
            raise InvalidInput("action=move needs newProject")
        new_uri = await run_in_threadpool(pre.move, ctx, actor, key, target)
        return _one_uri(new_uri, 301)
    if action == "reset-status":
        await run_in_threadpool(prearchive_status.reset, ctx, actor, key, param(params, "tag"))
        return _one_uri(_uri(key))
    if action == "set-status":
        await run_in_threadpool(prearchive_status.set_status, ctx, actor, key, param(params, "status"))
        return _one_uri(_uri(key))
    raise InvalidInput(
        f"Unknown or missing action {action!r}: build, commit, move, reset-status or set-status"
    )


def _commit(ctx: Context, actor: Actor, key: pre.Key, params: Params) -> str:
    """``action=commit``: build; archive at once when the session is auto-archive (or ``AA=true``)."""
    row = pre.build(ctx, actor, key)
    flag = param(params, "AA") or param(params, "auto-archive")
    auto = flag.lower() == "true" if flag else (row["autoarchive"] or 0) >= 4
    if not auto or row["project"] is None:
        return _uri(key)
    return archiver.archive(ctx, actor, key, ao.code_options(row["autoarchive"])).uri


def _uri(key: pre.Key) -> str:
    return f"/data/prearchive/projects/{key.project or ao.UNASSIGNED}/{key.timestamp}/{key.folder}"


async def _below_session(
    ctx: Context, actor: Actor, key: pre.Key, rest: list[str], params: Params, request: Request
) -> Response:
    if rest[0] == "logs":
        return render.text_of_stored(await run_in_threadpool(pre.log_of, ctx, actor, key))
    if rest[0] != "scans":
        raise NotFound(f"Unknown address: {request.url.path}")
    if len(rest) == 1:
        table = await run_in_threadpool(pre.scans, ctx, actor, key, ListQuery.from_params(params))
        return render.table_response(table, fmt(params))
    _series, files = await run_in_threadpool(pre.scan_files, ctx, actor, key, rest[1])
    tail = rest[2:]
    if not tail:
        scans = await run_in_threadpool(pre.scans, ctx, actor, key, ListQuery(filters={"ID": rest[1]}))
        return render.table_response(scans, fmt(params))
    if tail == ["resources"]:
        return render.table_response(pre.scan_resources(files), fmt(params))
    if len(tail) >= 3 and tail[0] == "resources" and tail[1] in ("DICOM", "secondary") and tail[2] == "files":
        if len(tail) == 3:
            return render.table_response(pre.file_table(_uri(key), rest[1], files), fmt(params))
        for row, path in files:
            if row["name"] == "/".join(tail[3:]):
                headers = render.stored_file_headers(path.name, "application/dicom")
                return FileResponse(path, media_type="application/dicom", headers=headers)
        raise NotFound("Unable to find file.")
    raise NotFound(f"Unknown address: {request.url.path}")


# --- batch services ----------------------------------------------------------------------------------


def _sources(params: Params) -> list[pre.Key]:
    srcs = [v for k, v in params if k == "src" and v]
    if not srcs:
        project, ts, folder = (
            param(params, n) for n in ("project", "PREARC_TIMESTAMP", "PREARC_SESSION_FOLDER")
        )
        if project and ts and folder:
            return [pre.Key(None if project == ao.UNASSIGNED else project, ts, folder)]
        raise InvalidInput(
            "Missing src: give the prearchive session URI as src=/prearchive/projects/P/TS/FOLDER"
        )
    return [pre.Key.parse(s) for s in srcs]


async def services_prearchive(request: Request) -> Response:
    actor = await require_actor(request)
    if request.method != "POST":
        raise MethodNotAllowed("The prearchive services only accept POST")
    ctx = context(request)
    params = await _params_with_form(request)
    keys = _sources(params)
    op = request.path_params["op"]
    if op == "delete":
        table = await run_in_threadpool(pre.rows_for, ctx, actor, keys)
        for key in keys:
            await run_in_threadpool(pre.delete, ctx, actor, key)
        return render.table_response(table, fmt(params))
    if op == "rebuild":
        for key in keys:
            await run_in_threadpool(pre.build, ctx, actor, key)
    elif op == "move":
        target = param(params, "newProject")
        if not target:
            raise InvalidInput("move needs newProject")
        moved = []
        for key in keys:
            new_uri = await run_in_threadpool(pre.move, ctx, actor, key, target)
            moved.append(pre.Key.parse(new_uri))
        keys = moved
    else:
        raise NotFound(f"Unknown prearchive service {op}")
    return render.table_response(await run_in_threadpool(pre.rows_for, ctx, actor, keys), fmt(params))


async def services_archive(request: Request) -> Response:
    actor = await require_actor(request)
    if request.method != "POST":
        raise MethodNotAllowed("The archive service only accepts POST")
    ctx = context(request)
    params = await _params_with_form(request)
    keys = _sources(params)
    opts = ao.archive_options(params)
    done = await run_in_threadpool(archiver.archive_many, ctx, actor, keys, opts)
    uris = [d.uri for d in done]
    if (param(params, "redirect") or "").lower() == "true" and len(uris) == 1:
        return Response(
            status_code=303, headers={"Location": f"{str(request.base_url).rstrip('/')}{uris[0]}"}
        )
    return uri_response(params, uris)
