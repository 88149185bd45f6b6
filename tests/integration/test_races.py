"""Several server processes, many clients at once, the same data: every race ends in a consistent archive.

The server runs with ``--workers 3`` (three processes sharing one database and one data folder), on
SQLite in the first run of `make test` and on PostgreSQL in the second.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx
import pytest

from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("races") / "data", "--workers", "3") as srv:
        yield srv


def at_once(n: int, work: Callable[[int], T]) -> list[T]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(work, range(n)))


def client(server: LiveServer) -> httpx.Client:
    # a new connection per call, so the requests spread over the worker processes
    return httpx.Client(base_url=server.url, auth=("admin", "admin"), timeout=120)


def new_project(server: LiveServer) -> str:
    pid = f"R{uuid.uuid4().hex[:8]}"
    with client(server) as c:
        assert c.put(f"/data/projects/{pid}").status_code == 200
    return pid


def test_accession_ids_stay_unique_under_concurrent_creates(server: LiveServer) -> None:
    pid = new_project(server)

    def create(i: int) -> tuple[int, str]:
        with client(server) as c:
            r = c.put(f"/data/projects/{pid}/subjects/S{i:03d}")
            return r.status_code, r.text

    results = at_once(40, create)
    assert {status for status, _ in results} == {201}
    ids = [body for _, body in results]
    assert len(set(ids)) == 40 and all(i.startswith("XNAT_S") for i in ids)
    with client(server) as c:
        rows = c.get(f"/data/projects/{pid}/subjects", params={"format": "json"}).json()["ResultSet"][
            "Result"
        ]
    assert sorted(r["ID"] for r in rows) == sorted(ids)


def test_one_label_created_by_many_at_once_exists_once(server: LiveServer) -> None:
    pid = new_project(server)

    def create(i: int) -> tuple[int, str]:
        with client(server) as c:
            r = c.put(f"/data/projects/{pid}/subjects/SAME", params={"gender": "female"})
            return r.status_code, r.text

    results = at_once(16, create)
    statuses = Counter(status for status, _ in results)
    assert statuses[201] == 1 and statuses[200] == 15, statuses  # the others found it and updated it
    assert len({body for _, body in results}) == 1
    with client(server) as c:
        rows = c.get(f"/data/projects/{pid}/subjects", params={"format": "json"}).json()["ResultSet"][
            "Result"
        ]
    assert [r["label"] for r in rows] == ["SAME"]


def test_parallel_uploads_into_one_new_resource(server: LiveServer) -> None:
    pid = new_project(server)
    base = f"/data/projects/{pid}/subjects/S/experiments/E"
    with client(server) as c:
        assert c.put(base, params={"xsiType": "xnat:mrSessionData"}).status_code == 201

    def upload(i: int) -> int:
        with client(server) as c:
            body = f"file {i}".encode() * 1000
            return c.put(
                f"{base}/resources/NEW/files/f{i:02d}.txt", content=body, params={"inbody": "true"}
            ).status_code

    assert set(at_once(24, upload)) == {200}
    with client(server) as c:
        res = c.get(f"{base}/resources", params={"format": "json"}).json()["ResultSet"]["Result"]
        rows = c.get(f"{base}/resources/NEW/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert [(r["label"], r["file_count"]) for r in res] == [("NEW", "24")]
    for row in rows:
        i = int(row["Name"][1:3])
        assert row["digest"] == hashlib.md5(f"file {i}".encode() * 1000).hexdigest()


def test_the_same_new_file_uploaded_at_once_is_stored_once(server: LiveServer) -> None:
    pid = new_project(server)
    base = f"/data/projects/{pid}/subjects/S/experiments/E"
    with client(server) as c:
        assert c.put(base, params={"xsiType": "xnat:mrSessionData"}).status_code == 201

    def upload(i: int) -> int:
        with client(server) as c:
            body = f"version {i}".encode()
            return c.put(
                f"{base}/resources/R/files/same.txt", content=body, params={"inbody": "true"}
            ).status_code

    statuses = Counter(at_once(12, upload))
    assert statuses[200] == 1 and statuses[409] == 11, statuses
    with client(server) as c:
        rows = c.get(f"{base}/resources/R/files", params={"format": "json"}).json()["ResultSet"]["Result"]
        content = c.get(f"{base}/resources/R/files/same.txt").content
    assert len(rows) == 1 and rows[0]["digest"] == hashlib.md5(content).hexdigest()
    assert content.startswith(b"version ")


OWNERS = 6


def test_owners_leaving_at_once_leave_one(server: LiveServer) -> None:
    """Every owner of a project leaves at the same moment, through separate worker processes: the
    project keeps one (the rule reads the owners under a lock on the project's row)."""
    names = [f"own{i}x{server.port}" for i in range(OWNERS)]
    with client(server) as admin:
        for name in names:
            r = admin.post("/xapi/users", json={"username": name, "password": "pw-123456"})
            assert r.status_code in (200, 201), r.text
    for round_ in range(10):
        pid = new_project(server)
        with client(server) as admin:
            for name in names:
                assert admin.put(f"/data/projects/{pid}/users/Owners/{name}").status_code == 200
            assert admin.delete(f"/data/projects/{pid}/users/Owners/admin").status_code == 200
        statuses = at_once(OWNERS, lambda i, pid=pid: _leave(server, pid, names[i]))
        with client(server) as admin:
            rows = admin.get(f"/data/projects/{pid}/users", params={"format": "json"}).json()
        owners = [r["login"] for r in rows["ResultSet"]["Result"] if r["role"] == "owner"]
        assert len(owners) == 1 and statuses.count(409) == 1, (round_, statuses, owners)


def _leave(server: LiveServer, pid: str, name: str) -> int:
    with httpx.Client(base_url=server.url, auth=(name, "pw-123456"), timeout=120) as c:
        return c.delete(f"/data/projects/{pid}/users/Owners/{name}").status_code
