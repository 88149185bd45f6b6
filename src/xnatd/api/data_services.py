"""``/data/services/dicomdump`` (XNAT's DICOM dump) and ``/data/services/refresh/catalog`` (its catalog
refresh), as xnatpy's ``services.dicom_dump`` and ``services.refresh_catalog`` call them."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from xnatd.api import bodies, render
from xnatd.api.archive import fmt, param, query_params
from xnatd.api.auth import require_actor
from xnatd.errors import InvalidInput
from xnatd.services import catalog_refresh, dicom_dump
from xnatd.services.context import Context
from xnatd.services.resources import flag
from xnatd.services.threads import run_in_threadpool

FORM = "application/x-www-form-urlencoded"


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def dicomdump(request: Request) -> Response:
    """``GET /data/services/dicomdump?src=...[&field=...]``: the header of the first DICOM file of
    the session, scan or file ``src`` names (tag1, tag2, vr, value, desc)."""
    actor = await require_actor(request)
    params = query_params(request)
    src = param(params, "src")
    if not src:
        raise InvalidInput("Please set the src parameter")
    fields = [v for k, v in params if k == "field"]
    table = await run_in_threadpool(dicom_dump.header, _ctx(request), actor, src, fields)
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
    await run_in_threadpool(catalog_refresh.refresh, _ctx(request), actor, resources, ops)
    return Response(status_code=200)
