"""The DICOM receiver end to end: `xnatd serve` with its receiver processes, real senders.

dcmtk's `storescu`/`echoscu` (Debian package dcmtk) and pynetdicom's `storescu` send studies from
shared/testdata; pynetdicom as an in-process SCU sends raw file bytes (and a malformed object). Every
receiver of the tests shares one port, told apart by the called AE title (settings-defined receivers).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pydicom
import pytest
from pynetdicom import AE, _config
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.dicom_scu import reactor_held
from tests.support.live_server import XNATD, LiveServer, free_port, live_server, python, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk missing")]
CT = dicom_files(TESTDATA / "dcm_qa_ct_philips")
TS = dicom_files(TESTDATA / "dcm_qa_ts")
SIEMENS = dicom_files(TESTDATA / "dcm_qa_nih" / "20180918Si")
RECEIVERS = [
    {"aeTitle": "AUTO4", "project": "RCVAUTO"},
    {"aeTitle": "NOPROJ", "project": "DOES_NOT_EXIST"},
    {"aeTitle": "DIRECT", "project": "RCVDIRECT", "directArchive": True},
    {"aeTitle": "GUARDED", "project": "RCVGUARD", "whitelistEnabled": True, "whitelist": ["GOODAE"]},
    {"aeTitle": "PLAIN", "project": "RCVPLAIN"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    port = free_port()
    receivers = json.dumps([{**r, "port": port} for r in RECEIVERS])
    env = {
        "XNATD_PREARCHIVE_IDLE_BUILD": "2",
        "XNATD_DICOM_RECEIVERS": receivers,
        "XNATD_DICOM_PROCESSES": "2",
    }
    with live_server(tmp_path_factory.mktemp("dicom") / "data", "--dicom-port", str(port), env=env) as srv:
        srv.dicom_port = port  # type: ignore[attr-defined]
        with srv.client() as http:
            for p in ("RCVAUTO", "RCVDIRECT", "RCVGUARD", "RCVPLAIN", "ZIPREF"):
                assert http.put(f"/data/projects/{p}").status_code == 200
            assert http.put("/data/projects/RCVAUTO/prearchive_code/4").status_code == 200
        yield srv


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def dport(server: LiveServer) -> int:
    return int(server.dicom_port)  # type: ignore[attr-defined]


def storescu(server: LiveServer, called: str, files: list[Path], calling: str = "STORESCU") -> None:
    args = ["storescu", "-aet", calling, "-aec", called, "127.0.0.1", str(dport(server)), *map(str, files)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, env={"TCP_NODELAY": "1"})
    assert out.returncode == 0, out.stderr


def rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def wait_for(probe: object, timeout: float = 120.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()  # type: ignore[operator]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def prearchive(http: httpx.Client, project: str) -> list[dict[str, str]]:
    return rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}))


def experiments(http: httpx.Client, project: str) -> list[dict[str, str]]:
    return rows(http.get(f"/data/projects/{project}/experiments", params={"format": "json"}))


def archived_summary(http: httpx.Client, project: str, label: str) -> dict[str, object]:
    """What must be the same whichever way a study came in: type, fields, scans and their files."""
    exp = f"/data/projects/{project}/experiments/{label}"
    item = http.get(exp, params={"format": "json"}).json()["items"][0]
    fields = {
        k: v
        for k, v in item["data_fields"].items()
        if k not in ("ID", "id", "project", "label", "subject_ID")
    }
    scans = {}
    for s in rows(http.get(f"{exp}/scans", params={"format": "json"})):
        files = rows(http.get(f"{exp}/scans/{s['ID']}/resources/DICOM/files", params={"format": "json"}))
        scans[s["ID"]] = (s["xsiType"], s["type"], s["series_description"], len(files))
    return {"xsiType": item["meta"]["xsi:type"], "fields": fields, "scans": scans}


def test_echo_with_dcmtk_and_pynetdicom(server: LiveServer) -> None:
    out = subprocess.run(["echoscu", "-aec", "PLAIN", "127.0.0.1", str(dport(server))], capture_output=True)
    assert out.returncode == 0, out.stderr
    ae = AE("PYECHO")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", dport(server), ae_title="XNAT")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_dcmtk_storescu_auto_archives_like_a_zip_import(server: LiveServer, http: httpx.Client) -> None:
    storescu(server, "AUTO4", CT)
    assert wait_for(lambda: prearchive(http, "RCVAUTO") or experiments(http, "RCVAUTO"))  # filed at once
    assert wait_for(lambda: experiments(http, "RCVAUTO")), "built after the idle interval, auto-archived"
    zip_body = _zip(CT)
    r = http.post(
        "/data/services/import",
        params={"dest": "/archive/projects/ZIPREF"},
        content=zip_body,
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 200, r.text
    received = archived_summary(http, "RCVAUTO", "PLASTIC")
    imported = archived_summary(http, "ZIPREF", "PLASTIC")
    assert received == imported
    assert received["xsiType"] == "xnat:ctSessionData" and len(received["scans"]) == 2  # type: ignore[arg-type]
    assert prearchive(http, "RCVAUTO") == []


def _zip(files: list[Path]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.write(f, f"{f.parent.name}/{f.name}")
    return buf.getvalue()


def _send_raw(server: LiveServer, called: str, paths: list[Path], calling: str = "PYSCU") -> list[int]:
    """pynetdicom as the SCU, sending each file's encoded dataset as it is on disk."""
    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(calling)
    for p in paths:
        meta = pydicom.dcmread(p, stop_before_pixels=True, force=True).file_meta
        ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", dport(server), ae_title=called, max_pdu=16382)
    assert assoc.is_established
    try:
        with reactor_held(assoc):
            return [int(assoc.send_c_store(p).Status) for p in paths]
    finally:
        assoc.release()


