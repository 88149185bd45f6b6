"""The malformed-DICOM corpus through every door of a real server: no 5xx, no crash, nothing half-written.

Doors: REST import one file per request (gradual-DICOM), REST import as zips (the corpus in batches,
plus damaged and hostile zips), C-STORE (pynetdicom as the SCU sending each damaged dataset's bytes
unchanged behind a valid file meta, so the receiver decodes them, not pynetdicom), raw bytes at the
DICOM port (malformed PDUs built by hand), and hostile query strings and XML bodies at the REST
archive. The counts per door are printed and written to ``fuzz-summary.json`` in the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import socket
import struct
import subprocess
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.fuzz.corpus import SCALE, SEED, Case, bundled, dataset_start, malformed
from tests.support.dicom_scu import reactor_held
from tests.support.live_server import XNATD, LiveServer, free_port, live_server

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]
PROJECT = "FUZZ"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = "1.2.840.10008.1.2"
Tally = dict[str, Counter[str]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    port = free_port()
    receivers = json.dumps([{"aeTitle": "FUZZ", "project": PROJECT, "port": port}])
    env = {
        "XNATD_DICOM_RECEIVERS": receivers,
        "XNATD_DICOM_PROCESSES": "1",
        "XNATD_PREARCHIVE_IDLE_BUILD": "2",
    }
    with live_server(tmp_path_factory.mktemp("fuzz") / "data", "--dicom-port", str(port), env=env) as srv:
        srv.dicom_port = port  # type: ignore[attr-defined]
        with srv.client() as http:
            assert http.put(f"/data/projects/{PROJECT}").status_code == 200
        yield srv


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return bundled() + malformed()


@pytest.fixture(scope="module")
def tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tally]:
    counts: Tally = {}
    yield counts
    out = tmp_path_factory.getbasetemp() / "fuzz-summary.json"
    out.write_text(json.dumps(counts, indent=1, sort_keys=True))
    print(f"\nfuzz summary ({out}):")
    for door, c in sorted(counts.items()):
        print(f"  {door:18s} " + " ".join(f"{k}={v}" for k, v in sorted(c.items())))


def record(tally: Tally, door: str, status: int | str) -> None:
    c = tally.setdefault(door, Counter())
    c["tried"] += 1
    c["5xx" if isinstance(status, int) and status >= 500 else str(status)] += 1


def alive(server: LiveServer) -> None:
    """The server process runs, answers HTTP, and its DICOM receiver answers a C-ECHO."""
    assert server.process.poll() is None, "the server process died"
    assert httpx.get(server.url + "/xapi/siteConfig/buildInfo", timeout=30).status_code == 200
    ae = AE("FUZZSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", int(server.dicom_port), ae_title="FUZZ")  # type: ignore[attr-defined]
    assert assoc.is_established, "the DICOM receiver does not associate"
    assert assoc.send_c_echo().Status == 0
    assoc.release()


def sessions(http: httpx.Client) -> list[dict[str, str]]:
    r = http.get(f"/data/prearchive/projects/{PROJECT}", params={"format": "json"})
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def test_rest_import_one_file_per_request(server: LiveServer, corpus: list[Case], tally: Tally) -> None:
    with server.client() as http:
        accepted: set[str] = set()
        for i, case in enumerate(corpus):
            label = f"G{i:04d}"
            params = {"import-handler": "gradual-DICOM", "PROJECT_ID": PROJECT, "SUBJECT_ID": "FZ"}
            r = http.post(
                "/data/services/import",
                params={**params, "EXPT_LABEL": label},
                content=case.data,
                headers={"Content-Type": "application/dicom"},
            )
            record(tally, "rest-gradual", r.status_code)
            assert r.status_code < 500, f"{case.name}: {r.status_code} {r.text[:300]}"
            if r.status_code == 200:
                accepted.add(label)
        alive(server)
        filed = {s["name"] for s in sessions(http) if s["name"].startswith("G")}
        assert filed <= accepted, f"sessions left by refused files: {sorted(filed - accepted)[:5]}"
        assert tally["rest-gradual"]["200"] > 20 and tally["rest-gradual"]["400"] > 20


def _zip(cases: list[Case], names: list[str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for j, case in enumerate(cases):
            info = zipfile.ZipInfo(names[j] if names else f"s/{j:03d}.dcm")  # ZipInfo takes an empty name
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, case.data)
    return buf.getvalue()


def zips(corpus: list[Case]) -> list[tuple[str, bytes]]:
    """The corpus in zips of 12, then damaged zips and zips with hostile member names."""
    rng = random.Random(SEED)
    out = [(f"batch{i}", _zip(corpus[i : i + 12])) for i in range(0, len(corpus), 12)]
    good = _zip(corpus[:6])
    for k in range(8 * SCALE):
        cut = rng.randrange(1, len(good))
        out.append((f"truncated@{cut}", good[:cut]))
        flipped = bytearray(good)
        for _ in range(4):
            flipped[rng.randrange(len(flipped))] ^= 0xFF
        out.append((f"flipped#{k}", bytes(flipped)))
    for name in ("../../evil.dcm", "/tmp/evil.dcm", "a\\..\\evil.dcm", "", "ok/\x01.dcm"):
        out.append((f"name {name!r}", _zip(corpus[:1] + corpus[:1], ["ok.dcm", name])))
    out.append(("bomb", _zip([Case("zeros", bytes(64 << 20))])))
    return out


def test_rest_import_as_zips(server: LiveServer, corpus: list[Case], tally: Tally) -> None:
    with server.client() as http:
        before = {s["name"] for s in sessions(http)}
        for name, body in zips(corpus):
            r = http.post(
                "/data/services/import",
                params={"import-handler": "DICOM-zip", "dest": f"/prearchive/projects/{PROJECT}"},
                content=body,
                headers={"Content-Type": "application/zip"},
            )
            record(tally, "rest-zip", r.status_code)
            assert r.status_code < 500, f"{name}: {r.status_code} {r.text[:300]}"
            if name.startswith("name"):
                assert r.status_code in (400, 413), f"{name} accepted: {r.text[:200]}"
        alive(server)
        assert {s["name"] for s in sessions(http)} >= before
        assert tally["rest-zip"]["5xx"] == 0 and tally["rest-zip"]["200"] > 0


def _syntax(case: Case, start: int) -> str:
    """The transfer syntax the case's own meta names, else a guess from its first element."""
    if start:
        try:
            meta = pydicom.dcmread(io.BytesIO(case.data), stop_before_pixels=True).file_meta
            return str(meta.TransferSyntaxUID)
        except Exception:
            return str(ExplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian) if case.data[4:6].isalpha() else IMPLICIT_LE


