"""Site settings that change who may do what, and the `xnatd user` commands, through their real doors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import XNATD, backend, live_server
from tests.support.postgres import database_url

pytestmark = pytest.mark.slow


def run_xnatd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(XNATD), *args], capture_output=True, text=True, timeout=120, check=False)


def test_user_commands_create_change_disable_and_enable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db: tuple[str, ...] = ()
    if backend() == "postgresql":
        db = ("--database", database_url())  # the commands and the server share the same database

    def xnatd(*args: str) -> subprocess.CompletedProcess[str]:
        return run_xnatd(*args, *db)

    assert (
        xnatd(
            "user", "add", "dave", "--password", "one", "--email", "d@example.org", "--data", str(data)
        ).returncode
        == 0
    )
    assert xnatd("user", "add", "root2", "--password", "r", "--admin", "--data", str(data)).returncode == 0
    again = xnatd("user", "add", "dave", "--password", "x", "--data", str(data))
    assert again.returncode != 0 and "already exists" in again.stderr + again.stdout
    listing = xnatd("user", "list", "--data", str(data)).stdout
    assert "dave" in listing and "d@example.org" in listing and "root2" in listing
    assert xnatd("user", "passwd", "dave", "--password", "two", "--data", str(data)).returncode == 0
    with live_server(data, *db) as srv:

        def status(user: str, password: str) -> int:
            return httpx.get(f"{srv.url}/data/auth", auth=(user, password)).status_code

        assert (status("dave", "one"), status("dave", "two"), status("root2", "r")) == (401, 200, 200)
        assert httpx.get(f"{srv.url}/xapi/users", auth=("root2", "r")).status_code == 200  # an admin
        assert xnatd("user", "disable", "dave", "--data", str(data)).returncode == 0
        assert status("dave", "two") == 401
        assert "disabled" in xnatd("user", "list", "--data", str(data)).stdout
        assert xnatd("user", "enable", "dave", "--data", str(data)).returncode == 0
        assert status("dave", "two") == 200


def test_project_creation_can_be_reserved_to_admins(tmp_path: Path) -> None:
    env = {"XNATD_ALLOW_PROJECT_CREATION": "false"}
    with live_server(tmp_path / "data", env=env) as srv, srv.client() as admin:
        assert admin.post("/xapi/users", json={"username": "erin", "password": "pw"}).status_code == 201
        erin = httpx.Client(base_url=srv.url, auth=("erin", "pw"))
        r = erin.put("/data/projects/ERINS")
        assert r.status_code == 403 and "administrators" in r.text
        assert admin.put("/data/projects/ADMINS").status_code == 200


def test_guest_access_reads_public_projects_only(tmp_path: Path) -> None:
    with live_server(tmp_path / "data", env={"XNATD_GUEST_ACCESS": "true"}) as srv, srv.client() as admin:
        for pid, level in (("PUB", "public"), ("PROT", "protected"), ("PRIV", "private")):
            assert admin.put(f"/data/projects/{pid}", params={"accessibility": level}).status_code == 200
            assert admin.put(f"/data/projects/{pid}/subjects/S1").status_code == 201
        guest = httpx.Client(base_url=srv.url)
        ids = {
            r["ID"]
            for r in guest.get("/data/projects", params={"format": "json"}).json()["ResultSet"]["Result"]
        }
        assert ids == {"PUB"}  # protected projects are described to logged-in users only
        assert guest.get("/data/projects/PUB/subjects/S1", params={"format": "json"}).status_code == 200
        assert guest.get("/data/projects/PRIV/subjects/S1", params={"format": "json"}).status_code == 404
        assert guest.put("/data/projects/PUB/subjects/S2").status_code == 401  # writes: log in first
        assert guest.put("/data/projects/NEW").status_code == 401