def _dataset_bytes(path: Path) -> bytes:
    return _dataset_bytes_of(path.read_bytes())


def _dataset_bytes_of(data: bytes) -> bytes:
    assert data[128:132] == b"DICM"
    group_length = int.from_bytes(data[140:144], "little")
    return data[144 + group_length :]


def test_objects_are_stored_as_sent_in_every_transfer_syntax(server: LiveServer, http: httpx.Client) -> None:
    statuses = _send_raw(server, "PLAIN", TS)
    assert statuses == [0] * len(TS)
    stored = wait_for(lambda: prearchive(http, "RCVPLAIN"))
    assert stored
    folder = server.data / "prearchive" / "RCVPLAIN"

    def filed() -> dict[str, Path]:  # the receiver files in half-second batches: wait for all nine
        found = {
            str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in folder.rglob("*.dcm")
        }
        wanted = {str(pydicom.dcmread(src, stop_before_pixels=True).SOPInstanceUID) for src in TS}
        return found if wanted <= set(found) else {}

    by_sop: dict[str, Path] = wait_for(filed)  # type: ignore[assignment]
    for src in TS:
        ds = pydicom.dcmread(src, stop_before_pixels=True)
        dest = by_sop[str(ds.SOPInstanceUID)]
        assert _dataset_bytes(dest) == _dataset_bytes(src), src.name  # never decoded, never re-encoded
        meta = pydicom.dcmread(dest, stop_before_pixels=True).file_meta
        assert meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
        assert meta.SourceApplicationEntityTitle.strip() == "PYSCU"


