"""docs/deploy.md followed on loopback, with the very files of deploy/ that the guide shows.

One site: PostgreSQL (tests/support/postgres.py), the environment file, a Dask scheduler and worker,
`xnatd serve --no-dicom --workers 2`, `xnatd dicom` and `xnatd worker`, each started from its unit's
ExecStart line (tests/support/deploy.py substitutes only paths, addresses, ports and process counts)
with the environment systemd would give it, and nginx with the guide's site file and a self-signed
certificate in front. Then what users and the administrator do: xnatpy over HTTPS, a 1 GiB upload and
its zip download through nginx (neither buffered whole), storescu, a dcm2niix job on the Dask worker,
the backup unit, a restore and a verify. Everything is stopped by PID.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import ssl
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pydicom
import pytest
import xnat

from tests.support import deploy as d
from tests.support.dicom_copies import dicom_files
from tests.support.jobs import SIEMENS, add_scan, launch, make_session, wait_jobs
from tests.support.live_server import REPO, free_port, wait_ready
from tests.support.postgres import database_url

PROJECT = "DEPLOY"
MIB = 1 << 20
BIG = 1024 * MIB


@dataclass
class Site:
    url: str  # https://localhost:PORT, through nginx
    redirect: str  # nginx's plain-HTTP server
    ca: Path
    folder: Path
    data: Path
    env_file: Path
    env: dict[str, str]
    dicom_port: int
    procs: dict[str, subprocess.Popen[bytes]]

    def client(self, **kw: Any) -> httpx.Client:
        auth = ("admin", self.env["XNATD_ADMIN_PASSWORD"])
        tls = ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.url, auth=auth, verify=tls, timeout=600, **kw)


def _env_file(folder: Path, data: Path, https_port: int, scheduler: str) -> Path:
    """deploy/env.example with this machine's database, data folder, URL and Dask scheduler."""
    values = d.read_env_file(d.DEPLOY / "env.example")
    mine = {
        "XNATD_DATA": str(data),
        "XNATD_DATABASE_URL": database_url(),
        "XNATD_SITE_URL": f"https://localhost:{https_port}",
        "XNATD_JOB_EXECUTOR": f"dask://{scheduler}",
    }
    assert set(mine) <= set(values), "the guide's environment file names these settings"
    path = folder / "env"
    d.write_env_file(path, {**values, **mine})
    return path


