"""Fixtures for the compatibility suite: one live `xnatd serve` shared by every test in tests/compat.

Each test makes its own projects (unique IDs), so tests do not depend on each other's data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import xnat

from tests.compat.helpers import ADMIN, create_project, new_label
from tests.support.live_server import LiveServer, live_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server process (data in a temporary directory) for the whole compat session."""
    base = tmp_path_factory.mktemp("xnatd-compat")
    with live_server(base / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def xsession(server: LiveServer) -> Iterator[Any]:
    """One xnatpy connection per test module (each test works in its own project)."""
    session = xnat.connect(server.url, user="admin", password="admin", loglevel="ERROR")
    try:
        yield session
    finally:
        session.disconnect()


@pytest.fixture
def url(server: LiveServer) -> str:
    return server.url


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """An httpx client with admin Basic auth on the live server."""
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=120) as client:
        yield client


@pytest.fixture
def new_id() -> Callable[[str], str]:
    """Returns a function making unique, XNAT-valid IDs/labels: `new_id("P")` -> `P3f9a0c1b2d`."""
    return new_label


@pytest.fixture
def project(http: httpx.Client, new_id: Callable[[str], str]) -> str:
    """A fresh project (created with a plain `PUT /data/projects/{id}`), returning its ID."""
    pid = new_id("P")
    create_project(http, pid)
    return pid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failing compat test, attach the tail of the server log to the report."""
    report = yield
    if report.failed and "server" in getattr(item, "fixturenames", ()):
        srv = item.funcargs.get("server") if hasattr(item, "funcargs") else None
        log: Path | None = getattr(srv, "log", None)
        if log is not None and log.exists():
            tail = log.read_text("utf-8", "replace").splitlines()[-60:]
            report.sections.append(("xnatd log (last 60 lines)", "\n".join(tail)))
    return report
