"""Logging in with the real clients (password and alias token), sessions that live and end, and
a hundred thousand Basic-auth requests that leave no server session behind."""

from __future__ import annotations

import base64
import http.client
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyxnat
import sqlalchemy
import xnat

from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
BASIC_REQUESTS = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("logins") / "data") as srv:
        with srv.client() as admin:
            body = {"username": "carol", "password": "carol-pw", "email": "carol@example.org"}
            assert admin.post("/xapi/users", json=body).status_code == 201
            assert admin.put("/data/projects/CAROLS").status_code == 200
            assert admin.put("/data/projects/CAROLS/users/Members/carol").status_code == 200
            assert admin.put("/data/projects/NOTCAROLS").status_code == 200
        yield srv


def stored_sessions(server: LiveServer) -> int:
    """Read the server's own database (SQLite file or PostgreSQL) to count login sessions."""
    engine = sqlalchemy.create_engine(server.database)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sqlalchemy.text("select count(*) from http_sessions")).scalar_one())
    finally:
        engine.dispose()


def token_for(server: LiveServer, user: str, password: str) -> dict[str, str]:
    with httpx.Client(base_url=server.url, auth=(user, password)) as c:
        doc: dict[str, str] = c.get("/data/services/tokens/issue").json()
    return doc


def test_xnatpy_password_login_heartbeat_and_logout(server: LiveServer) -> None:
    session = xnat.connect(server.url, user="carol", password="carol-pw")
    cookie = session.interface.cookies.get("JSESSIONID")
    assert cookie
    assert list(session.projects.keys()) == ["CAROLS"]  # only what carol may read
    first = session.get("/data/JSESSION").text
    second = session.get("/data/JSESSION").text  # the heartbeat keeps the same session
    assert first == second == cookie
    session.disconnect()
    with httpx.Client(base_url=server.url, cookies={"JSESSIONID": cookie}) as c:
        assert c.get("/data/projects").status_code == 401  # logout ended the session


def test_xnatpy_alias_token_login(server: LiveServer) -> None:
    token = token_for(server, "carol", "carol-pw")
    with xnat.connect(server.url, user=token["alias"], password=token["secret"]) as session:
        assert list(session.projects.keys()) == ["CAROLS"]
        assert "carol" in session.get("/data/auth").text


def test_pyxnat_password_and_token(server: LiveServer) -> None:
    token = token_for(server, "carol", "carol-pw")
    for user, password in (("carol", "carol-pw"), (token["alias"], token["secret"])):
        iface = pyxnat.Interface(server=server.url, user=user, password=password)
        assert iface.select.projects().get() == ["CAROLS"]
        iface.disconnect()
    bad = pyxnat.Interface(server=server.url, user="carol", password="nope")
    with pytest.raises(pyxnat.core.errors.OperationalError):
        bad.select.projects().get()


def test_session_expires_after_idle_timeout(tmp_path: Path) -> None:
    # Three seconds: long enough for the first use to come in time on a loaded machine.
    with live_server(tmp_path / "data", env={"XNATD_SESSION_TIMEOUT": "3"}) as srv, srv.client() as admin:
        sid = admin.post("/data/JSESSION").text
        with httpx.Client(base_url=srv.url, cookies={"JSESSIONID": sid}) as c:
            assert c.get("/data/auth").status_code == 200
            time.sleep(4.5)
            assert c.get("/data/auth").status_code == 401


@pytest.mark.sqlite_only  # the server's own behaviour; once per `make test` is enough
@pytest.mark.timeout(3600)  # its wall time grows with the machine's load: a bound of its own
def test_hundred_thousand_basic_auth_requests_leave_no_sessions(server: LiveServer) -> None:
    """Sequential requests on one kept-alive connection, through the standard library's plain HTTP
    client (a third of httpx's cost per request, so the server's work is most of what is timed)."""
    before = stored_sessions(server)
    header = {"Authorization": "Basic " + base64.b64encode(b"carol:carol-pw").decode()}
    statuses: Counter[int] = Counter()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for _ in range(BASIC_REQUESTS):
            conn.request("GET", "/data/auth", headers=header)
            answer = conn.getresponse()
            answer.read()
            statuses[answer.status] += 1
    finally:
        conn.close()
    assert statuses == Counter({200: BASIC_REQUESTS})
    assert stored_sessions(server) == before
