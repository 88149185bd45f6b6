"""Races across processes (issue #8): several processes receive one study at once, and several job
dispatchers claim from one queue. Both run on SQLite in the first run of `make test` and on a real
PostgreSQL server in the second (XNATD_TEST_BACKEND=postgresql).

The processes share one data folder and one database, as in docs/deploy.md: `xnatd serve --workers 3`
(three HTTP worker processes), two separate `xnatd dicom` receivers, and two `xnatd worker`s.
"""

from __future__ import annotations

import io
import random
import subprocess
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.jobs import SIEMENS, add_scan, make_session, series_zip, uid, wait_jobs
from tests.support.live_server import LiveServer, live_server
from tests.support.processes import dicom_receiver, xnatd_process

pytestmark = pytest.mark.slow
GE = TESTDATA / "dcm_qa_nih" / "20180918GE"
PER_SERIES = 10  # files of each of the four GE series: 40 instances per study
ROUTES = ("rest", "zip", "dicom_a", "dicom_b")


# --- one study from several processes ------------------------------------------------------------


@pytest.fixture(scope="module")
def receiving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int, int]]:
    """The HTTP server (3 worker processes, no job runs) and two `xnatd dicom` processes beside it."""
    data = tmp_path_factory.mktemp("process-races") / "data"
    with (
        live_server(data, "--workers", "3", "--job-workers", "0") as srv,
        dicom_receiver(srv, "dicom-a") as port_a,
        dicom_receiver(srv, "dicom-b") as port_b,
    ):
        yield srv, port_a, port_b


def _study(out: Path, project: str, tag: str) -> dict[str, Path]:
    """A fresh copy of four GE series naming ``project`` in PatientComments (how a receiver routes
    it); SOP instance UID -> file."""
    source = [f for d in sorted(GE.glob("mr_*")) for f in dicom_files(d)[:PER_SERIES]]
    by_sop = {}
    for path in copy_study(source, out, tag):
        ds = pydicom.dcmread(path)
        ds.PatientComments = f"Project: {project}"
        ds.save_as(path, enforce_file_format=False)
        by_sop[str(ds.SOPInstanceUID)] = path
    return by_sop


def _split(files: list[Path], round_no: int) -> dict[str, list[Path]]:
    """Round 0: files dealt at random, a fifth sent twice; round 1: whole series per route, with
    overlaps; round 2: every file through two routes."""
    rng = random.Random(round_no)
    parts: dict[str, list[Path]] = {r: [] for r in ROUTES}
    for i, f in enumerate(files):
        if round_no == 1:
            first = ROUTES[i // PER_SERIES % len(ROUTES)]
            chosen = [first] + ([rng.choice([r for r in ROUTES if r != first])] if i % 4 == 0 else [])
        else:
            chosen = rng.sample(ROUTES, 2 if round_no == 2 or rng.random() < 0.2 else 1)
        for r in chosen:
            parts[r].append(f)
    for r in ROUTES:
        rng.shuffle(parts[r])
    assert all(parts.values()), parts
    return parts


def _zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    return buf.getvalue()


def _storescu(port: int, files: list[Path]) -> None:
    args = ["storescu", "-aet", "RACER", "-aec", "XNAT", "127.0.0.1", str(port), *map(str, files)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, env={"TCP_NODELAY": "1"})
    assert out.returncode == 0, out.stderr


def _send_all(srv: LiveServer, ports: tuple[int, int], project: str, parts: dict[str, list[Path]]) -> None:
    """Every part at the same moment: three threads posting one file per request (a new connection
    each, so the three HTTP workers share them), one zip, and storescu to each receiver."""
    dest = {"dest": f"/prearchive/projects/{project}"}
    rest = [parts["rest"][i::3] for i in range(3)]
    tasks: list[Callable[[], None]] = []

    def one_by_one(files: list[Path]) -> None:
        for f in files:
            r = httpx.post(
                f"{srv.url}/data/services/import", params=dest, content=f.read_bytes(),
                headers={"Content-Type": "application/dicom"}, auth=("admin", "admin"), timeout=120,
            )  # fmt: skip
            assert r.status_code == 200, r.text

    def zipped() -> None:
        r = httpx.post(
            f"{srv.url}/data/services/import", params=dest, content=_zip(parts["zip"]),
            headers={"Content-Type": "application/zip"}, auth=("admin", "admin"), timeout=120,
        )  # fmt: skip
        assert r.status_code == 200, r.text

    tasks += [lambda fs=fs: one_by_one(fs) for fs in rest if fs]  # type: ignore[misc]
    tasks += [
        zipped,
        lambda: _storescu(ports[0], parts["dicom_a"]),
        lambda: _storescu(ports[1], parts["dicom_b"]),
    ]
    start = threading.Barrier(len(tasks))

    def run(task: Callable[[], None]) -> None:
        start.wait(timeout=60)
        task()

    with ThreadPoolExecutor(len(tasks)) as pool:
        list(pool.map(run, tasks))


def _rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def _sessions_of(http: httpx.Client, project: str, study_uid: str) -> list[dict[str, str]]:
    listing = _rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}))
    return [s for s in listing if s["tag"] == study_uid]


