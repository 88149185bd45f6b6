"""Stored searches (``/data/search/saved``) through pyxnat's ``manage.search`` (save, saved, get as
results, XML and query, delete, templates) and the REST calls: sharing, rights, XNAT's ``@element``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from pyxnat import Interface

from tests.compat.helpers import create_project, create_subject, csv_rows, describe, rows
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow
NewId = Callable[[str], str]
XDAT = "{http://nrg.wustl.edu/security}"


@pytest.fixture
def intf(server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("HOME", str(tmp_path))
    interface = Interface(server=server.url, user="admin", password="admin")
    yield interface
    interface.disconnect()


def _user(http: httpx.Client, new_id: NewId) -> tuple[str, str]:
    name, password = new_id("u").lower(), "user-password-1"
    assert http.post("/xapi/users", json={"username": name, "password": password}).status_code == 201
    return name, password


def test_pyxnat_saves_lists_runs_and_deletes_a_search(intf: Any, http: httpx.Client, new_id: NewId) -> None:
    project = new_id("P")
    create_project(http, project)
    for label in ("S_a1", "S_a2", "S_b1"):
        create_subject(http, project, label)
    name = new_id("search")
    columns = ["xnat:subjectData/PROJECT", "xnat:subjectData/SUBJECT_LABEL"]
    criteria = [
        ("xnat:subjectData/PROJECT", "=", project),
        ("xnat:subjectData/SUBJECT_LABEL", "LIKE", "S_a*"),
        "AND",
    ]
    intf.manage.search.save(
        name, "xnat:subjectData", columns, criteria, sharing="private", description="mine"
    )
    assert name in intf.manage.search.saved()
    assert (name, "mine") in intf.manage.search.saved(with_description=True)
    results = intf.manage.search.get(name)
    assert sorted(r["subject_label"] for r in results) == ["S_a1", "S_a2"]
    query = intf.manage.search.get(name, out_format="query")
    assert query["row"] == "xnat:subjectData" and query["columns"] == columns
    stored = sorted(c for c in query["constraints"] if isinstance(c, tuple))
    assert stored == [criteria[0], ("xnat:subjectData/SUBJECT_LABEL", "LIKE", "S_a%")]  # pyxnat's * is %
    xml = ET.fromstring(intf.manage.search.get(name, out_format="xml"))
    assert xml.tag == f"{XDAT}stored_search" and xml.get("ID") == name
    assert [login.text for login in xml.iter(f"{XDAT}login")] == ["admin"]
    # a template: constraints become keywords, filled in when it is used
    intf.manage.search.save_template(name, "xnat:subjectData", columns, criteria, description="tpl")
    assert name in intf.manage.search.saved_templates()
    assert intf.manage.search.get_template(name)[0] == "xnat:subjectData"
    intf.manage.search.delete_template(name)
    intf.manage.search.delete(name)
    assert name not in intf.manage.search.saved()
    assert http.get(f"/data/search/saved/{name}").status_code == 404


def test_sharing_rights_and_element_searches(http: httpx.Client, server: LiveServer, new_id: NewId) -> None:
    project = new_id("P")
    create_project(http, project)
    create_subject(http, project, "S1")
    owner, other = _user(http, new_id), _user(http, new_id)
    assert http.put(f"/data/projects/{project}/users/Members/{owner[0]}").status_code == 200
    bundle = (
        '<xdat:bundle xmlns:xdat="http://nrg.wustl.edu/security" ID="@xnat:subjectData"'
        ' brief-description="shared" secure="{secure}"><xdat:root_element_name>xnat:subjectData'
        "</xdat:root_element_name><xdat:search_field><xdat:element_name>xnat:subjectData</xdat:element_name>"
        "<xdat:field_ID>SUBJECT_LABEL</xdat:field_ID></xdat:search_field>"
        '<xdat:search_where method="AND"><xdat:criteria><xdat:schema_field>xnat:subjectData/PROJECT'
        f"</xdat:schema_field><xdat:comparison_type>=</xdat:comparison_type><xdat:value>{project}"
        "</xdat:value></xdat:criteria></xdat:search_where></xdat:bundle>"
    )
    private, public = new_id("priv"), new_id("pub")
    with (
        httpx.Client(base_url=server.url, auth=owner) as o,
        httpx.Client(base_url=server.url, auth=other) as x,
    ):
        for sid, secure in ((private, "true"), (public, "false")):
            r = o.put(
                f"/data/search/saved/{sid}", params={"inbody": "true"}, content=bundle.format(secure=secure)
            )
            assert r.status_code == 200 and r.text == sid, describe(r)
        mine = {r["id"]: r for r in rows(o.get("/data/search/saved", params={"format": "json"}))}
        assert {private, public} <= set(mine) and mine[private]["users"] == owner[0]
        theirs = [r["id"] for r in rows(x.get("/data/search/saved", params={"format": "json"}))]
        assert public in theirs and private not in theirs
        assert x.get(f"/data/search/saved/{private}").status_code == 404
        # the other user runs the public search and sees only what they may read: nothing here
        assert csv_rows(x.get(f"/data/search/saved/{public}/results", params={"format": "csv"}).text) == []
        found = csv_rows(o.get(f"/data/search/saved/{public}/results", params={"format": "csv"}).text)
        assert [r["subject_label"] for r in found] == ["S1"]
        assert x.put(f"/data/search/saved/{public}", content=bundle.format(secure="false")).status_code == 403
        assert x.delete(f"/data/search/saved/{public}").status_code == 403
        # saveAs keeps the original and saves a copy under a free ID
        copy = x.put(
            f"/data/search/saved/{public}", params={"saveAs": "true"}, content=bundle.format(secure="true")
        )
        assert copy.status_code == 200 and copy.text == f"{public}_1"
        assert o.delete(f"/data/search/saved/{public}").status_code == 200
        assert o.get(f"/data/search/saved/{public}").status_code == 404
    # a search tagged with a project is listed only when asked for (XNAT's project searches)
    tagged = new_id("tagged")
    body = bundle.format(secure="false").replace('secure="false"', f'secure="false" tag="{project}"')
    assert http.put(f"/data/search/saved/{tagged}", content=body).status_code == 200
    assert tagged not in [r["id"] for r in rows(http.get("/data/search/saved", params={"format": "json"}))]
    for tag in ("true", project):
        listed = rows(http.get("/data/search/saved", params={"format": "json", "includeTag": tag}))
        assert tagged in [r["id"] for r in listed], tag
    # XNAT's @element search: the element's listing
    listing = rows(http.get("/data/search/saved/@xnat:subjectData/results", params={"format": "json"}))
    assert any(r.get("subject_label") == "S1" for r in listing)
    element = ET.fromstring(http.get("/data/search/saved/@xnat:subjectData").content)
    assert element.findtext(f"{XDAT}root_element_name") == "xnat:subjectData"
    assert http.get("/data/search/saved/@xnat:nothing/results").status_code == 400
    # refusals: not a bundle, an ID XNAT keeps for element searches; a search naming a field that
    # does not exist is stored as XNAT stores it (its handlePut looks only at the root element) and
    # answers 400 when it runs
    assert http.put(f"/data/search/saved/{new_id('x')}", content=b"<nope/>").status_code == 400
    unknown, odd = bundle.format(secure="false").replace("SUBJECT_LABEL", "NO_SUCH_FIELD"), new_id("x")
    assert http.put(f"/data/search/saved/{odd}", content=unknown).status_code == 200
    ran = http.get(f"/data/search/saved/{odd}/results", params={"format": "json"})
    assert ran.status_code == 400 and "NO_SUCH_FIELD" in ran.text
    assert http.put("/data/search/saved/@mine", content=bundle.format(secure="false")).status_code == 400
    assert httpx.get(f"{server.url}/data/search/saved").status_code == 401
