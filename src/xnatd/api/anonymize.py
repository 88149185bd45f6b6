"""XNAT's anonymization API (``/xapi/anonymize/default``, ``site``, ``site/enabled``,
``projects/{project}``, ``projects/{project}/enabled``) and xnatd's dry run
(``POST /xapi/anonymize/dryrun``); the work is in ``services/archive/anonymization``."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from xnatd.api import bodies
from xnatd.api.archive import query_params
from xnatd.api.auth import context, require_actor
from xnatd.domain.params import param
from xnatd.errors import InvalidInput, TooLarge
from xnatd.services.archive import anonymization as service
from xnatd.services.archive import config_service
from xnatd.threads import run_in_threadpool

MAX_SCRIPT = config_service.MAX_CONTENTS * 4  # bytes of UTF-8
TRUE, FALSE = {"true", "on", "yes", "1"}, {"false", "off", "no", "0"}  # Spring's boolean words


async def default_script(request: Request) -> Response:
    return PlainTextResponse(service.default_script(await require_actor(request)))


async def script(request: Request) -> Response:
    """``GET|PUT /xapi/anonymize/site`` and ``/xapi/anonymize/projects/{project}`` (plain text)."""
    actor = await require_actor(request)
    project = request.path_params.get("project")
    if request.method == "PUT":
        body = await bodies.small_body(request, MAX_SCRIPT, "The anonymization script")
        await run_in_threadpool(
            service.save, context(request), actor, project, body.decode("utf-8", "replace")
        )
        return Response(status_code=200)
    text = await run_in_threadpool(service.script, context(request), actor, project)
    return Response(status_code=204) if text is None else PlainTextResponse(text)


async def enabled(request: Request) -> Response:
    """``GET|PUT .../enabled``: a JSON boolean; PUT takes ``?enable=true|false`` (default true)."""
    actor = await require_actor(request)
    project = request.path_params.get("project")
    if request.method == "PUT":
        raw = (param(query_params(request), "enable") or "true").strip().lower()
        if raw not in TRUE | FALSE:
            raise InvalidInput(f"enable must be true or false, not {raw!r}")
        await run_in_threadpool(service.set_enabled, context(request), actor, project, raw in TRUE)
        return Response(status_code=200)
    return JSONResponse(await run_in_threadpool(service.enabled, context(request), actor, project))


async def dry_run(request: Request) -> Response:
    """``POST /xapi/anonymize/dryrun``: multipart ``script`` + ``file`` (or ``uri``), or JSON
    ``{"script", "uri"}``; ``project``, ``subject``, ``session`` from the query."""
    actor = await require_actor(request)
    params = query_params(request)
    fields = await (_multipart(request) if bodies.is_multipart(request) else _json(request))
    text = fields.get("script")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("A dry run needs a script (the script part or field)")
    names = {k: v for k in ("project", "subject", "session") if (v := param(params, k))}
    data, uri = fields.get("file"), fields.get("uri") or param(params, "uri")
    result = await run_in_threadpool(service.dry_run, context(request), actor, text, data, uri, names)
    return JSONResponse(result.as_json())


async def _multipart(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with request.form(max_files=2, max_fields=8, max_part_size=MAX_SCRIPT) as form:
        for key in ("script", "file", "uri"):
            value = form.get(key)
            if isinstance(value, UploadFile):
                data = await value.read(service.MAX_DICOM + 1)
                if len(data) > service.MAX_DICOM:
                    raise TooLarge(f"The {key} part is larger than {service.MAX_DICOM} bytes")
                out[key] = data if key == "file" else data.decode("utf-8", "replace")
            elif isinstance(value, str) and key != "file":
                out[key] = value
    return out


async def _json(request: Request) -> dict[str, Any]:
    body = await bodies.small_body(request, MAX_SCRIPT, "The dry run's body")
    try:
        doc = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        raise InvalidInput('The body must be multipart (script, file) or JSON {"script": ..., "uri": ...}')
    return {k: doc[k] for k in ("script", "uri") if isinstance(doc.get(k), str)}