def _filed(http: httpx.Client, session_url: str) -> int:
    scans = _rows(http.get(f"/data{session_url}/scans", params={"format": "json"}))
    return sum(int(s["file_count"]) for s in scans)


def _wait_filed(http: httpx.Client, project: str, study_uid: str, expected: int) -> list[dict[str, str]]:
    """Until the receivers (which file asynchronously) have filed everything; then a little longer,
    so a late duplicate would still show."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sessions = _sessions_of(http, project, study_uid)
        if sum(_filed(http, s["url"]) for s in sessions) >= expected:
            break
        time.sleep(0.3)
    time.sleep(1.5)
    return _sessions_of(http, project, study_uid)


def _sops_on_disk(folder: Path) -> Counter[str]:
    return Counter(
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in folder.rglob("*")
        if p.is_file() and p.parent.name == "DICOM"
    )


def _file_rows(http: httpx.Client, base: str, scans: list[dict[str, str]]) -> dict[str, list[str]]:
    """scan ID -> the names of its DICOM file rows."""
    return {
        s["ID"]: [f["Name"] for f in _rows(http.get(f"{base}/scans/{s['ID']}/resources/DICOM/files",
                                                     params={"format": "json"}))]
        for s in scans
    }  # fmt: skip


def _check_exactly_once(
    folder: Path, rows: dict[str, list[str]], scans: list[dict[str, str]], expected: set[str]
) -> None:
    on_disk = _sops_on_disk(folder)
    assert set(on_disk) == expected and max(on_disk.values()) == 1, on_disk.most_common(3)
    assert sorted(s["ID"] for s in scans) == ["4", "5", "6", "7"], scans  # one scan per series
    for scan_id, names in rows.items():
        assert len(names) == len(set(names)) == PER_SERIES, (scan_id, names)
        assert {p.name for p in (folder / "SCANS").glob(f"{scan_id}/DICOM/*")} == set(names)


def _archive_at_once(srv: LiveServer, url: str, n: int) -> list[httpx.Response]:
    """Several archive requests for one session at the same moment, on separate connections."""
    start = threading.Barrier(n)

    def archive(_: int) -> httpx.Response:
        start.wait(timeout=60)
        return httpx.post(
            f"{srv.url}/data/services/archive", params={"src": url}, auth=("admin", "admin"), timeout=120
        )

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(archive, range(n)))


@pytest.mark.parametrize("round_no", [0, 1, 2])
def test_one_study_from_several_processes_at_once(
    receiving: tuple[LiveServer, int, int], tmp_path: Path, round_no: int
) -> None:
    srv, port_a, port_b = receiving
    project, label = f"PR{uuid.uuid4().hex[:6]}", f"RACE{round_no}"
    with srv.client() as http:
        assert http.put(f"/data/projects/{project}").status_code == 200
        by_sop = _study(tmp_path / "study", project, label)
        study_uid = str(pydicom.dcmread(next(iter(by_sop.values()))).StudyInstanceUID)
        _send_all(srv, (port_a, port_b), project, _split(list(by_sop.values()), round_no))

        sessions = _wait_filed(http, project, study_uid, len(by_sop))
        assert [s["name"] for s in sessions] == [label], sessions  # exactly one session for the study
        url = sessions[0]["url"]
        folder = srv.data / "prearchive" / project / sessions[0]["timestamp"] / sessions[0]["folderName"]
        assert http.post(f"/data{url}", params={"action": "build"}).status_code == 200
        scans = _rows(http.get(f"/data{url}/scans", params={"format": "json"}))
        _check_exactly_once(folder, _file_rows(http, f"/data{url}", scans), scans, set(by_sop))

        answers = _archive_at_once(srv, url, 3)
        assert [r.status_code for r in answers].count(200) == 1, [r.text for r in answers]
        assert {r.status_code for r in answers} <= {200, 403, 404}  # the others lost the claim
        exp = f"/data/projects/{project}/experiments/{label}"
        experiments = _rows(http.get(f"/data/projects/{project}/experiments", params={"format": "json"}))
        assert [e["label"] for e in experiments] == [label]
        assert _sessions_of(http, project, study_uid) == []
        scans = _rows(http.get(f"{exp}/scans", params={"format": "json"}))
        archived = srv.data / "archive" / project / "arc001" / label
        _check_exactly_once(archived, _file_rows(http, exp, scans), scans, set(by_sop))


# --- job claiming across processes ---------------------------------------------------------------

N_SCANS, N_COMMANDS = 8, 4


def _command(name: str, resource: str, ledger: Path, gate: Path) -> dict[str, Any]:
    """A cheap command that says which job ran, in a ledger shared by every run and in its output;
    it finishes only once ``gate`` exists (so no job ends before every launch has answered)."""
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    script = f"echo {{job}} >> {ledger}; {wait}; sleep 0.1; echo {{job}} > {{output}}/job.txt"
    return {"name": name, "command": ["/bin/sh", "-c", script], "output": {"resource": resource}}


def _launch_at_once(srv: LiveServer, docs: list[dict[str, str]]) -> list[set[int]]:
    """Every launch at the same moment, each on its own connection (so on several HTTP workers);
    the IDs of the jobs each answered with."""
    start = threading.Barrier(len(docs))

    def launch(doc: dict[str, str]) -> set[int]:
        start.wait(timeout=60)
        r = httpx.post(f"{srv.url}/xapi/jobs", json=doc, auth=("admin", "admin"), timeout=120)
        assert r.status_code == 201, r.text
        return {int(j["id"]) for j in r.json()}

    with ThreadPoolExecutor(len(docs)) as pool:
        return list(pool.map(launch, docs))


def _wait_folders_gone(jobs_dir: Path, timeout: float = 60.0) -> list[str]:
    """Run folders are removed just after a job's final status is committed."""
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(p.name for p in jobs_dir.iterdir() if p.name.isdigit()) if jobs_dir.is_dir() else []
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _wait_running_in(http: httpx.Client, project: str, processes: int, timeout: float = 120.0) -> None:
    """Until jobs of the project are running in that many processes (workers are named host:pid:token)."""
    deadline = time.monotonic() + timeout
    while True:
        listing = http.get("/xapi/jobs", params={"project": project}).json()
        holders = {j["worker"].rsplit(":", 1)[0] for j in listing if j["status"] == "running" and j["worker"]}
        if len(holders) >= processes:
            return
        assert time.monotonic() < deadline, f"runs held by {sorted(holders)} after {timeout} s"
        time.sleep(0.1)


