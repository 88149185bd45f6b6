"""``/xapi/dicomscp``: the DICOM receivers, as XNAT's admin API has them (site administrators only).

``GET`` lists (settings-defined receivers too, with ``"source": "settings"``), ``POST`` creates,
``GET|PUT|DELETE /{id}`` reads, changes (only the fields given) or removes one, ``GET /{id}/enabled`` and
``PUT /{id}/enabled/{true|false}`` switch it. A change applies before its answer (the receiver processes
on this host serve the new list).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from xnatd.api.auth import context, require_actor
from xnatd.api.users import json_body
from xnatd.errors import InvalidInput, NotFound
from xnatd.services.ingest import dicom_receivers as service
from xnatd.threads import run_in_threadpool


def _id(request: Request) -> int:
    raw = request.path_params["id"]
    try:
        rid = int(raw)
    except ValueError:
        raise InvalidInput(f"Not a receiver ID: {raw}") from None
    if abs(rid) > 2**62:  # the database takes 64-bit integers
        raise NotFound(f"No receiver {raw}")
    return rid


async def receivers(request: Request) -> Response:
    actor = await require_actor(request)
    if request.method == "POST":
        doc = await run_in_threadpool(service.create, context(request), actor, await json_body(request))
        return JSONResponse(doc)  # XNAT answers 200, once the receiver listens
    return JSONResponse(await run_in_threadpool(service.documents, context(request), actor))


async def receiver(request: Request) -> Response:
    actor = await require_actor(request)
    rid = _id(request)
    if request.method == "DELETE":
        await run_in_threadpool(service.delete, context(request), actor, rid)
        return Response(status_code=200)
    if request.method == "PUT":
        doc = await run_in_threadpool(service.update, context(request), actor, rid, await json_body(request))
    else:
        doc = await run_in_threadpool(service.document, context(request), actor, rid)
    return JSONResponse(doc)


async def enabled(request: Request) -> Response:
    actor = await require_actor(request)
    rid = _id(request)
    flag = request.path_params.get("flag")
    if flag is None:
        doc = await run_in_threadpool(service.document, context(request), actor, rid)
    else:
        if flag.lower() not in ("true", "false"):
            raise InvalidInput(f"enabled must be true or false, not {flag}")
        doc = await run_in_threadpool(
            service.set_enabled, context(request), actor, rid, flag.lower() == "true"
        )
    return JSONResponse(doc["enabled"])


async def identifiers(request: Request) -> Response:
    """``GET|PUT /xapi/dicomscp/identifiers``: XNAT's DICOM object identifiers, ID to name (PUT: reload)."""
    actor = await require_actor(request)
    if request.method == "PUT":
        service.reset_identifiers(actor)
        return Response(status_code=200)
    return JSONResponse(service.identifiers(actor))


async def identifier(request: Request) -> Response:
    """``GET|PUT /xapi/dicomscp/identifiers/{bean}``: one identifier's implementation class (PUT: reload)."""
    actor = await require_actor(request)
    bean = request.path_params["bean"]
    if request.method == "PUT":
        service.reset_identifiers(actor, bean)
        return Response(status_code=200)
    return PlainTextResponse(service.identifier_class(actor, bean))
