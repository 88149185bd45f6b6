"""The OpenAPI document: valid OpenAPI 3, and it documents every route of the app (so a new route without
documentation fails here), while every path it documents is one the app answers."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Match, Route

from xnatd.api import app as xnatd_app
from xnatd.api import openapi

METHODS = {"get", "put", "post", "delete", "head", "patch", "options"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build(xnatd_app.routes())


def test_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    validate(document)  # raises on any schema violation


def test_every_route_and_method_is_documented(document: dict[str, Any]) -> None:
    missing = []
    for route in xnatd_app.routes():
        assert isinstance(route, Route) and route.methods
        item = document["paths"].get(openapi.openapi_path(route.path))
        for method in route.methods - {"HEAD"}:
            if item is None or method.lower() not in item:
                missing.append(f"{method} {route.path}")
    assert not missing, f"routes missing from the OpenAPI document: {missing}"


def test_every_documented_path_is_answered_by_a_route(document: dict[str, Any]) -> None:
    routes = xnatd_app.routes()
    for path, item in document["paths"].items():
        examples = {p["name"]: p["example"] for p in item.get("parameters", [])}
        concrete = path.format(**examples)
        for method in METHODS & item.keys():
            scope = {"type": "http", "path": concrete, "method": method.upper()}
            assert any(r.matches(scope)[0] == Match.FULL for r in routes), f"{method} {path}"


def test_every_path_parameter_has_an_example(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path" and p.get("example")}
        assert names == declared, path


def test_archive_parameters_come_from_the_type_registry(document: dict[str, Any]) -> None:
    put = document["paths"]["/data/projects/{project}/subjects/{subject}"]["put"]
    names = {p["name"]: p["schema"] for p in put["parameters"]}
    assert names["xnat:subjectData/demographics/dob"] == {"type": "string", "format": "date"}
    assert names["xnat:subjectData/demographics/weight"] == {"type": "number"}
    scans = document["paths"]["/data/projects/{project}/experiments/{experiment}/scans/{scan}"]["put"]
    xsi = next(p for p in scans["parameters"] if p["name"] == "xsiType")
    assert "xnat:mrScanData" in xsi["schema"]["enum"] and "xnat:imageScanData" not in xsi["schema"]["enum"]


def test_every_operation_says_what_it_does(document: dict[str, Any]) -> None:
    """A new route needs a handler docstring or an entry in ``openapi.ROUTE_DOCS``."""
    bare = [f"{m} {p}" for p, item in document["paths"].items() for m in METHODS & item.keys()
            if not item[m]["summary"].strip()]  # fmt: skip
    assert not bare, f"operations without a summary: {bare}"


@pytest.mark.parametrize("url", ["/xapi/openapi.json", "/xapi/v2/api-docs"])
def test_served_without_login(url: str, document: dict[str, Any]) -> None:
    async def get() -> httpx.Response:
        app = Starlette(routes=xnatd_app.routes())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get(url)

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.json()["paths"].keys() == document["paths"].keys()
