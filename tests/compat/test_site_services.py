"""XNAT's site services that clients call and xnatd answered 404 or 400 (issue 18, items 4 and 14):
the site configuration, plugins, user profiles, DICOM object identifiers, the form login, through the
REST calls as XNAT answers them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.compat.helpers import describe
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow
NewId = Callable[[str], str]


def _user(http: httpx.Client, new_id: NewId) -> tuple[str, str]:
    name, password = new_id("u").lower(), "user-password-1"
    r = http.post("/xapi/users", json={"username": name, "password": password})
    assert r.status_code == 201, describe(r)
    return name, password


def test_site_config_reads_and_sets_values(http: httpx.Client, server: LiveServer, new_id: NewId) -> None:
    whole = http.get("/xapi/siteConfig")
    assert whole.status_code == 200, describe(whole)
    values = whole.json()
    assert values["siteId"] == "XNAT" and values["requireLogin"] is True and values["initialized"] is True
    assert http.get("/xapi/siteConfig/siteId").json() == "XNAT"
    assert http.get("/xapi/siteConfig/nonexistentProperty").status_code == 404
    # a tool's own preference: set as a map (JSON or form), then one value as text; read back
    key = new_id("tool")
    assert http.post("/xapi/siteConfig", json={key: "first", f"{key}List": ["a", "b"]}).status_code == 200
    assert http.get(f"/xapi/siteConfig/{key}").json() == "first"
    assert http.get(f"/xapi/siteConfig/{key}List").json() == ["a", "b"]
    r = http.post(f"/xapi/siteConfig/{key}", content="second", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, describe(r)
    assert http.get("/xapi/siteConfig").json()[key] == "second"
    form = http.post("/xapi/siteConfig", data={key: "third"})
    assert form.status_code == 200 and http.get(f"/xapi/siteConfig/{key}").json() == "third"
    # what comes from xnatd's own settings: the value in force is accepted, another one refused
    assert http.post("/xapi/siteConfig", json={"siteId": "XNAT", "initialized": True}).status_code == 200
    refused = http.post("/xapi/siteConfig/siteId", content="OTHER", headers={"Content-Type": "text/plain"})
    assert refused.status_code == 400 and "XNATD_SITE_ID" in refused.text
    assert http.get("/xapi/siteConfig/siteId").json() == "XNAT"
    # a user reads the open values, sets nothing
    user = _user(http, new_id)
    with httpx.Client(base_url=server.url, auth=user) as client:
        mine = client.get("/xapi/siteConfig")
        assert mine.status_code == 200 and "siteId" in mine.json() and key not in mine.json()
        assert client.get("/xapi/siteConfig/siteUrl").status_code == 200
        assert client.get("/xapi/siteConfig/archivePath").status_code == 403
        assert client.post("/xapi/siteConfig", json={key: "x"}).status_code == 403
    assert http.get(f"/xapi/siteConfig/{key}").json() == "third"
    assert httpx.get(f"{server.url}/xapi/siteConfig").status_code == 401
    up = http.get("/xapi/siteConfig/uptime")
    assert up.status_code == 200 and set(up.json()) == {"days", "hours", "minutes", "seconds"}


def test_plugins_profiles_and_identifiers(http: httpx.Client, server: LiveServer, new_id: NewId) -> None:
    assert http.get("/xapi/plugins").json() == {}
    assert http.get("/xapi/plugins/").json() == {}
    assert http.get("/xapi/plugins/batchLaunchPlugin").status_code == 404
    name, password = _user(http, new_id)
    profiles = http.get("/xapi/users/profiles")
    assert profiles.status_code == 200, describe(profiles)
    by_name = {p["username"]: p for p in profiles.json()}
    assert {"admin", name} <= set(by_name) and by_name[name]["enabled"] is True
    assert http.get(f"/xapi/users/profile/{name}").json()["username"] == name
    with httpx.Client(base_url=server.url, auth=(name, password)) as client:
        assert client.get("/xapi/users/profiles").status_code == 403
        assert client.get("/xapi/dicomscp/identifiers").json() == {
            "dicomObjectIdentifier": "Default DICOM object identifier (ClassicDicomObjectIdentifier)"
        }
        assert client.put("/xapi/dicomscp/identifiers").status_code == 403
    assert http.get("/xapi/dicomscp/identifiers/default").text.endswith("ClassicDicomObjectIdentifier")
    assert http.get("/xapi/dicomscp/identifiers/nosuch").status_code == 404
    assert http.put("/xapi/dicomscp/identifiers").status_code == 200


def test_form_login_sets_a_session_cookie(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        r = client.post("/login", data={"username": "admin", "password": "admin"})
        assert r.status_code == 302 and r.headers["location"] == "/", describe(r)
        session = r.cookies.get("JSESSIONID")
        assert session
        assert client.get("/data/auth").text == "User 'admin' is logged in"
    with httpx.Client(base_url=server.url) as client:
        wrong = client.post("/login", data={"username": "admin", "password": "wrong-password"})
        assert wrong.status_code == 401 and "JSESSIONID" not in wrong.cookies
        assert client.post("/login", data={"username": "admin"}).status_code == 400
