"""XNAT's data-type API (``/xapi/schemas/datatypes...``) and its two-part schema names
(``/xapi/schemas/{namespace}/{schema}``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xnatd.api.auth import require_actor
from xnatd.domain import datatype_names, xsd
from xnatd.errors import NotFound


async def data_types(request: Request) -> Response:
    """``GET /xapi/schemas/datatypes``: every data type (``xnat:mrSessionData``...)."""
    await require_actor(request)
    return JSONResponse(datatype_names.data_types())


async def searchable(request: Request) -> Response:
    """``GET /xapi/schemas/datatypes/searchable``: the image session types."""
    await require_actor(request)
    return JSONResponse(datatype_names.searchable_sessions())


async def names(request: Request) -> Response:
    """``GET /xapi/schemas/datatypes/names/{all|type}``: each type's spellings by its name."""
    await require_actor(request)
    wanted = request.path_params["data_type"]
    if wanted == "all":
        return JSONResponse(datatype_names.all_names())
    return JSONResponse(datatype_names.names_of(wanted))


async def schema_in_folder(request: Request) -> Response:
    """``GET /xapi/schemas/{namespace}/{schema}``: XNAT's schema path with its folder
    (``xnat/xnat``); the folder is the schema's own name here."""
    await require_actor(request)
    folder, name = request.path_params["namespace"], request.path_params["schema"].removesuffix(".xsd")
    if folder != name:
        raise NotFound(f"Unknown schema: {folder}/{name}")
    return Response(xsd.render_schema(name), media_type="text/xml")
