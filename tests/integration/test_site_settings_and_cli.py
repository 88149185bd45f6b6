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
            "user", "add", "dave", "--password", "dave-one", "--email", "d@example.org", "--data", str(data)
        ).returncode
        == 0
    )
    assert (
        xnatd("user", "add", "root2", "--password", "root2-pw", "--admin", "--data", str(data)).returncode
        == 0
    )
    again = xnatd("user", "add", "dave", "--password", "dave-xyz", "--data", str(data))
    assert again.returncode != 0 and "already exists" in again.stderr + again.stdout
    # the one password rule (as over REST and on the web pages), refused with its reason, no traceback
    for args in (("add", "weak", "--password", "short"), ("passwd", "dave", "--password", " " * 9)):
        weak = xnatd("user", *args, "--data", str(data))
        assert weak.returncode == 1 and "Traceback" not in weak.stderr, weak.stderr
        assert ("too short" if args[0] == "add" else "only spaces") in weak.stderr, weak.stderr
    listing = xnatd("user", "list", "--data", str(data)).stdout
    assert "dave" in listing and "d@example.org" in listing and "root2" in listing
    assert xnatd("user", "passwd", "dave", "--password", "dave-two", "--data", str(data)).returncode == 0
    with live_server(data, *db) as srv:

        def status(user: str, password: str) -> int:
            return httpx.get(f"{srv.url}/data/auth", auth=(user, password)).status_code

        assert (status("dave", "dave-one"), status("dave", "dave-two"), status("root2", "root2-pw")) == (
            401,
            200,
            200,
        )
        assert httpx.get(f"{srv.url}/xapi/users", auth=("root2", "root2-pw")).status_code == 200  # an admin
        token = httpx.get(f"{srv.url}/data/services/tokens/issue", auth=("dave", "dave-two")).json()
        assert status(token["alias"], token["secret"]) == 200
        assert xnatd("user", "disable", "dave", "--data", str(data)).returncode == 0
        assert status("dave", "dave-two") == 401
        assert "disabled" in xnatd("user", "list", "--data", str(data)).stdout
        assert xnatd("user", "enable", "dave", "--data", str(data)).returncode == 0
        assert status("dave", "dave-two") == 200
        assert status(token["alias"], token["secret"]) == 401  # disabling ended it for good
        token = httpx.get(f"{srv.url}/data/services/tokens/issue", auth=("dave", "dave-two")).json()
        assert (
            xnatd("user", "passwd", "dave", "--password", "dave-three", "--data", str(data)).returncode == 0
        )
        assert (status("dave", "dave-two"), status("dave", "dave-three")) == (401, 200)
        assert status(token["alias"], token["secret"]) == 401  # so did the new password


def test_project_creation_can_be_reserved_to_admins(tmp_path: Path) -> None:
    env = {"XNATD_ALLOW_PROJECT_CREATION": "false"}
    with live_server(tmp_path / "data", env=env) as srv, srv.client() as admin:
        assert (
            admin.post("/xapi/users", json={"username": "erin", "password": "erin-pw-1"}).status_code == 201
        )
        erin = httpx.Client(base_url=srv.url, auth=("erin", "erin-pw-1"))
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


def test_site_url_is_the_address_pages_show_to_copy(tmp_path: Path) -> None:
    """Behind a proxy the request's own address is the proxy's inside name: `site_url` wins."""
    env = {"XNATD_SITE_URL": "https://xnat.example.org/"}
    with live_server(tmp_path / "data", env=env) as srv:
        login = httpx.get(srv.url + "/app/login")
        assert 'curl -u USER "https://xnat.example.org/data/projects"' in login.text
        assert srv.url not in login.text


def test_verify_and_backup_say_their_counts_in_words(tmp_path: Path) -> None:
    with live_server(tmp_path / "data") as srv, srv.client() as admin:
        assert admin.put("/data/projects/ONE").status_code == 200
        put = admin.put("/data/projects/ONE/resources/R/files/a.txt", params={"inbody": "true"}, content=b"a")
        assert put.status_code == 200
        site = ["--data", str(srv.data), "--database", srv.database]
        one = run_xnatd("verify", *site)
        assert one.returncode == 0 and "1 file checked, 0 problems" in one.stderr, one.stderr
        copy = run_xnatd("backup", str(tmp_path / "copy"), *site)
        assert copy.returncode == 0 and "1 file (1 byte," in copy.stderr, copy.stderr
        admin.put("/data/projects/ONE/resources/R/files/b.txt", params={"inbody": "true"}, content=b"bb")
        two = run_xnatd("verify", *site)
        assert "2 files checked, 0 problems" in two.stderr, two.stderr
