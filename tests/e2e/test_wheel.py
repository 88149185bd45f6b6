"""xnatd as a package: the wheel `python -m build` makes, installed into a fresh virtualenv with no
checkout in sight, serves the API and the web pages (templates, static files and migrations are in it).

The wheel is built the way a release is: `python -m build` makes the sdist, then the wheel from the
unpacked sdist, so a file missing from either fails here. Its dependencies are installed with the
versions of `uv.lock` (`uv export`), as `make run` installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import REPO, free_port, stop_process, wait_ready

pytestmark = pytest.mark.slow

UV = REPO / ".tools" / "bin" / "uv"


def _run(args: list[str | Path], **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", out, REPO])
    return next(out.glob("xnatd-*-py3-none-any.whl"))


def test_the_wheel_holds_templates_static_files_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("ui/templates", "ui/static", "db/migrations/versions"):
        on_disk = {p.name for p in (REPO / "src" / "xnatd" / folder).iterdir() if p.is_file()}
        assert {f"xnatd/{folder}/{n}" for n in on_disk} <= names, folder
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "xnatd = xnatd.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_serves_with_no_checkout(wheel: Path, tmp_path: Path) -> None:
    venv, work = tmp_path / "venv", tmp_path / "elsewhere"
    work.mkdir()
    constraints = tmp_path / "constraints.txt"
    if UV.exists():
        _run([UV, "export", "--locked", "--no-hashes", "--no-emit-project", "--extra", "postgres",
              "-o", constraints], cwd=REPO)  # fmt: skip
        _run([UV, "venv", "--python", sys.executable, venv])
        _run([UV, "pip", "install", "--python", venv / "bin" / "python", "-c", constraints, wheel])
    else:  # pytest run by hand without `make`: plain pip, unpinned dependencies of the wheel's own pins
        _run([sys.executable, "-m", "venv", venv])
        _run([venv / "bin" / "pip", "install", "--quiet", wheel])
    installed = _run([venv / "bin" / "python", "-c", "import xnatd; print(xnatd.__file__)"], cwd=work)
    assert Path(installed.stdout.strip()).is_relative_to(venv), "xnatd must come from the wheel"

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(XNATD_ADMIN_PASSWORD="wheel-admin-pw", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    log = tmp_path / "serve.log"
    args = [venv / "bin" / "xnatd", "serve", "--data", work / "data", "--port", str(port), "--no-dicom"]
    with log.open("wb") as out:
        proc = subprocess.Popen([str(a) for a in args], cwd=work, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log)
        with httpx.Client(base_url=url, auth=("admin", "wheel-admin-pw"), timeout=60) as http:
            assert http.put("/data/projects/WHEEL").status_code in (200, 201)
            put = http.put("/data/projects/WHEEL/resources/NOTES/files/readme.txt?inbody=true", content=b"hi")
            assert put.status_code == 200, put.text
            assert http.get("/data/projects/WHEEL/resources/NOTES/files/readme.txt").content == b"hi"
            login = httpx.get(f"{url}/app/login", timeout=30)
            assert login.status_code == 200 and "<form" in login.text
            css = next(p.name for p in (REPO / "src/xnatd/ui/static").iterdir() if p.suffix == ".css")
            assert httpx.get(f"{url}/app/static/{css}", timeout=30).status_code == 200
        assert (work / "data" / "xnatd.db").exists()
        assert not (work / "data").is_relative_to(REPO)
    finally:
        stop_process(proc)
    shutil.rmtree(venv, ignore_errors=True)