def cstore_file(case: Case, folder: Path, index: int) -> tuple[Path, str]:
    """``case``'s dataset bytes behind a fresh, valid file meta; returns the file and its syntax."""
    start = dataset_start(case.data)
    syntax = _syntax(case, start)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_STORAGE)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(syntax)
    buf = io.BytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)  # type: ignore[arg-type]
    path = folder / f"c{index:04d}.dcm"
    path.write_bytes(buf.getvalue() + case.data[start:])
    return path, syntax


def test_cstore(server: LiveServer, corpus: list[Case], tally: Tally, tmp_path: Path) -> None:
    _config.STORE_SEND_CHUNKED_DATASET = True  # send the file's bytes as they are, never re-encoded
    files = [cstore_file(case, tmp_path, i) for i, case in enumerate(corpus)]
    syntaxes = sorted({s for _, s in files})
    ae = AE("FUZZSCU")
    # pynetdicom's default 30 s was once reached at load average 11 on the shared CI machine; a
    # receiver that truly hangs still fails the test.
    ae.dimse_timeout = 120
    for syntax in syntaxes:
        ae.add_requested_context(CT_STORAGE, syntax)
    assoc = None
    held = contextlib.ExitStack()
    try:
        for path, _ in files:
            if assoc is None or not assoc.is_established:
                held.close()
                assoc = ae.associate("127.0.0.1", int(server.dicom_port), ae_title="FUZZ", max_pdu=16382)  # type: ignore[attr-defined]
                assert assoc.is_established
                held.enter_context(reactor_held(assoc))
            try:
                t0 = time.monotonic()
                status = assoc.send_c_store(path)
                if time.monotonic() - t0 > 2:
                    print(f"slow C-STORE {time.monotonic() - t0:.1f}s: {corpus[int(path.stem[1:])].name}")
            except Exception as exc:  # pynetdicom refusing to send it is no answer from the server
                record(tally, "cstore", f"not sent: {type(exc).__name__}")
                print(f"pynetdicom did not send {path.name}: {exc}")
                continue
            code = int(status.Status) if "Status" in status else "aborted"
            record(tally, "cstore", f"0x{code:04X}" if isinstance(code, int) else code)
            assert code != "aborted", "the receiver aborted or did not answer"
    finally:
        held.close()
        if assoc is not None and assoc.is_established:
            assoc.release()
    alive(server)
    c = tally["cstore"]
    assert c["0x0000"] > 20 and c["aborted"] == 0, dict(c)


