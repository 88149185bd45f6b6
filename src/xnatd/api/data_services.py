"""``/data/services/dicomdump`` (XNAT's DICOM dump), ``/data/services/refresh/catalog`` (its catalog
refresh), as xnatpy's ``services.dicom_dump`` and ``services.refresh_catalog`` call them, and
``/data/archive/scanners`` and ``/data/archive/scan_types`` (xnatpy's ``scanners``, ``scan_types``)."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xnatd.api import bodies, render
from xnatd.api.archive import fmt, query_params
from xnatd.api.auth import context, require_actor
from xnatd.domain.params import flag, param
from xnatd.domain.table import ListQuery
from xnatd.errors import InvalidInput
from xnatd.services.archive import archive_summaries, catalog_refresh, xml_upload
from xnatd.services.ingest import upload_status
from xnatd.services.prearchive import dicom_dump
from xnatd.threads import run_in_threadpool

FORM = "application/x-www-form-urlencoded"


async def dicomdump(request: Request) -> Response:
    """``GET /data/services/dicomdump?src=...[&field=...]``: the header of the first DICOM file of
    the session, scan or file ``src`` names (tag1, tag2, vr, value, desc)."""
    actor = await require_actor(request)
    params = query_params(request)
    src = param(params, "src")
    if not src:
        raise InvalidInput("Please set the src parameter")
    fields = [v for k, v in params if k == "field"]
    table = await run_in_threadpool(dicom_dump.header, context(request), actor, src, fields)
    return render.table_response(table, fmt(params))


async def refresh_catalog(request: Request) -> Response:
    """``POST /data/services/refresh/catalog?resource=...&options=append,delete,checksum,populateStats``:
    bring resources' file rows in line with their folders."""
    actor = await require_actor(request)
    params = query_params(request)
    if request.headers.get("content-type", "").lower().startswith(FORM):
        form = await bodies.small_body(request, 1 << 20, "The form")
        params += parse_qsl(form.decode("utf-8", "replace"), keep_blank_values=True)
    resources = [v for k, v in params if k == "resource" and v]
    names = [v for k, v in params if k == "options"]
    names += [op for op in catalog_refresh.OPERATIONS if flag(params, op)]
    ops = catalog_refresh.operations(names)
    await run_in_threadpool(catalog_refresh.refresh, context(request), actor, resources, ops)
    return Response(status_code=200)


def _listing_query(params: list[tuple[str, str]]) -> ListQuery:
    """The listing's own parameters: ``table`` names the data type, it filters no column."""
    return ListQuery.from_params([(k, v) for k, v in params if k != "table"])


async def scanners(request: Request) -> Response:
    """``GET /data/archive/scanners[?table=xnat_ctSessionData]``: the scanners of a session type."""
    actor = await require_actor(request)
    params = query_params(request)
    table = await run_in_threadpool(
        archive_summaries.scanners, context(request), actor, param(params, "table"),
        request.path_params.get("project"), _listing_query(params),
    )  # fmt: skip
    return render.table_response(table, fmt(params))


async def scan_types(request: Request) -> Response:
    """``GET /data/archive/scan_types[?table=xnat_ctScanData]`` (and per project): scan types with
    their series descriptions."""
    actor = await require_actor(request)
    params = query_params(request)
    table = await run_in_threadpool(
        archive_summaries.scan_types, context(request), actor, param(params, "table"),
        request.path_params.get("project"), _listing_query(params),
    )  # fmt: skip
    return render.table_response(table, fmt(params))


async def status(request: Request) -> Response:
    """``/data/status/{transaction}``: XNAT's status queue of an operation. GET lists the messages
    (text by default, ``format=json`` as XNAT's ``{"msgs": [[{"status", "msg"}]]}``), POST adds one
    (form ``status``, ``message``), DELETE empties it."""
    actor = await require_actor(request)
    ctx, tid, params = context(request), request.path_params["transaction"], query_params(request)
    if request.method == "POST":
        form = await bodies.small_body(request, 64 * 1024, "The form")
        params += parse_qsl(form.decode("utf-8", "replace"), keep_blank_values=True)
        await run_in_threadpool(
            upload_status.post, ctx, actor, tid, param(params, "status"), param(params, "message")
        )
        return Response(status_code=200)
    if request.method == "DELETE":
        await run_in_threadpool(upload_status.clear, ctx, actor, tid)
        return Response(status_code=200)
    found = await run_in_threadpool(upload_status.messages, ctx, actor, tid)
    kind = fmt(params) or "txt"
    if kind == "json":
        return JSONResponse({"msgs": [found]})
    if kind == "html":
        cells = "".join(
            f"<tr><td class='s{m['status']}'>{m['status']}</td><td>{escape(m['msg'])}</td></tr>\n"
            for m in found
        )
        return Response(
            f"<html><body><table>{cells}</table></body></html>",
            media_type="text/html",
            headers=render.UNTRUSTED,
        )
    return render.text("".join(f"{m['status']}: {m['msg']}\n" for m in found))


async def upload_xml(request: Request) -> Response:
    """``POST /xapi/archive/upload/xml``: XNAT's XML upload: a subject's or experiment's document (raw
    or as a multipart file) stored where it says; answers the object's URI."""
    actor = await require_actor(request)
    params = query_params(request)
    body = await bodies.one_document(request, 16 << 20, "The XML document")
    if not body:
        raise InvalidInput("Send the XML document as the body or as a multipart file")
    uri = await run_in_threadpool(
        xml_upload.upload, context(request), actor, params, body, param(params, "project")
    )
    return render.text(uri)