def _wait_echo(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        echo = ["echoscu", "-aec", "XNAT", "127.0.0.1", str(port)]
        if subprocess.run(echo, capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"the DICOM receiver did not answer C-ECHO:\n{log.read_text()[-3000:]}")


def _start_roles(site: Site, ports: dict[str, int]) -> None:
    """The units, in the order `systemctl enable --now` would not guarantee (so: all at once)."""
    opt, sched = {"/opt/xnatd": str(REPO)}, {"10.0.0.5": "127.0.0.1", "8786": str(ports["sched"])}
    web = {**opt, "8080": str(ports["web"]), "--workers 4": "--workers 2"}
    dicom = {**opt, "0.0.0.0": "127.0.0.1", "8104": str(ports["dicom"])}
    commands = {
        "dask-scheduler": d.exec_start(
            "dask-scheduler.service", {**opt, **sched, "8787": str(ports["dash"])}
        ),
        "dask-worker": d.exec_start("dask-worker.service", {**opt, **sched, "--nworkers 8": "--nworkers 1"}),
        "web": d.exec_start("xnatd-web.service", web),
        "dicom": d.exec_start("xnatd-dicom.service", dicom),
        "worker": d.exec_start("xnatd-worker.service", {**opt, "--workers 4": "--workers 2"}),
    }
    for name, argv in commands.items():
        site.procs[name] = d.start(argv, site.env, site.folder / f"{name}.log")
    wait_ready(f"http://127.0.0.1:{ports['web']}", site.procs["web"], site.folder / "web.log")
    _wait_echo(ports["dicom"], site.procs["dicom"], site.folder / "dicom.log")


def _start_nginx(site: Site, ports: dict[str, int]) -> None:
    folder = site.folder / "nginx"
    folder.mkdir()
    conf = d.nginx_main(folder, d.nginx_site(folder, ports["https"], ports["http"], ports["web"]))
    base = ["nginx", "-e", str(folder / "error.log"), "-c", str(conf)]
    check = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "warn" not in check.stderr, check.stderr
    site.procs["nginx"] = d.start([*base, "-g", "daemon off;"], site.env, site.folder / "nginx.log")
    deadline = time.monotonic() + 120
    while True:
        try:
            with site.client() as http:
                if http.get("/xapi/siteConfig/buildInfo").status_code == 200:
                    return
        except httpx.HTTPError:
            if time.monotonic() > deadline or site.procs["nginx"].poll() is not None:
                raise
        assert time.monotonic() < deadline, (folder / "error.log").read_text()
        time.sleep(0.1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing: `make install-system` installs Debian's nginx")
    folder = tmp_path_factory.mktemp("deploy")
    ports = {k: free_port() for k in ("sched", "dash", "web", "dicom", "https", "http")}
    data = folder / "srv-xnatd"
    data.mkdir()
    env_file = _env_file(folder, data, ports["https"], f"127.0.0.1:{ports['sched']}")
    site = Site(
        url=f"https://localhost:{ports['https']}", redirect=f"http://localhost:{ports['http']}",
        ca=folder / "nginx" / "fullchain.pem", folder=folder, data=data, env_file=env_file,
        env=d.service_env(env_file, folder / "home"), dicom_port=ports["dicom"], procs={},
    )  # fmt: skip
    try:
        _start_roles(site, ports)
        _start_nginx(site, ports)
        yield site
    finally:
        for name in ("nginx", "worker", "dicom", "web", "dask-worker", "dask-scheduler"):
            if name in site.procs:
                d.stop_tree(site.procs[name])


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Every unit file as systemd itself reads it (unknown keys, bad syntax, missing executables)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (Debian package systemd)")
    for src in d.UNITS.iterdir():
        (tmp_path / src.name).write_text(src.read_text().replace("/opt/xnatd", str(REPO)))
    units = sorted(str(p) for p in tmp_path.iterdir())
    out = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "nknown" not in out.stderr and "nvalid" not in out.stderr, out.stderr
    assert len(units) == 7


def test_the_jobqueue_script_builds_slurm_and_pbs_job_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    """deploy/dask_jobqueue_cluster.py needs no batch system to write its job scripts."""
    spec = importlib.util.spec_from_file_location("jq", d.DEPLOY / "dask_jobqueue_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loopback = {"host": "127.0.0.1", "port": 0, "dashboard_address": "127.0.0.1:0"}
    expected = {
        "slurm": ["#SBATCH -p normal", "#SBATCH -A MYPROJECT", "#SBATCH -t 02:00:00", "#SBATCH --mem=4G"],
        "pbs": ["#PBS -q normal", "#PBS -A MYPROJECT", "#PBS -l walltime=02:00:00", "select=1:ncpus=1:mem="],
    }
    for kind, lines in expected.items():
        cluster = module.make_cluster(kind, loopback)
        try:
            script = cluster.job_script()
            address = cluster.scheduler_address
        finally:
            cluster.close()
        for line in [*lines, "source /opt/xnatd/.venv/bin/activate", "--nthreads 1", address]:
            assert line in script, (line, script)
    with pytest.raises(SystemExit):
        module.make_cluster("sge", loopback)
    module.SCHEDULER = loopback  # the guide's `... pbs --script`, on this machine's address
    module.main(["dask_jobqueue_cluster.py", "pbs", "--script"])
    assert "#PBS -A MYPROJECT" in capsys.readouterr().out


@pytest.mark.slow
def test_http_redirects_and_xnatpy_imports_over_tls(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = httpx.get(site.redirect + "/data/projects", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "https://localhost/data/projects"
    with pytest.raises(httpx.ConnectError):  # a certificate nobody vouched for is refused
        httpx.get(site.url + "/data/projects")
    # xnatpy 0.8.1 ignores a CA file given as verify=PATH; requests reads this variable (docs/deploy.md).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(site.ca))
    password = site.env["XNATD_ADMIN_PASSWORD"]
    session = xnat.connect(site.url, user="admin", password=password, loglevel="ERROR")
    try:
        session.put(f"/data/projects/{PROJECT}")
        archive = tmp_path / "series.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for p in dicom_files(SIEMENS / "mr_0003"):
                zf.write(p, p.name)
        dest = f"/archive/projects/{PROJECT}"
        exp = session.services.import_(
            archive, destination=dest, project=PROJECT, subject="S1", experiment="E1"
        )
        assert exp.label == "E1" and list(exp.scans.keys()) == ["3"]
        assert exp.id.startswith(site.env["XNATD_SITE_ID"] + "_E")  # the environment file's site ID
        assert "E1" in session.projects[PROJECT].experiments
    finally:
        session.disconnect()


def _nginx_spools(site: Site) -> list[str]:
    """Files nginx's worker has open under its temporary folders (request bodies, responses)."""
    folder = str(site.folder / "nginx")
    found = []
    for worker in psutil.Process(site.procs["nginx"].pid).children():
        for fd in Path(f"/proc/{worker.pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith((f"{folder}/body", f"{folder}/proxy")):
                found.append(target)
    return found


def _stage_size(site: Site) -> int:
    """The largest upload being staged (each process has its own folder under DATA/tmp)."""
    sizes = []
    for part in (site.data / "tmp").rglob(".stage-*.part"):
        with contextlib.suppress(FileNotFoundError):  # renamed into place meanwhile
            sizes.append(part.stat().st_size)
    return max(sizes, default=0)


def _body(site: Site, block: bytes, md5: Any) -> Iterator[bytes]:
    """1 GiB; halfway, xnatd must already hold most of what was sent (nginx streams, not spools)."""
    for i in range(BIG // len(block)):
        if i == BIG // len(block) // 2:
            deadline = time.monotonic() + 120
            while _stage_size(site) < BIG // 4:
                assert time.monotonic() < deadline, f"xnatd got {_stage_size(site)} bytes of {BIG // 2} sent"
                time.sleep(0.05)
            assert _nginx_spools(site) == []
        md5.update(block)
        yield block


@pytest.mark.slow
def test_a_gib_upload_and_its_zip_download_stream_through_nginx(site: Site, tmp_path: Path) -> None:
    md5, block = hashlib.md5(), os.urandom(MIB)
    with site.client() as http:
        uri = make_session(http) + "/resources/BIG/files"
        headers = {"Content-Length": str(BIG), "Content-Type": "application/octet-stream"}
        r = http.put(
            f"{uri}/big.bin", params={"inbody": "true"}, content=_body(site, block, md5), headers=headers
        )
        assert r.status_code in (200, 201), r.text
        rows = http.get(uri, params={"format": "json"}).json()["ResultSet"]["Result"]
        assert [(x["Name"], int(x["Size"]), x["digest"]) for x in rows] == [("big.bin", BIG, md5.hexdigest())]
        out, first = tmp_path / "big.zip", None
        started = time.monotonic()
        with http.stream("GET", uri, params={"format": "zip"}) as resp, out.open("wb") as f:
            assert resp.status_code == 200
            for chunk in resp.iter_bytes(MIB):
                if first is None:
                    first = time.monotonic() - started
                    time.sleep(2)  # a slow client: nginx must not spool the rest meanwhile
                    assert _nginx_spools(site) == []
                f.write(chunk)
        # Keep the site small for the backup test (a backup checks the MD5 of every file it names).
        assert http.delete(uri.removesuffix("/files")).status_code == 200
    with zipfile.ZipFile(out) as zf:
        (name,) = zf.namelist()
        got = hashlib.md5()
        with zf.open(name) as member:
            while piece := member.read(8 * MIB):
                got.update(piece)
    assert name.endswith("big.bin") and got.hexdigest() == md5.hexdigest()
    assert first is not None and first < 10, "the zip starts at once, before 1 GiB is read"


@pytest.mark.slow
def test_an_upload_over_http2_as_browsers_send_it(site: Site) -> None:
    """Browsers speak HTTP/2 to nginx (`listen ... http2`): curl streams 64 MiB that way."""
    block, md5 = os.urandom(MIB), hashlib.md5()
    with site.client() as http:
        uri = make_session(http) + "/resources/H2/files"
        user = f"admin:{site.env['XNATD_ADMIN_PASSWORD']}"
        target = f"{site.url}{uri}/h2.bin?inbody=true"
        put = ["curl", "-sS", "--http2", "--cacert", str(site.ca), "-u", user, "-T", "-",
               "-w", "%{http_version} %{http_code}", "-o", "/dev/null", target]  # fmt: skip
        curl = subprocess.Popen(put, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert curl.stdin is not None
        for i in range(64):
            if i == 32:  # halfway: xnatd already holds most of it (unbuffered over HTTP/2 too)
                deadline = time.monotonic() + 120
                while _stage_size(site) < 16 * MIB:
                    assert time.monotonic() < deadline, f"xnatd got {_stage_size(site)} of 32 MiB sent"
                    time.sleep(0.05)
            curl.stdin.write(block)
            curl.stdin.flush()
            md5.update(block)
        out, err = curl.communicate(timeout=120)
        assert out.decode() in ("2 200", "2 201"), out + err
        rows = http.get(uri, params={"format": "json"}).json()["ResultSet"]["Result"]
        assert [x["digest"] for x in rows] == [md5.hexdigest()]
        assert http.delete(uri.removesuffix("/files")).status_code == 200


@pytest.mark.slow
def test_storescu_sends_a_study_to_the_receiver(site: Site, tmp_path: Path) -> None:
    with site.client() as http:
        assert http.put("/data/projects/RECEIVED").status_code in (200, 201)
    files = []
    for i, src in enumerate(dicom_files(SIEMENS / "mr_0004")):
        ds = pydicom.dcmread(src)
        ds.PatientComments = "Project:RECEIVED Subject:S2 Session:E2"
        files.append(tmp_path / f"{i}.dcm")
        ds.save_as(files[-1])
    send = ["storescu", "-aec", "XNAT", "127.0.0.1", str(site.dicom_port), *map(str, files)]
    assert subprocess.run(send, capture_output=True, timeout=120).returncode == 0
    with site.client() as http:
        deadline = time.monotonic() + 120
        while True:
            rows = http.get("/data/prearchive/projects/RECEIVED", params={"format": "json"})
            names = [(x["subject"], x["name"]) for x in rows.json()["ResultSet"]["Result"]]
            if ("S2", "E2") in names or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert ("S2", "E2") in names


@pytest.mark.slow
def test_dcm2niix_runs_on_the_dask_worker_for_the_worker_unit(site: Site) -> None:
    with site.client() as http:
        scan = add_scan(http, make_session(http), "4", SIEMENS / "mr_0004")
        (doc,) = wait_jobs(http, [launch(http, scan)[0]["id"]], timeout=90)
        assert doc["status"] == "complete", doc
        assert doc["worker"].split(":")[1] == str(site.procs["worker"].pid)  # not the web server
        log = http.get(f"/xapi/jobs/{doc['id']}/log").text
        ran_in = int(log.split("(pid ", 1)[1].split(")", 1)[0])
        dask_pids = {p.pid for p in psutil.Process(site.procs["dask-worker"].pid).children(recursive=True)}
        assert ran_in in dask_pids, "the run happened in a Dask worker process"
        files = http.get(f"{scan}/resources/NIFTI/files", params={"format": "json"}).json()
        assert any(x["Name"].endswith(".nii.gz") for x in files["ResultSet"]["Result"])


def _admin(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    """deploy/xnatd-env, as the guide runs administrative commands."""
    env = {**d.service_env(site.env_file, site.folder / "home"), "XNATD_ENV": str(site.env_file)}
    return subprocess.run(
        [str(d.DEPLOY / "xnatd-env"), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_the_backup_unit_then_restore_and_verify(site: Site) -> None:
    with site.client() as http:
        stored = make_session(http) + "/resources/NOTES/files/notes.txt"
        assert http.put(stored, params={"inbody": "true"}, content=b"kept").status_code in (200, 201)
    backups = site.folder / "srv-xnatd-backup"
    backups.mkdir()
    argv = d.exec_start("xnatd-backup.service", {"/opt/xnatd": str(REPO), "/srv/xnatd-backup": str(backups)})
    env = {**site.env, "XNATD_ENV": str(site.env_file)}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (dest,) = backups.iterdir()
    assert (dest / "database.pgdump").stat().st_size > 0
    manifest = (dest / "manifest.tsv").read_text()
    assert "NOTES/notes.txt\t4\t" + hashlib.md5(b"kept").hexdigest() in manifest
    restored = site.folder / "restored"
    back = _admin(site, "restore", str(dest), "--data", str(restored), "--database", database_url())
    assert back.returncode == 0, back.stderr
    url = back.args[-1]
    check = _admin(site, "verify", "--data", str(restored), "--database", url, "--no-md5")
    assert check.returncode == 0, check.stdout + check.stderr
    assert _admin(site, "verify").returncode == 0  # the running site itself