def raw_pdus() -> list[tuple[str, bytes]]:
    """Hand-made PDUs at the upper layer: garbage, lies about lengths, a P-DATA with no association."""
    rng = random.Random(SEED)
    called, calling = b"FUZZ".ljust(16), b"RAW".ljust(16)
    app = b"\x10\x00\x00\x15" + b"1.2.840.10008.3.1.1.1"
    rq = b"\x00\x01\x00\x00" + called + calling + b"\x00" * 32 + app
    assoc_rq = b"\x01\x00" + struct.pack(">I", len(rq)) + rq
    pdata = b"\x04\x00" + struct.pack(">I", 12) + struct.pack(">I", 6) + b"\x01\x03" + b"\x00\x00\x00\x00"
    cases = [
        ("empty", b""),
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("huge length", b"\x01\x00\xff\xff\xff\xff" + rq),
        ("truncated rq", assoc_rq[: len(assoc_rq) // 2]),
        ("rq without contexts", assoc_rq),
        ("pdata first", pdata),
        ("unknown pdu", b"\x09\x00\x00\x00\x00\x04abcd"),
        ("release first", b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"),
    ]
    cases += [(f"random#{i}", rng.randbytes(rng.randint(1, 512))) for i in range(10 * SCALE)]
    cases += [(f"rq-flipped#{i}", _flip(assoc_rq + pdata, rng)) for i in range(10 * SCALE)]
    return cases


def _flip(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(3):
        buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


def test_raw_bytes_at_the_dicom_port(server: LiveServer, tally: Tally) -> None:
    for name, data in raw_pdus():
        answer = b""
        with socket.create_connection(("127.0.0.1", int(server.dicom_port)), timeout=10) as s:  # type: ignore[attr-defined]
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                answer = s.recv(6)
            except OSError:  # the receiver closed or reset the connection first: a fine answer
                pass
        record(tally, "dicom-raw", f"pdu{answer[0]:02x}" if answer else "closed")
        assert server.process.poll() is None, f"server died on {name}"
    alive(server)


HOSTILE_VALUES = ["", "'", '"', "%00", "\x00", "\\", "../..", "-1", "1e999", "NaN", "x" * 5000, "<x>", "{}"]


def test_query_strings_and_xml_bodies(server: LiveServer, tally: Tally) -> None:
    rng = random.Random(SEED)
    keys = ["format", "columns", "xsiType", "label", "offset", "limit", "sortBy", "src", "overwrite", "dest"]
    paths = [
        "/data/projects",
        f"/data/projects/{PROJECT}/subjects",
        f"/data/projects/{PROJECT}/experiments",
        "/data/experiments",
        f"/data/prearchive/projects/{PROJECT}",
        "/data/search/elements",
    ]
    xml = [
        b"",
        b"<",
        b"<?xml version='1.0'?><xnat:Subject xmlns:xnat='http://nrg.wustl.edu/xnat'",
        b"<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
        b"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]><x>&c;&c;&c;&c;</x>",
        b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
        b"<x>" * 5000,
        "<xnat:Subject xmlns:xnat='http://nrg.wustl.edu/xnat' label='\u00e9\udcff'/>".encode(
            "utf-8", "replace"
        ),
    ]
    with server.client() as http:
        for _ in range(60 * SCALE):
            params = {rng.choice(keys): rng.choice(HOSTILE_VALUES) for _ in range(rng.randint(1, 4))}
            r = http.get(rng.choice(paths), params=params)
            record(tally, "rest-query", r.status_code)
            assert r.status_code < 500, f"{params}: {r.status_code} {r.text[:300]}"
        for j, body in enumerate(xml):
            for url in (f"/data/projects/{PROJECT}/subjects/X{j}", "/data/search"):
                method = "PUT" if "subjects" in url else "POST"
                r = http.request(method, url, content=body, headers={"Content-Type": "text/xml"})
                record(tally, "rest-xml", r.status_code)
                assert r.status_code < 500, f"{body[:60]!r} at {url}: {r.status_code} {r.text[:300]}"
    alive(server)


IMPORT_KEYS = ["dest", "PROJECT_ID", "SUBJECT_ID", "EXPT_LABEL", "import-handler", "overwrite", "rename"]
MARK = "fzmark"
HOSTILE_IDS = [
    f"../../{MARK}",
    f"/tmp/{MARK}",
    f"/prearchive/projects/{PROJECT}/../../../{MARK}",
    f"/archive/projects/{PROJECT}/subjects/{MARK}/experiments/..",
    f"{MARK}\x00x",
    f"{MARK}/../x",
    f"{MARK}%2F..",
    f"{MARK}\\..",
    f"{MARK} ",
]


def test_import_parameters(server: LiveServer, corpus: list[Case], tally: Tally) -> None:
    """Hostile destinations and labels with a good file: a 4xx or a label kept inside the archive."""
    rng = random.Random(SEED)
    good = next(c for c in corpus if c.name == "pydicom/CT_small.dcm").data
    with server.client() as http:
        for _ in range(40 * SCALE):
            params = {"PROJECT_ID": PROJECT}
            for _ in range(rng.randint(1, 3)):
                params[rng.choice(IMPORT_KEYS)] = rng.choice(HOSTILE_IDS + HOSTILE_VALUES)
            r = http.post(
                "/data/services/import",
                params=params,
                content=good,
                headers={"Content-Type": "application/dicom"},
            )
            record(tally, "rest-import-params", r.status_code)
            assert r.status_code < 500, f"{params}: {r.status_code} {r.text[:300]}"
    alive(server)
    escaped = [p for d in (Path("/tmp"), server.data.parent, server.data) for p in d.glob(f"*{MARK}*")]
    assert not escaped, f"written outside the archive: {escaped}"


def multipart(parts: list[tuple[str | None, bytes]], boundary: bytes = b"fUzZ") -> bytes:
    body = b""
    for name, data in parts:
        disposition = b'form-data; name="f"' + (
            b'; filename="%s"' % name.encode() if name is not None else b""
        )
        body += b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + data + b"\r\n"
    return body + b"--" + boundary + b"--\r\n"


def multipart_cases(good: bytes) -> list[tuple[str, bytes, str]]:
    """``good`` (a multipart body) whole, then damaged: (name, body, content type)."""
    rng = random.Random(SEED)
    ctype = "multipart/form-data; boundary=fUzZ"
    cases = [("good", good, ctype), ("no boundary", good, "multipart/form-data")]
    cases.append(("other boundary", good, "multipart/form-data; boundary=other"))
    cases.append(("unterminated", good[: len(good) // 2], ctype))
    for k in range(20 * SCALE):
        buf = bytearray(good)
        for _ in range(rng.randint(1, 6)):  # damage mostly the part headers, where parsers break
            pos = rng.randrange(min(len(buf), 400)) if rng.random() < 0.7 else rng.randrange(len(buf))
            buf[pos : pos + rng.randint(1, 4)] = rng.randbytes(rng.randint(0, 4))
        cut = rng.randrange(1, len(buf) + 1) if k % 2 else len(buf)  # every other one truncated too
        cases.append((f"damaged#{k}", bytes(buf[:cut]), ctype))
    return cases


def test_multipart_bodies(server: LiveServer, corpus: list[Case], tally: Tally) -> None:
    """The import door takes one file per request (as XNAT's); the files door several, zips extracted."""
    one = multipart([(None, b"field"), ("a.dcm", corpus[1].data)])
    several = multipart([("a.dcm", corpus[1].data), (None, b"field"), ("b.zip", _zip(corpus[2:5]))])
    doors = [
        ("/data/services/import", {"import-handler": "gradual-DICOM", "PROJECT_ID": PROJECT}, one),
        (f"/data/projects/{PROJECT}/resources/MP/files", {"extract": "true", "overwrite": "true"}, several),
    ]
    with server.client() as http:
        assert http.put(f"/data/projects/{PROJECT}/resources/MP").status_code == 200
        for url, params, good in doors:
            for name, body, ctype in multipart_cases(good):
                r = http.post(url, params=params, content=body, headers={"Content-Type": ctype})
                record(tally, "rest-multipart", r.status_code)
                assert r.status_code < 500, f"{name} at {url}: {r.status_code} {r.text[:300]}"
                if name == "good":
                    assert r.status_code == 200, f"{url}: {r.text[:300]}"
    alive(server)


def verify(server: LiveServer) -> subprocess.CompletedProcess[str]:
    # --stale-after 0: every temporary and every unnamed file counts, however young; the server
    # is idle by now, so anything found was left behind by a refused input.
    args = ["verify", "--data", str(server.data), "--database", server.database, "--stale-after", "0"]
    return subprocess.run([str(XNATD), *args], capture_output=True, text=True, timeout=300)


def test_nothing_half_written(server: LiveServer, tally: Tally) -> None:
    """Last: the receiver has filed what it accepted, and `xnatd verify` finds database and files agree."""
    # The receiver files in batches and the idle builder runs every 2 s: wait until they are done
    # (however loaded the machine), then verify must find nothing amiss.
    deadline = time.monotonic() + 120
    while (out := verify(server)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    stray = server.data / "tmp" / ".stage-fuzz-left-behind"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"half")
    try:
        assert verify(server).returncode == 1, "verify must see a temporary left behind"
    finally:
        stray.unlink()
    assert sum(c["5xx"] for c in tally.values()) == 0
    assert server.process.poll() is None