def test_malformed_object_mid_series_fails_alone(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    series = copy_study(SIEMENS, tmp_path / "ok", "MALFORMED")
    bad = tmp_path / "bad.dcm"
    good = series[0].read_bytes()
    head = 144 + int.from_bytes(good[140:144], "little")
    bad.write_bytes(good[:head] + b"\x08\x00\x18\x00UI\xff\xff" + b"garbage" * 20)  # a value past the end
    statuses = _send_raw(server, "NOPROJ", [*series[:4], bad, *series[4:]])
    assert statuses[4] & 0xF000 == 0xC000 and statuses[4] == 0xC210
    assert statuses[:4] + statuses[5:] == [0] * len(series)
    log = server.log.read_text()
    assert "refused with 0xC210" in log

    def unassigned() -> list[dict[str, str]]:
        return [r for r in prearchive(http, "Unassigned") if r["name"] == "MALFORMED"]

    found = wait_for(unassigned)
    assert found, "a study for a project that does not exist lands in Unassigned"

    def filed() -> int:
        # the receiver files what it got in batches every half second: wait for all of them
        scans = rows(http.get(f"/data{found[0]['url']}/scans", params={"format": "json"}))
        count = sum(int(s["file_count"]) for s in scans)
        return count if count == len(series) else 0

    assert wait_for(filed) == len(series)


def test_four_senders_at_once_and_pynetdicom_storescu(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    studies = [copy_study(SIEMENS, tmp_path / f"s{i}", f"FOUR{i}") for i in range(3)]
    folder = tmp_path / "s3"
    copy_study(SIEMENS, folder, "FOUR3")

    def send(i: int) -> None:
        if i < 3:
            storescu(server, "PLAIN", studies[i])
            return
        args = [python(), "-m", "pynetdicom", "storescu", "127.0.0.1", str(dport(server)), str(folder)]
        out = subprocess.run([*args, "-aec", "PLAIN", "-r"], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, range(4)))

    def sessions() -> dict[str, dict[str, str]]:
        return {r["name"]: r for r in prearchive(http, "RCVPLAIN") if r["name"].startswith("FOUR")}

    found = wait_for(lambda: len(sessions()) == 4 and sessions())
    assert found and sorted(found) == ["FOUR0", "FOUR1", "FOUR2", "FOUR3"]  # type: ignore[arg-type]
    for row in sessions().values():

        def filed(url: str = row["url"]) -> int:  # filed in half-second batches: wait for all
            scans = rows(http.get(f"/data{url}/scans", params={"format": "json"}))
            count = sum(int(s["file_count"]) for s in scans)
            return count if count == len(SIEMENS) else 0

        assert wait_for(filed) == len(SIEMENS)


def test_one_study_over_two_associations_is_one_session(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    files = copy_study(CT, tmp_path / "split", "SPLIT")
    storescu(server, "PLAIN", files[:12])
    storescu(server, "PLAIN", files[12:])

    def built() -> list[dict[str, str]]:
        return [r for r in prearchive(http, "RCVPLAIN") if r["name"] == "SPLIT" and r["status"] == "READY"]

    found = wait_for(built)
    assert found and len(found) == 1
    assert [r for r in prearchive(http, "RCVPLAIN") if r["name"] == "SPLIT"] == found
    scans = rows(http.get(f"/data{found[0]['url']}/scans", params={"format": "json"}))
    assert sum(int(s["file_count"]) for s in scans) == len(files)


def test_whitelist_rejects_other_calling_ae_titles(server: LiveServer) -> None:
    def echo(calling: str) -> subprocess.CompletedProcess[str]:
        args = ["echoscu", "-aet", calling, "-aec", "GUARDED", "127.0.0.1", str(dport(server))]
        return subprocess.run(args, capture_output=True, text=True, timeout=60)

    refused = echo("BADAE")
    assert refused.returncode != 0 and "Rejected" in refused.stderr + refused.stdout
    assert echo("GOODAE").returncode == 0
    unknown = subprocess.run(
        ["echoscu", "-aec", "NOSUCHAE", "127.0.0.1", str(dport(server))], capture_output=True, text=True
    )
    assert unknown.returncode != 0
    assert "calling AE 'BADAE' is not on the whitelist" in server.log.read_text()


def test_a_non_ascii_ae_title_is_rejected_not_dropped(server: LiveServer) -> None:
    """pynetdicom cannot decode an AE title that is not ASCII; the peer still gets an A-ASSOCIATE-RJ
    (found by fuzzing: the socket was closed with a traceback in the log), and the receiver serves on."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
    from pynetdicom.presentation import build_context

    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title = "PROBE"
    primitive.called_ae_title = "XNAT"
    primitive.presentation_context_definition_list = [build_context("1.2.840.10008.1.1")]
    primitive.presentation_context_definition_list[0].context_id = 1
    item = MaximumLengthNotification()
    item.maximum_length_received = 16384
    primitive.user_information = [item]
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(primitive)
    pdu = bytearray(rq.encode())
    pdu[10:26] = "XNAT\u00e9".encode().ljust(16, b" ")  # the called AE title field
    with socket.create_connection(("127.0.0.1", dport(server)), timeout=30) as sock:
        sock.sendall(bytes(pdu))
        answer = sock.recv(64)
    assert answer[:1] == b"\x03", f"expected an A-ASSOCIATE-RJ, got {answer[:8]!r}"
    assert wait_for(lambda: "malformed A-ASSOCIATE-RQ" in server.log.read_text(), timeout=60)
    assert "Traceback" not in server.log.read_text().split("malformed A-ASSOCIATE-RQ")[0][-2000:]
    ok = subprocess.run(["echoscu", "-aec", "XNAT", "127.0.0.1", str(dport(server))], timeout=60)
    assert ok.returncode == 0


def test_direct_archive_receiver(server: LiveServer, http: httpx.Client, tmp_path: Path) -> None:
    files = copy_study(SIEMENS, tmp_path / "direct", "DIRECT1")
    storescu(server, "DIRECT", files)
    found = wait_for(lambda: experiments(http, "RCVDIRECT"), timeout=60)
    assert found and found[0]["label"] == "DIRECT1"  # type: ignore[index]
    assert prearchive(http, "RCVDIRECT") == []


def test_receivers_api_and_a_new_receiver(server: LiveServer, http: httpx.Client) -> None:
    listed = http.get("/xapi/dicomscp").json()
    assert {r["aeTitle"] for r in listed} >= {"XNAT", "AUTO4", "GUARDED"}
    assert all(r["source"] == "settings" for r in listed)
    port = free_port()
    doc = {"aeTitle": "NEWAE", "port": port, "project": "RCVPLAIN", "whitelistEnabled": False}
    assert http.post("/xapi/dicomscp", json={**doc, "identifier": "noSuchIdentifier"}).status_code == 400
    r = http.post("/xapi/dicomscp", json={**doc, "identifier": "dicomObjectIdentifier"})
    assert r.status_code == 200, r.text  # XNAT answers 200, not 201
    rid = r.json()["id"]
    assert http.post("/xapi/dicomscp", json=doc).status_code == 409
    assert http.post("/xapi/dicomscp", json={**doc, "aeTitle": "X" * 17}).status_code == 400
    with server.client(auth=None) as anon:
        assert anon.get("/xapi/dicomscp").status_code == 401

    def echo(calling: str = "ECHOSCU") -> bool:
        args = ["echoscu", "-aet", calling, "-aec", "NEWAE", "127.0.0.1", str(port)]
        return subprocess.run(args, capture_output=True, timeout=30).returncode == 0

    assert echo(), "a new receiver serves as soon as its POST is answered (XNAT cycles its port first)"
    r = http.put(f"/xapi/dicomscp/{rid}", json={"whitelistEnabled": True, "whitelist": ["ONLYME"]})
    assert r.status_code == 200 and r.json()["whitelist"] == ["ONLYME"]
    assert not echo() and echo("ONLYME"), "a change applies before its answer"
    # an address (or network) in the whitelist is the caller's address, whatever its AE title
    for allowed, expected in (
        (["127.0.0.1"], True),
        (["10.0.0.0/8"], False),
        (["ECHOSCU@127.0.0.0/8"], True),
    ):
        assert http.put(f"/xapi/dicomscp/{rid}", json={"whitelist": allowed}).status_code == 200
        assert echo() is expected, allowed
    assert not echo("OTHERAE")  # ECHOSCU@127.0.0.0/8 names the AE title too
    assert http.put(f"/xapi/dicomscp/{rid}", json={"whitelist": ["AE@not-an-address"]}).status_code == 400
    assert http.put(f"/xapi/dicomscp/{rid}/enabled/false").json() is False
    assert not echo("ONLYME")
    assert http.delete(f"/xapi/dicomscp/{rid}").status_code == 200
    assert http.get(f"/xapi/dicomscp/{rid}").status_code == 404


def test_routing_expressions_with_replacements(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    """XNAT's routing expressions with ``t:``/``r:`` (``TestDicomSCPRoutingExpressions``): every
    study sent to this receiver goes to RCVPLAIN, subject ``RSUBJ``, session ``R`` plus the PatientID
    (``$1`` names a group of the ``t:`` expression)."""
    port = free_port()
    doc = {
        "aeTitle": "ROUTED", "port": port, "routingExpressionsEnabled": True,
        "projectRoutingExpression": "(0020,000E):(.*):1 t:.+ r:RCVPLAIN",
        "subjectRoutingExpression": "(0010,4001):(.*):1 t:.+ r:never\n(0020,000E):(.*):1 t:.+ r:RSUBJ",
        "sessionRoutingExpression": "(0010,0020):(.*):1 t:^(.*)$ r:R$1",
    }  # fmt: skip
    r = http.post("/xapi/dicomscp", json=doc)
    assert r.status_code == 200, r.text
    files = copy_study(TS[:2], tmp_path / "routed", "ROUTE7")
    args = ["storescu", "-aec", "ROUTED", "127.0.0.1", str(port), *map(str, files)]
    assert subprocess.run(args, capture_output=True, timeout=120).returncode == 0

    def routed() -> list[tuple[str, str]]:
        return [(s["subject"], s["name"]) for s in prearchive(http, "RCVPLAIN") if s["name"] == "RROUTE7"]

    assert wait_for(routed) == [("RSUBJ", "RROUTE7")], routed()
    assert http.delete(f"/xapi/dicomscp/{r.json()['id']}").status_code == 200


# --- acknowledged means kept: SIGKILL between the Success response and the filing ------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc), children first."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(c) for c in (task / "children").read_text().split()]
    return [d for k in kids for d in _tree(k)] + [pid]


def _start_receiver(data: Path, port: int, **env_more: str) -> subprocess.Popen[bytes]:
    args = [python(), "-c", "from xnatd.cli.main import main; main()", "dicom", "--data", str(data)]
    args += ["--host", "127.0.0.1"]
    args += ["--dicom-port", str(port), "--dicom-processes", "2"]
    log = (data.parent / "receiver.log").open("ab")
    env = {
        **os.environ,
        "XNATD_DICOM_FSYNC": "true",  # the flush path here; the other tests run without
        # No filing batch before the kill, however slow the machine: every acknowledged object is still
        # in the spool when the process dies, which is what this test is about. (A kill in the middle
        # of a batch: test_a_receiver_killed_in_the_middle_of_a_batch_files_each_object_once.)
        "XNATD_DICOM_FILING_INTERVAL": "600",
        **env_more,
    }
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()

    def up() -> bool:
        ae = AE("PROBE")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", port, ae_title="XNAT")
        established = bool(assoc.is_established)
        if established:
            assoc.release()
        return established

    if not (wait_for(lambda: proc.poll() is not None or up(), timeout=60) and proc.poll() is None):
        stop_process(proc)
        pytest.fail((data.parent / "receiver.log").read_text())
    return proc


def _sent(port: int, calling: str = "CRASHSCU") -> dict[str, str]:
    """Send the CT study in one association, left open. Returns SOP UID -> dataset MD5."""
    ae = AE(calling)
    for p in CT:
        meta = pydicom.dcmread(p, stop_before_pixels=True, force=True).file_meta
        ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="XNAT")
    assert assoc.is_established
    acknowledged = {}
    with reactor_held(assoc):
        for p in CT:
            assert int(assoc.send_c_store(p).Status) == 0
            uid = str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            acknowledged[uid] = hashlib.md5(_dataset_bytes(p)).hexdigest()
    _open_associations.append(assoc)
    return acknowledged


_open_associations: list[object] = []


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL every receiver process; then drop the sender's association."""
    for pid in _tree(proc.pid):
        os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)
    while _open_associations:
        _open_associations.pop().abort()  # type: ignore[attr-defined]


def _sent_and_killed(proc: subprocess.Popen[bytes], port: int) -> dict[str, str]:
    """SIGKILL every receiver process right after the last Success, long before the filing
    thread's first batch."""
    acknowledged = _sent(port)
    _kill(proc)
    return acknowledged


def _filed(http: httpx.Client) -> dict[str, dict[str, str]]:
    """The Unassigned prearchive's files, by URI."""
    found = {}
    for session in prearchive(http, "Unassigned"):
        for scan in rows(http.get(f"/data{session['url']}/scans", params={"format": "json"})):
            url = f"/data{session['url']}/scans/{scan['ID']}/resources/DICOM/files"
            for f in rows(http.get(url, params={"format": "json"})):
                found[f["URI"]] = f
    return found


def _contents(http: httpx.Client, files: dict[str, dict[str, str]]) -> dict[str, str]:
    """SOP UID -> MD5 of the dataset, of each file (whose whole MD5 must match its row)."""
    got = {}
    for f in files.values():
        body = http.get(f["URI"]).content
        assert hashlib.md5(body).hexdigest() == f["digest"]
        ds = pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True)
        got[str(ds.SOPInstanceUID)] = hashlib.md5(_dataset_bytes_of(body)).hexdigest()
    return got