def test_job_claiming_across_processes(tmp_path: Path) -> None:
    """The server's dispatcher and two `xnatd worker`s (two runs at a time each) take 32 jobs, launched
    three times over at once: each (scan, command) is queued once, runs once and is stored once."""
    ledger, gate = tmp_path / "ledger", tmp_path / "gate"
    ledger.touch()
    with (
        live_server(tmp_path / "data", "--workers", "3", "--job-workers", "2") as srv,
        xnatd_process(srv, "worker-a", "worker", "--workers", "2"),
        xnatd_process(srv, "worker-b", "worker", "--workers", "2"),
        srv.client() as http,
    ):
        names = [uid(f"race{i}-") for i in range(N_COMMANDS)]
        for i, name in enumerate(names):
            r = http.post("/xapi/jobs/commands", json=_command(name, f"OUT{i}", ledger, gate))
            assert r.status_code == 201, r.text
        exp = make_session(http)
        project = exp.split("/")[3]
        body = series_zip(SIEMENS / "mr_0003")
        scans = [add_scan(http, exp, str(n), SIEMENS / "mr_0003", zipped=body) for n in range(1, N_SCANS + 1)]
        launched = _launch_at_once(
            srv, [{"command": n, "target": f"/data/projects/{project}"} for n in names * 3]
        )
        # The gate opens once each of the three processes holds a run (so every process takes
        # part however the machine schedules them; with the gate shut no run ends, so the first
        # process to poll cannot take the whole queue).
        _wait_running_in(http, project, processes=3)
        gate.touch()
        for i in range(N_COMMANDS):  # the three launches of a command answered with the same jobs
            assert launched[i] == launched[i + N_COMMANDS] == launched[i + 2 * N_COMMANDS], launched

        listing = http.get("/xapi/jobs", params={"project": project}).json()
        keys = Counter((j["target"], j["command"]) for j in listing)
        assert keys == Counter({(s, n): 1 for s in scans for n in names}), keys  # queued once each
        docs = wait_jobs(http, [j["id"] for j in listing], timeout=120)
        assert {(d["status"], d["attempts"]) for d in docs} == {("complete", 1)}, docs
        ran = Counter(int(line) for line in ledger.read_text().split())
        assert ran == Counter({d["id"]: 1 for d in docs}), ran  # one run per job
        workers = {d["worker"].rsplit(":", 1)[0] for d in docs}
        assert len(workers) == 3, workers  # the processes really shared the queue
        for d in docs:
            rows = _rows(http.get(f"{d['output']['uri']}/files", params={"format": "json"}))
            assert [r["Name"] for r in rows] == ["job.txt"], rows  # stored once
            assert http.get(rows[0]["URI"]).text.strip() == str(d["id"])
        assert _wait_folders_gone(srv.data / "jobs") == []


