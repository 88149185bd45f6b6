"""Processing jobs over HTTP against a real server: dcm2niix on real series (shapes checked with nibabel),
a failing command and its log, cancel, custom commands with hostile values, permissions, automation."""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import nibabel as nib
import pytest

from tests.support.jobs import (
    CT,
    GE,
    PET_HEADER_ONLY,
    SIEMENS,
    add_scan,
    launch,
    make_session,
    uid,
    wait_jobs,
    wait_status,
)
from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow

TOOL = textwrap.dedent(
    """
    import json, os, sys, time
    args = sys.argv[1:]
    out = args[args.index("--out") + 1]
    inp = args[args.index("--in") + 1]
    with open(os.path.join(out, "argv.json"), "w") as f:
        json.dump({"argv": args, "inputs": sorted(os.listdir(inp))}, f)
    if "--sleep" in args:
        with open(args[args.index("--pidfile") + 1], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(float(args[args.index("--sleep") + 1]))
    sys.exit(int(args[args.index("--exit") + 1]) if "--exit" in args else 0)
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("jobs") / "data") as srv:
        yield srv


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tool") / "tool.py"
    path.write_text(TOOL)
    return path


def register(http: httpx.Client, name: str, argv: list[str], **extra: object) -> None:
    doc = {"name": name, "command": argv, "output": {"resource": "OUT", "format": "JSON"}, **extra}
    r = http.post("/xapi/jobs/commands", json=doc)
    assert r.status_code in (200, 201), r.text


def nifti_files(http: httpx.Client, scan: str) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, MD5 the listing gives) of the scan's NIFTI resource."""
    rows = http.get(f"{scan}/resources/NIFTI/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    out = {}
    for row in rows:
        r = http.get(row["URI"])
        assert r.status_code == 200
        out[row["Name"]] = (r.content, row["digest"])
    return out


def shape_of(data: bytes, tmp: Path) -> tuple[int, ...]:
    path = tmp / "v.nii"
    path.write_bytes(gzip.decompress(data))
    return tuple(int(n) for n in nib.load(str(path)).shape)


def test_dcm2niix_on_a_session_and_a_ct_scan_gives_the_expected_volumes(
    http: httpx.Client, tmp_path: Path
) -> None:
    exp = make_session(http)
    ge = add_scan(http, exp, "4", GE / "mr_0004")
    si = add_scan(http, exp, "3", SIEMENS / "mr_0003")
    ct_exp = make_session(http, project=exp.split("/")[3], xsi="xnat:ctSessionData")
    ct = add_scan(http, ct_exp, "201", CT, xsi="xnat:ctScanData")
    jobs = launch(http, exp) + launch(http, ct)
    assert len(jobs) == 3 and {j["status"] for j in jobs} <= {"queued", "running"}
    docs = wait_jobs(http, [j["id"] for j in jobs])
    assert [d["status"] for d in docs] == ["complete"] * 3, docs
    expected = {ge: (64, 64, 15, 10), si: (72, 72, 5, 2), ct: (512, 512, 28)}
    for scan, shape in expected.items():
        files = nifti_files(http, scan)
        volumes = [n for n in files if n.endswith(".nii.gz")]
        sidecars = [n for n in files if n.endswith(".json")]
        assert len(volumes) == 1 and len(sidecars) == 1, files.keys()
        assert shape_of(files[volumes[0]][0], tmp_path) == shape
        assert "SeriesNumber" in json.loads(files[sidecars[0]][0])
        for data, md5 in files.values():
            assert hashlib.md5(data).hexdigest() == md5
    res = http.get(f"{ge}/resources", params={"format": "json"}).json()["ResultSet"]["Result"]
    nifti = next(r for r in res if r["label"] == "NIFTI")
    assert nifti["format"] == "NIFTI" and nifti["file_count"] == "2"
    one = http.get(f"/xapi/jobs/{docs[0]['id']}").json()
    assert one["output"]["files"] == 2 and one["output"]["uri"].endswith("/resources/NIFTI")
    assert one["exitCode"] == 0 and one["seconds"] >= 0 and one["attempts"] == 1
    log = http.get(f"/xapi/jobs/{docs[0]['id']}/log").text
    assert "dcm2niix" in log and "# exit code 0" in log
    again = http.post("/xapi/jobs", json={"command": "dcm2niix", "target": ge})
    assert again.status_code == 409 and "overwrite" in again.text
    redo = wait_jobs(http, [launch(http, ge, overwrite=True)[0]["id"]])
    assert redo[0]["status"] == "complete" and len(nifti_files(http, ge)) == 2


def test_a_failing_conversion_is_failed_with_its_log_and_leaves_no_resource(http: httpx.Client) -> None:
    exp = make_session(http, xsi="xnat:petSessionData")
    scan = add_scan(http, exp, "1", PET_HEADER_ONLY, xsi="xnat:petScanData")
    job = wait_jobs(http, [launch(http, scan)[0]["id"]])[0]
    assert job["status"] == "failed" and job["exitCode"] not in (0, None)
    assert "exited with code" in job["message"] and job["output"]["uri"] is None
    log = http.get(f"/xapi/jobs/{job['id']}/log")
    assert log.headers["content-type"].startswith("text/plain")
    assert log.headers["x-content-type-options"] == "nosniff"  # the log quotes the DICOM: never a page
    assert "File not large enough to store image data" in log.text
    labels = [
        r["label"]
        for r in http.get(f"{scan}/resources", params={"format": "json"}).json()["ResultSet"]["Result"]
    ]
    assert labels == ["DICOM"]
    assert http.post(f"/xapi/jobs/{job['id']}/cancel").status_code == 409


def test_a_custom_command_gets_its_template_filled_as_single_arguments(
    http: httpx.Client, tool: Path, tmp_path: Path
) -> None:
    name = uid("probe")
    argv = [sys.executable, str(tool), "--in", "{input}", "--out", "{output}", "--type", "{scan_type}",
            "--label", "x{session}y", "--scan={scan}", "{{literal}}"]  # fmt: skip
    register(http, name, argv)
    exp = make_session(http)
    hostile = f"$(touch {tmp_path}/pwned); rm -rf / `id` | cat > {tmp_path}/pwned2 'a b' \"c\""
    scan = add_scan(http, exp, "7", GE / "mr_0005")
    assert http.put(f"{exp}/scans/7", params={"type": hostile}).status_code in (200, 201)
    job = wait_jobs(http, [launch(http, scan, command=name)[0]["id"]])[0]
    assert job["status"] == "complete", job
    rows = http.get(f"{scan}/resources/OUT/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    seen = json.loads(http.get(rows[0]["URI"]).content)
    args = seen["argv"]
    assert args[args.index("--type") + 1] == hostile
    assert args[args.index("--label") + 1] == f"x{exp.rsplit('/', 1)[1]}y"
    assert "--scan=7" in args and args[-1] == "{literal}"
    assert len(seen["inputs"]) == 150
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    listed = {c["name"]: c for c in http.get("/xapi/jobs/commands").json()}
    assert listed["dcm2niix"]["builtin"] and listed[name]["command"] == argv


def test_each_job_is_a_workflow_of_its_session_whose_status_follows_the_job(
    http: httpx.Client, tool: Path
) -> None:
    """XNAT writes a workflow for each pipeline run; xnatd for each job (issue 18 item 4)."""
    name = uid("wf")
    register(http, name, [sys.executable, str(tool), "--in", "{input}", "--out", "{output}"])
    good = make_session(http)
    add_scan(http, good, "3", GE / "mr_0004")
    add_scan(http, good, "5", GE / "mr_0005")
    jobs = launch(http, f"{good}/scans/ALL", command=name)
    bad = make_session(http, xsi="xnat:petSessionData")
    failing = launch(http, add_scan(http, bad, "1", PET_HEADER_ONLY, xsi="xnat:petScanData"))
    wait_jobs(http, [j["id"] for j in (*jobs, *failing)])

    def workflows(exp: str) -> list[dict[str, str]]:
        r = http.get(f"{exp}/workflows", params={"format": "json"})
        assert r.status_code == 200, r.text
        return list(r.json()["ResultSet"]["Result"])

    done = workflows(good)
    assert sorted((w["pipeline_name"], w["scan_id"], w["status"]) for w in done) == [
        (name, "3", "Complete"), (name, "5", "Complete"),
    ]  # fmt: skip
    assert sorted(w["jobid"] for w in done) == sorted(str(j["id"]) for j in jobs)
    (failed,) = workflows(bad)
    assert (failed["pipeline_name"], failed["status"]) == ("dcm2niix", "Failed")
    one = http.get(f"/data/workflows/{failed['wrk_workflowData_id']}", params={"format": "json"})
    assert one.json()["items"][0]["data_fields"]["status"] == "Failed"


def test_a_value_that_would_become_an_option_is_refused(http: httpx.Client, tool: Path) -> None:
    name = uid("opt")
    register(http, name, [sys.executable, str(tool), "--in", "{input}", "--out", "{output}", "{scan_type}"])
    exp = make_session(http)
    scan = add_scan(http, exp, "8", GE / "mr_0006")
    assert http.put(f"{exp}/scans/8", params={"type": "--delete-everything"}).status_code in (200, 201)
    job = wait_jobs(http, [launch(http, scan, command=name)[0]["id"]])[0]
    assert job["status"] == "failed" and "could be read as an option" in job["message"]


def test_bad_command_definitions_are_refused(http: httpx.Client) -> None:
    bad = [
        {"name": "dcm2niix", "command": ["x"], "output": {"resource": "R"}},
        {"name": "x1", "command": "rm -rf /", "output": {"resource": "R"}},
        {"name": "x2", "command": ["{input}"], "output": {"resource": "R"}},
        {"name": "x3", "command": ["ls", "{nope}"], "output": {"resource": "R"}},
        {"name": "x4", "command": ["ls", "{input"], "output": {"resource": "R"}},
        {"name": "x5", "command": ["ls"], "output": {"resource": "../up"}},
        {"name": "../x", "command": ["ls"], "output": {"resource": "R"}},
    ]
    for doc in bad:
        r = http.post("/xapi/jobs/commands", json=doc)
        assert r.status_code in (400, 409), (doc, r.status_code, r.text)
    assert http.delete("/xapi/jobs/commands/dcm2niix").status_code == 403


def test_cancel_while_running_stops_the_command_and_leaves_no_output(
    http: httpx.Client, tool: Path, tmp_path: Path
) -> None:
    name = uid("sleep")
    pidfile = tmp_path / "pid"
    argv = [sys.executable, str(tool), "--in", "{input}", "--out", "{output}", "--sleep", "60",
            "--pidfile", str(pidfile)]  # fmt: skip
    register(http, name, argv)
    exp = make_session(http)
    scan = add_scan(http, exp, "9", SIEMENS / "mr_0004")
    job = launch(http, scan, command=name)[0]
    wait_status(http, job["id"], "running")
    _wait_for_file(pidfile)
    r = http.post(f"/xapi/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    _wait_gone(int(pidfile.read_text()))
    doc = wait_status(http, job["id"], "cancelled")
    assert doc["output"]["uri"] is None
    labels = [
        r["label"]
        for r in http.get(f"{scan}/resources", params={"format": "json"}).json()["ResultSet"]["Result"]
    ]
    assert labels == ["DICOM"]
    assert "stopped: cancelled" in _eventually_log(http, job["id"], "stopped: cancelled")


def _wait_for_file(path: Path, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _wait_gone(pid: int, timeout: float = 30) -> None:
    import psutil

    try:
        psutil.Process(pid).wait(timeout=timeout)
    except psutil.NoSuchProcess:
        pass


def _eventually_log(http: httpx.Client, job_id: int, text: str, timeout: float = 20) -> str:
    import time

    deadline = time.monotonic() + timeout
    while True:
        log = http.get(f"/xapi/jobs/{job_id}/log").text
        if text in log or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


def test_jobs_follow_project_permissions(http: httpx.Client, server: LiveServer) -> None:
    exp = make_session(http)
    project = exp.split("/")[3]
    scan = add_scan(http, exp, "5", GE / "mr_0007")
    for user in ("collab", "stranger"):
        r = http.post("/xapi/users", json={"username": user, "password": "pw-" + user, "enabled": True})
        assert r.status_code in (201, 409), r.text
    assert http.put(f"/data/projects/{project}/users/Collaborators/collab").status_code in (200, 201)
    job = launch(http, scan)[0]
    with (
        server.client(auth=("collab", "pw-collab")) as collab,
        server.client(auth=("stranger", "pw-stranger")) as other,
    ):
        denied = collab.post("/xapi/jobs", json={"command": "dcm2niix", "target": scan, "overwrite": True})
        assert denied.status_code == 403
        assert collab.get(f"/xapi/jobs/{job['id']}").status_code == 200
        assert collab.post(f"/xapi/jobs/{job['id']}/cancel").status_code in (403, 409)
        assert [j["id"] for j in collab.get("/xapi/jobs", params={"project": project}).json()] == [job["id"]]
        assert other.get(f"/xapi/jobs/{job['id']}").status_code == 404
        assert other.get(f"/xapi/jobs/{job['id']}/log").status_code == 404
        assert other.post("/xapi/jobs", json={"command": "dcm2niix", "target": scan}).status_code == 404
        assert all(j["project"] != project for j in other.get("/xapi/jobs").json())
        assert other.post("/xapi/jobs/commands", json={"name": "x", "command": ["ls"]}).status_code == 403
    wait_jobs(http, [job["id"]])
    assert (
        http.get("/xapi/jobs", params={"project": project, "status": "complete"}).json()[0]["id"] == job["id"]
    )
    assert http.get("/xapi/jobs", params={"status": "bogus"}).status_code == 400


def test_a_project_target_queues_each_scan_of_each_session_once(http: httpx.Client) -> None:
    exp1 = make_session(http)
    project = exp1.split("/")[3]
    exp2 = make_session(http, project=project)
    add_scan(http, exp1, "4", GE / "mr_0004")
    add_scan(http, exp2, "3", SIEMENS / "mr_0005")
    assert http.put(f"{exp2}/scans/99", params={"xsiType": "xnat:mrScanData"}).status_code in (200, 201)
    subject = exp1.rsplit("/experiments/", 1)[0]
    first = launch(http, subject)
    assert [j["target"] for j in first] == [f"{exp1}/scans/4"]
    wait_jobs(http, [j["id"] for j in first])
    jobs = launch(http, f"/data/projects/{project}")
    assert [j["target"] for j in jobs] == [f"{exp2}/scans/3"]  # scan 4 is done, scan 99 has no DICOM
    wait_jobs(http, [j["id"] for j in jobs])
    redo = launch(http, f"/data/projects/{project}", overwrite=True)
    assert {j["target"] for j in redo} == {f"{exp1}/scans/4", f"{exp2}/scans/3"}
    wait_jobs(http, [j["id"] for j in redo])
    none_left = http.post("/xapi/jobs", json={"command": "dcm2niix", "target": f"/data/projects/{project}"})
    assert none_left.status_code == 400 and "Nothing to run" in none_left.text
    assert http.post("/xapi/jobs", json={"command": "nope", "target": exp1}).status_code == 404
    assert http.post("/xapi/jobs", json={"target": exp1}).status_code == 400


def test_automation_queues_conversions_when_a_session_is_archived(
    http: httpx.Client, server: LiveServer
) -> None:
    from xnatd import config
    from xnatd.services.jobs import jobs as job_service
    from xnatd.services.operations.bootstrap import open_context

    exp = make_session(http)
    project = exp.split("/")[3]
    scan = add_scan(http, exp, "4", GE / "mr_0004")
    r = http.put(f"/xapi/jobs/auto/{project}", json={"commands": ["dcm2niix"]})
    assert r.status_code == 200 and r.json()["commands"] == ["dcm2niix"]
    assert http.get(f"/xapi/jobs/auto/{project}").json()["commands"] == ["dcm2niix"]
    exp_id = http.get(exp, params={"format": "json"}).json()["items"][0]["data_fields"]["ID"]
    ctx = open_context(config.load({"data": server.data, "database_url": server.database}, environ={}))
    try:
        ids = job_service.on_session_archived(ctx, exp_id)
    finally:
        ctx.db.dispose()
    assert len(ids) == 1
    assert wait_jobs(http, ids)[0]["status"] == "complete"
    assert len(nifti_files(http, scan)) == 2


LAYOUT_TOOL = textwrap.dedent(
    """
    import os, sys
    out, layout = sys.argv[1], sys.argv[2]
    if layout == "folder":
        os.makedirs(os.path.join(out, "x"))
        with open(os.path.join(out, "x", "y.txt"), "w") as f:
            f.write("in a folder")
    elif layout == "server-names":  # the names of a process folder's lock and journal
        for name in ("owner.lock", "placed.log", "deleting-0123456789abcdef"):
            with open(os.path.join(out, name), "w") as f:
                f.write(name)
    else:
        with open(os.path.join(out, "x"), "w") as f:
            f.write("a file")
    """
)


def test_outputs_replaced_by_a_file_where_a_folder_was_and_back(
    http: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    """A rerun with overwrite whose outputs put a file where the last run's folder was (and then a
    folder where its file was) replaces them: the old copies go only once the new ones are in."""
    tool = tmp_path / "layout.py"
    tool.write_text(LAYOUT_TOOL)
    name = uid("layout")
    register(http, name, [sys.executable, str(tool), "{output}", "{scan_type}"])
    exp = make_session(http)
    scan = add_scan(http, exp, "9", GE / "mr_0005")
    for layout, want in (("folder", {"x/y.txt": b"in a folder"}), ("file", {"x": b"a file"}),
                         ("folder", {"x/y.txt": b"in a folder"})):  # fmt: skip
        assert http.put(f"{exp}/scans/9", params={"type": layout}).status_code in (200, 201)
        job = wait_jobs(http, [launch(http, scan, command=name, overwrite=True)[0]["id"]])[0]
        assert job["status"] == "complete", job
        rows = http.get(f"{scan}/resources/OUT/files", params={"format": "json"}).json()["ResultSet"][
            "Result"
        ]
        got = {r["URI"].split("/files/", 1)[1]: http.get(r["URI"]).content for r in rows}
        assert got == want, (layout, got)
    assert not list((server.data / "tmp").rglob("backup-*"))


def test_outputs_named_like_the_servers_own_files_are_stored_as_written(
    http: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    """A command's ``owner.lock`` and ``placed.log`` are its outputs, not a process folder's lock
    and journal: nothing is written into them on their way into the archive."""
    tool = tmp_path / "layout.py"
    tool.write_text(LAYOUT_TOOL)
    name = uid("names")
    register(http, name, [sys.executable, str(tool), "{output}", "{scan_type}"])
    exp = make_session(http)
    scan = add_scan(http, exp, "10", GE / "mr_0005")
    assert http.put(f"{exp}/scans/10", params={"type": "server-names"}).status_code in (200, 201)
    job = wait_jobs(http, [launch(http, scan, command=name)[0]["id"]])[0]
    assert job["status"] == "complete", job
    rows = http.get(f"{scan}/resources/OUT/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert len(rows) == 3
    for row in rows:
        body = http.get(row["URI"]).content
        assert body == row["Name"].encode() and hashlib.md5(body).hexdigest() == row["digest"], row
