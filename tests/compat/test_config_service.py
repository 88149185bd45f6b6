"""XNAT's configuration service (``/data/config``, ``/data/projects/P/config``), where scripts and tools
keep their settings (the BIDS map, anonymization scripts): versions, status, contents, rights."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.compat.helpers import create_project, describe, rows
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow
NewId = Callable[[str], str]
BIDSMAP = [{"series_description": "T1w", "bidsname": "T1w"}]


def _user(http: httpx.Client, new_id: NewId) -> tuple[str, str]:
    name, password = new_id("u").lower(), "user-password-1"
    assert http.post("/xapi/users", json={"username": name, "password": password}).status_code == 201
    return name, password


def test_project_document_versions_status_and_contents(http: httpx.Client, project: str) -> None:
    url = f"/data/projects/{project}/config/bids/bidsmap"
    assert http.get(url).status_code == 404
    assert http.get(url, params={"contents": "true", "accept-not-found": "true"}).status_code == 204
    first = http.put(url, params={"inbody": "true"}, content=json.dumps(BIDSMAP))
    assert first.status_code == 201, describe(first)
    assert http.get(url, params={"contents": "true"}).json() == BIDSMAP
    # the same contents again: no new version; new contents: version 2
    assert http.put(url, params={"inbody": "true"}, content=json.dumps(BIDSMAP)).status_code == 200
    changed = [*BIDSMAP, {"series_description": "T2w", "bidsname": "T2w"}]
    assert http.put(url, params={"inbody": "true"}, content=json.dumps(changed)).status_code == 200
    (row,) = rows(http.get(url, params={"format": "json"}))
    assert (row["tool"], row["path"], row["project"], row["user"], row["version"], row["status"]) == (
        "bids", "bidsmap", project, "admin", "2", "enabled",
    )  # fmt: skip
    assert json.loads(row["contents"]) == changed
    assert json.loads(http.get(url, params={"contents": "true", "version": "1"}).text) == BIDSMAP
    assert [r["version"] for r in rows(http.get(url, params={"action": "getHistory"}))] == ["1", "2"]
    assert rows(http.get(url, params={"meta": "true"}))[0]["contents"] == ""
    # disabled: kept, listed, but its contents are not served; enabled again by status alone
    assert http.put(url, params={"status": "disabled"}).status_code == 200
    assert http.get(url, params={"contents": "true"}).status_code == 404
    assert rows(http.get(url))[0]["status"] == "disabled"
    assert http.put(url, params={"status": "enabled"}).status_code == 200
    assert json.loads(http.get(url, params={"contents": "true"}).text) == changed
    assert http.put(url, params={"status": "maybe"}).status_code == 400
    assert http.put(url).status_code == 400  # neither a status nor a body
    # the listings above: the project's tools, the tool's paths
    assert rows(http.get(f"/data/projects/{project}/config")) == [{"tool": "bids"}]
    assert [r["path"] for r in rows(http.get(f"/data/projects/{project}/config/bids"))] == ["bidsmap"]
    # DELETE disables (XNAT keeps the history)
    assert http.delete(url).status_code == 200
    assert http.get(url, params={"contents": "true"}).status_code == 404
    assert len(rows(http.get(url, params={"action": "getHistory"}))) == 5


def test_site_documents_bodies_and_unversioned(http: httpx.Client, new_id: NewId) -> None:
    tool = new_id("tool")
    script = 'version "6.1"\n(0010,0010) := "anon"\n'
    # a multipart file, as XNAT's upload forms and scripts send a script
    r = http.put(f"/data/config/{tool}/script", files={"file": ("script.das", script.encode())})
    assert r.status_code == 201, describe(r)
    assert http.get(f"/data/config/{tool}/script", params={"contents": "true"}).text == script
    # XNAT's JSON form: {"contents": ..., "status": ...}
    doc = {"contents": "other", "status": "enabled"}
    assert http.put(f"/data/config/{tool}/json", json=doc).status_code == 201
    assert http.get(f"/data/config/{tool}/json", params={"contents": "true"}).text == "other"
    # a path of several segments; an unversioned document changes in place
    deep = f"/data/config/{tool}/a/b/c"
    assert http.put(deep, params={"unversioned": "true"}, content="one").status_code == 201
    assert http.put(deep, content="two").status_code == 200
    (row,) = rows(http.get(deep, params={"action": "getHistory"}))
    assert (row["version"], row["unversioned"], row["contents"]) == ("1", "true", "two")
    assert tool in [r["tool"] for r in rows(http.get("/data/config"))]
    assert sorted(r["path"] for r in rows(http.get(f"/data/config/{tool}"))) == ["a/b/c", "json", "script"]
    assert http.put(f"/data/config/{tool}/empty", content="   ").status_code == 400
    two = {"a": ("a.txt", b"a"), "b": ("b.txt", b"b")}
    assert http.put(f"/data/config/{tool}/two", files=two).status_code == 400
    assert http.post(f"/data/config/{tool}/script", content="x").status_code == 405
    assert http.get(f"/data/config/{tool}/script", params={"version": "x"}).status_code == 400


def test_config_rights(http: httpx.Client, server: LiveServer, project: str, new_id: NewId) -> None:
    url = f"/data/projects/{project}/config/anon/projects/{project}"
    assert http.put(url, content='(0010,0010) := "X"').status_code == 201
    site = f"/data/config/{new_id('site')}/settings"
    assert http.put(site, content="site-wide").status_code == 201
    member, owner, stranger = (_user(http, new_id) for _ in range(3))
    assert http.put(f"/data/projects/{project}/users/Members/{member[0]}").status_code == 200
    assert http.put(f"/data/projects/{project}/users/Owners/{owner[0]}").status_code == 200
    with (
        httpx.Client(base_url=server.url, auth=member) as m,
        httpx.Client(base_url=server.url, auth=owner) as o,
        httpx.Client(base_url=server.url, auth=stranger) as s,
    ):
        assert m.get(url, params={"contents": "true"}).status_code == 200  # members read
        assert m.put(url, content='(0010,0010) := "member"').status_code == 403  # owners write
        assert o.put(url, content='(0010,0010) := "owner"').status_code == 200
        assert s.get(url).status_code == 404  # a private project does not exist for others
        assert s.put(url, content="x").status_code == 404
        assert s.get(site, params={"contents": "true"}).text == "site-wide"  # every user reads the site's
        assert s.put(site, content="x").status_code == 403 and o.delete(site).status_code == 403
    assert httpx.get(f"{server.url}{site}").status_code == 401
    assert http.get(url, params={"contents": "true"}).text == '(0010,0010) := "owner"'


def test_a_deleted_project_takes_its_documents(http: httpx.Client, new_id: NewId) -> None:
    pid = new_id("P")
    create_project(http, pid)
    assert http.put(f"/data/projects/{pid}/config/tool/path", content="x").status_code == 201
    assert http.delete(f"/data/projects/{pid}").status_code == 200
    create_project(http, pid)
    assert http.get(f"/data/projects/{pid}/config/tool/path").status_code == 404