# --- archive, delete and move of one prearchive session at once ------------------------------------


def _at_once(srv: LiveServer, calls: list[tuple[str, str, dict[str, str]]]) -> list[httpx.Response]:
    """(method, path, params) requests sent at the same moment, each on its own connection."""
    start = threading.Barrier(len(calls))

    def send(call: tuple[str, str, dict[str, str]]) -> httpx.Response:
        method, path, params = call
        start.wait(timeout=60)
        return httpx.request(method, srv.url + path, params=params, auth=("admin", "admin"), timeout=120)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(send, calls))


def test_archive_delete_and_move_of_one_session_at_once(
    receiving: tuple[LiveServer, int, int], tmp_path: Path
) -> None:
    """Two archives, a delete and a move to another project race for one session, five times: the
    session ends in exactly one place (archived, moved, or gone), whole, and its files with it."""
    srv = receiving[0]
    source = dicom_files(GE / "mr_0004")[:8]
    with srv.client() as http:
        for n in range(5):
            project, other, label = f"AD{uuid.uuid4().hex[:6]}", f"MV{uuid.uuid4().hex[:6]}", f"ADM{n}"
            for p in (project, other):
                assert http.put(f"/data/projects/{p}").status_code == 200
            files = copy_study(source, tmp_path / str(n), label)
            sops = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
            r = http.post(
                "/data/services/import", params={"dest": f"/prearchive/projects/{project}"},
                content=_zip(files), headers={"Content-Type": "application/zip"},
            )  # fmt: skip
            assert r.status_code == 200, r.text
            url = r.text.strip().removeprefix("/data")
            calls = [("POST", "/data/services/archive", {"src": url})] * 2 + [
                ("DELETE", f"/data{url}", {}),
                ("POST", f"/data{url}", {"action": "move", "newProject": other}),
            ]
            codes = [a.status_code for a in _at_once(srv, calls)]
            archived = _rows(http.get(f"/data/projects/{project}/experiments", params={"format": "json"}))
            moved = _rows(http.get(f"/data/prearchive/projects/{other}", params={"format": "json"}))
            left = _rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}))
            assert left == [], (codes, left)
            assert len(archived) + len(moved) <= 1, (codes, archived, moved)
            if archived:
                folder = srv.data / "archive" / project / "arc001" / label
                assert codes[:2].count(200) == 1 and codes[2:] != [200, 301], codes
            elif moved:
                folder = srv.data / "prearchive" / other / moved[0]["timestamp"] / moved[0]["folderName"]
                assert codes[3] == 301 and 200 not in codes[:2], codes
            else:
                assert codes[2] == 200 and 200 not in codes[:2] and codes[3] != 301, codes
                for p in (project, other):  # nothing left behind where it was or would have gone
                    assert not any((srv.data / "prearchive" / p).rglob("*.dcm")), (codes, p)
                continue
            on_disk = _sops_on_disk(folder)
            assert set(on_disk) == sops and max(on_disk.values()) == 1, (codes, on_disk)
            assert not any((srv.data / "prearchive" / project).rglob("*.dcm")), codes


# --- a scan's first thumbnail, asked for by several clients at once --------------------------------


def test_first_thumbnail_requests_at_once_all_get_it(receiving: tuple[LiveServer, int, int]) -> None:
    """A session page asks for every scan's thumbnail, and several people may open it at once: the
    first requests, on three HTTP workers and several threads of each, all wait for the pictures
    being made and get the same bytes (one of them used to answer 200 and the others 404)."""
    srv = receiving[0]
    with srv.client() as http:
        for n in range(3):
            exp = make_session(http)
            add_scan(http, exp, "4", GE / "mr_0004", zipped=_zip(dicom_files(GE / "mr_0004")[:6]))
            pictures = f"{exp}/scans/4/resources/SNAPSHOTS/files"
            names = ["4_qc_t.png", "4_qc.png"] * 4
            answers = _at_once(srv, [("GET", f"{pictures}/{name}", {}) for name in names])
            assert [a.status_code for a in answers] == [200] * 8, (n, [a.text[:80] for a in answers])
            for name in set(names):
                same = {a.content for a, asked in zip(answers, names, strict=True) if asked == name}
                assert len(same) == 1 and same.pop().startswith(b"\x89PNG"), (n, name)
            stored = _rows(http.get(pictures, params={"format": "json"}))
            assert sorted(f["Name"] for f in stored) == ["4_qc.png", "4_qc_t.png"]
