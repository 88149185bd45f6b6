"""``xnatd verify``, ``backup`` and ``restore`` against a running server: a backup taken while uploads
go on restores into a new folder, a new server serves the same files (same digests), and verify is
clean on both (tests/unit/services/operations/test_verify.py covers each kind of damage)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import XNATD, LiveServer, backend, live_server

pytestmark = pytest.mark.slow


def xnatd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin"}
    return subprocess.run(
        [str(XNATD), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def site_args(server: LiveServer) -> list[str]:
    return ["--data", str(server.data), "--database", server.database]


def digests(http: httpx.Client, exp: str) -> dict[str, str]:
    rows = http.get(f"{exp}/resources/R/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    return {r["Name"]: r["digest"] for r in rows}


def test_backup_while_serving_then_restore_and_serve(tmp_path: Path) -> None:
    exp = "/data/projects/P/subjects/S/experiments/E"
    with live_server(tmp_path / "data") as server, server.client() as http:
        assert http.put("/data/projects/P").status_code == 200
        assert http.put("/data/projects/P/subjects/S").status_code == 201
        assert http.put(exp, params={"xsiType": "xnat:mrSessionData"}).status_code in (200, 201)
        for i in range(20):
            body = os.urandom(1000 + i)
            r = http.put(f"{exp}/resources/R/files/f{i}.bin", content=body, params={"inbody": "true"})
            assert r.status_code == 200
        assert xnatd("verify", *site_args(server)).returncode == 0

        stop = threading.Event()

        def keep_uploading() -> None:  # writes go on while the backup runs
            with server.client() as other:
                n = 0
                while not stop.is_set():
                    other.put(
                        f"{exp}/resources/LIVE/files/g{n}.bin", content=b"x" * n, params={"inbody": "true"}
                    )
                    n += 1

        writer = threading.Thread(target=keep_uploading)
        writer.start()
        try:
            done = xnatd("backup", str(tmp_path / "bk"), *site_args(server))
        finally:
            stop.set()
            writer.join()
        assert done.returncode == 0, done.stderr + done.stdout
        before = digests(http, exp)
        assert len(before) == 20

    restore_args = ["restore", str(tmp_path / "bk"), "--data", str(tmp_path / "restored")]
    extra: tuple[str, ...] = ()
    if backend() == "postgresql":
        from tests.support.postgres import database_url

        url = database_url()
        restore_args += ["--database", url]
        extra = ("--database", url)
    done = xnatd(*restore_args)
    assert done.returncode == 0, done.stderr + done.stdout
    with live_server(tmp_path / "restored", *extra) as again, again.client() as http:
        assert digests(http, exp) == before
        for name, digest in before.items():
            body = http.get(f"{exp}/resources/R/files/{name}").content
            assert hashlib.md5(body).hexdigest() == digest
        checked = xnatd("verify", *site_args(again))
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_verify_reports_a_deleted_file_over_the_cli(tmp_path: Path) -> None:
    exp = "/data/projects/Q/subjects/S/experiments/E"
    with live_server(tmp_path / "data") as server, server.client() as http:
        http.put("/data/projects/Q")
        http.put("/data/projects/Q/subjects/S")
        http.put(exp, params={"xsiType": "xnat:mrSessionData"})
        assert (
            http.put(f"{exp}/resources/R/files/a.txt", content=b"a", params={"inbody": "true"}).status_code
            == 200
        )
        (path,) = [p for p in (server.data / "archive").rglob("a.txt")]
        path.unlink()
        found = xnatd("verify", "--project", "Q", "--no-md5", *site_args(server))
        assert found.returncode == 1 and "missing" in found.stdout
        repaired = xnatd("verify", "--repair", *site_args(server))
        assert repaired.returncode == 1 and "NOT FIXED" in repaired.stdout