def test_acknowledged_objects_survive_sigkill_before_filing(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    data.mkdir()
    proc = _start_receiver(data, port)
    try:
        acknowledged = _sent_and_killed(proc, port)
    finally:
        stop_process(proc)
    spooled = list((data / "spool" / "dicom").rglob("*.dcm"))
    assert len(spooled) == len(acknowledged), "every acknowledged object was in the spool when it died"
    dead = spooled[0].parent
    shutil.copy(spooled[0], dead / "999-1.dcm")  # the same SOP instance twice: stored once
    (dead / "999-2.dcm").write_bytes(b"not DICOM at all")  # cannot be filed: quarantined, not lost
    with live_server(data, "--dicom-port", str(port)) as srv, srv.client() as http:

        def filed() -> dict[str, dict[str, str]]:
            found = _filed(http)
            return found if len(found) >= len(acknowledged) else {}

        files: dict[str, dict[str, str]] = wait_for(filed, timeout=60)  # type: ignore[assignment]
        assert len(files) == len(acknowledged), "every acknowledged object once, the duplicate not again"
        assert _contents(http, files) == acknowledged
        assert not list((data / "spool" / "dicom").rglob("*.dcm"))
        quarantined = [p.read_bytes() for p in (data / "quarantine").rglob("*.dcm")]
        assert quarantined == [b"not DICOM at all"]
        assert "left by a dead receiver process" in srv.log.read_text()


HOLD = Path(__file__).resolve().parents[1] / "support" / "crash_window"  # sitecustomize: holds a batch


def test_a_receiver_killed_in_the_middle_of_a_batch_files_each_object_once(tmp_path: Path) -> None:
    """Killed with its batch's files placed in the prearchive (second names of the spool files)
    and flushed, before the commit: the next start removes those names (the spool keeps each
    object) and files the spool once; nothing is left in quarantine as a copy."""
    data, port, mark = tmp_path / "data", free_port(), tmp_path / "held"
    data.mkdir()
    hold = {"PYTHONPATH": str(HOLD), "XNATD_TEST_HOLD_MARK": str(mark), "XNATD_DICOM_FILING_INTERVAL": "0.5"}
    proc = _start_receiver(data, port, **hold)
    try:
        acknowledged = _sent(port, calling="HOLDFILE")
        assert wait_for(mark.exists, timeout=60), "the first batch reached its commit"
        placed = list((data / "prearchive").rglob("*.dcm"))
        assert placed, "the held batch placed its files"
        _kill(proc)
    finally:
        stop_process(proc)
    again = _start_receiver(data, port, XNATD_DICOM_FILING_INTERVAL="0.5")  # recovery, then the takeover
    try:
        assert wait_for(lambda: not list((data / "spool" / "dicom").rglob("*.dcm")), timeout=60)
    finally:
        stop_process(again)
    log = (tmp_path / "receiver.log").read_text()
    assert "filed again" in log and "placed by a process that died" not in log
    assert not list((data / "quarantine").rglob("*")), "no copy kept in quarantine"
    with live_server(data) as srv, srv.client() as http:
        files = _filed(http)
        assert len(files) == len(acknowledged)
        assert _contents(http, files) == acknowledged
        verified = subprocess.run(
            [str(XNATD), "verify", "--data", str(data), "--database", srv.database],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout + verified.stderr
