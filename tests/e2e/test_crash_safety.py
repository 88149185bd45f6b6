"""Acknowledged means kept, through SIGKILLs of the whole server tree (issue #9).

A real ``xnatd serve`` (HTTP, its DICOM receiver processes) takes concurrent resource uploads, zip
imports into the archive, C-STOREs and prearchive -> archive operations; at a random moment (seeded:
the seed is printed, ``XNATD_CRASH_SEED`` replays it) every process of the tree is SIGKILLed, as when
the machine dies. The server is started again on the same data folder, and then:

- every acknowledged upload is listed with its MD5 and reads back with it; a file that was never
  acknowledged is either absent or complete (the MD5 it was sent with); a file whose overwrite was
  cut short holds the old content or the new one, whichever its row names;
- every experiment present is whole (the file count it was sent with), every acknowledged one present;
- ``xnatd verify`` (its own process) is clean after the server's own start-up recovery: no row without
  its file, no file without its row, no temporary of a dead process left;
- at the end every acknowledged C-STORE object is filed with the dataset bytes that were sent;
- uploads of a file over an acknowledged folder, or of a folder over an acknowledged file, are
  refused (409) and move nothing; files named like the server's temporaries are kept, by the
  restarts' recovery and, at the end, by ``xnatd verify --repair`` that counts every temporary as
  stale (issue 17).
- four clients send parts of one study at once through different import doors (zip to
  ``dest=/archive``, tar and one file per request with ``Direct-Archive``, zip into the prearchive
  then ``/data/services/archive``): every file of a 2xx answer is in the archive or, where the
  contract lets it wait (a Direct-Archive staging session, a session whose archive the kill cut
  short), in the prearchive, with its MD5; a file whose answer said "archived" is in the archive.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import io
import os
import random
import tarfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom
import pytest
from pynetdicom import AE, _config

from tests.support.crash import Site
from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files

pytestmark = pytest.mark.slow
ROUNDS = int(os.environ.get("XNATD_CRASH_ROUNDS", "10"))
CT = [p for p in dicom_files(TESTDATA / "dcm_qa_ct_philips") if p.stat().st_size > 400_000][:3]
GE = [f for d in sorted((TESTDATA / "dcm_qa_nih" / "20180918GE").glob("mr_*")) for f in dicom_files(d)[:3]]
UPL, IMP, PRE, CST, STU = "CRUPL", "CRIMP", "CRPRE", "CRCST", "CRSTU"


@dataclass
class Ledger:
    """What the server acknowledged, and what was attempted (may or may not have happened)."""

    uploads: dict[str, str] = field(default_factory=dict)  # name -> MD5 (2xx)
    tried_uploads: dict[str, str] = field(default_factory=dict)
    overwrites: dict[str, str] = field(default_factory=dict)  # name -> MD5 of the last overwrite tried
    overwritten: set[str] = field(default_factory=set)  # names overwritten since the last check
    sessions: dict[str, int] = field(default_factory=dict)  # project/label -> files (200)
    tried_sessions: dict[str, int] = field(default_factory=dict)
    stored: dict[str, str] = field(default_factory=dict)  # SOP UID -> MD5 of the dataset bytes
    study_kept: set[str] = field(default_factory=set)  # MD5s of one-study imports answered 2xx
    study_archived: set[str] = field(default_factory=set)  # ... whose answer said "in the archive"
    checked_sessions: set[str] = field(default_factory=set)
    clash_files: dict[str, str] = field(default_factory=dict)  # path -> MD5 (2xx), resource CL
    clash_tried: dict[str, str] = field(default_factory=dict)
    clash_checked: set[str] = field(default_factory=set)
    reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Studies:
    """Distinct copies of a small CT series, made ahead (a copy per zip import / C-STORE batch)."""

    def __init__(self, folder: Path, count: int, source: list[Path] = CT) -> None:
        self.items = [copy_study(source, folder / f"s{i}", f"CR{i:03d}") for i in range(count)]
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[int, list[Path]] | None:
        with self._lock:
            if self._next >= len(self.items):
                return None
            self._next += 1
            return self._next - 1, self.items[self._next - 1]


def _zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for f in files:
            zf.write(f, f"DICOM/{f.name}")
    return buf.getvalue()


def _dataset_md5(data: bytes) -> str:
    """MD5 of the encoded dataset after the file meta: what a C-STORE carries, stored as sent."""
    assert data[128:132] == b"DICM"
    group_length = int.from_bytes(data[140:144], "little")
    return hashlib.md5(data[144 + group_length :]).hexdigest()


# --- the workload: each loop runs until the server dies (a connection error) or ``stop`` ------------


def _uploads(site: Site, ledger: Ledger, rnd: random.Random, tag: str, stop: threading.Event) -> None:
    """New files, and one time in five an overwrite of one this thread had acknowledged."""
    mine: list[str] = []
    with site.client() as http:
        for i in range(10_000):
            if stop.is_set():
                return
            body = rnd.randbytes(rnd.choice((1, 700, 40_000, 300_000, 1_500_000)))
            digest = hashlib.md5(body).hexdigest()
            params = {"inbody": "true"}
            with ledger.lock:
                if mine and rnd.random() < 0.2:
                    name = rnd.choice(mine)
                    params["overwrite"] = "true"
                    ledger.overwrites[name] = digest
                    ledger.overwritten.add(name)
                else:
                    name = f"{tag}_{i}.bin"
                    ledger.tried_uploads[name] = digest
            url = f"/data/projects/{UPL}/resources/R/files/{name}"
            r = http.put(url, content=body, params=params)
            assert r.status_code in (200, 201), r.text
            with ledger.lock:
                ledger.uploads[name] = digest
            if "overwrite" not in params:
                mine.append(name)


CLASH = f"/data/projects/{UPL}/resources/CL/files"
TEMP_LOOKING = (
    ".deleting-{:016x}", "backup-{:032x}", ".stage-{:024x}.part", ".aside-{:016x}/f.bin",
    "deleting-{:016x}", "aside-{:032x}", ".stage-proc-{:016x}", "owner.lock", "placed.log",
)  # fmt: skip


def _clashes(site: Site, ledger: Ledger, rnd: random.Random, tag: str, stop: threading.Event) -> None:
    """Per step: a file in a new folder, a file named like one of the server's temporaries (both
    acknowledged), then a file over that folder or a folder over that file (always refused)."""
    with site.client() as http:
        for i in range(10_000):
            if stop.is_set():
                return
            base = f"{tag}_{i}"
            temp = rnd.choice(TEMP_LOOKING).format(rnd.getrandbits(128) & ((1 << 64) - 1))
            for path in (f"{base}/d/ok.bin", f"{base}/{temp}"):
                body = rnd.randbytes(rnd.choice((1, 5000, 200_000)))
                with ledger.lock:
                    ledger.clash_tried[path] = hashlib.md5(body).hexdigest()
                r = http.put(f"{CLASH}/{path}", content=body, params={"inbody": "true"})
                assert r.status_code == 200, (path, r.text)
                with ledger.lock:
                    ledger.clash_files[path] = ledger.clash_tried[path]
            door = rnd.randrange(4)
            if door == 0:  # a file over the folder
                r = http.put(f"{CLASH}/{base}/d", content=b"x", params={"inbody": "true"})
            elif door == 1:  # the same, asking to overwrite
                r = http.put(
                    f"{CLASH}/{base}/d", content=b"x", params={"inbody": "true", "overwrite": "true"}
                )
            elif door == 2:  # a zip whose entry is the folder's name
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w") as zf:
                    zf.writestr("fine.txt", b"fine")
                    zf.writestr("d", b"x")
                params = {"extract": "true", "overwrite": "true"}
                r = http.put(f"{CLASH}/{base}/up.zip", content=buf.getvalue(), params=params)
            else:  # a folder over the file
                r = http.put(f"{CLASH}/{base}/d/ok.bin/x", content=b"x", params={"inbody": "true"})
            assert r.status_code == 409 and "is a f" in r.text, (base, door, r.status_code, r.text)


def _imports(site: Site, ledger: Ledger, studies: Studies, to: str, stop: threading.Event) -> None:
    """Zip imports straight into the archive (``to`` = IMP), or into the prearchive and then archived
    by ``POST /data/services/archive`` (``to`` = PRE)."""
    with site.client() as http:
        while not stop.is_set() and (taken := studies.take()) is not None:
            i, files = taken
            label = f"{to}_E{i:03d}"
            with ledger.lock:
                ledger.tried_sessions[f"{to}/{label}"] = len(files)
            if to == IMP:
                dest = f"/archive/projects/{IMP}/subjects/S{i % 3}/experiments/{label}"
                r = http.post("/data/services/import", params={"dest": dest}, content=_zip(files))
                assert r.status_code == 200, r.text
            else:
                r = http.post(
                    "/data/services/import",
                    params={"dest": f"/prearchive/projects/{PRE}"},
                    content=_zip(files),
                )
                assert r.status_code == 200, r.text
                src = r.text.strip().splitlines()[0]
                dest = f"/archive/projects/{PRE}/subjects/S{i % 3}/experiments/{label}"
                r = http.post("/data/services/archive", params={"src": src, "dest": dest})
                assert r.status_code == 200, r.text
            with ledger.lock:
                ledger.sessions[f"{to}/{label}"] = len(files)


def _cstores(site: Site, ledger: Ledger, studies: Studies, stop: threading.Event) -> None:
    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE("CRASHSCU")
    meta = pydicom.dcmread(CT[0], stop_before_pixels=True).file_meta
    ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    while not stop.is_set() and (taken := studies.take()) is not None:
        assoc = ae.associate("127.0.0.1", site.dicom_port, ae_title="CRASH")
        if not assoc.is_established:
            return
        try:
            for p in taken[1]:
                try:
                    status = assoc.send_c_store(p)
                except RuntimeError:  # pynetdicom's "must be established": the server died since the last
                    if assoc.is_established:
                        raise
                    return
                if not status or int(status.Status) != 0:
                    return  # the association died with the server
                uid = str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                with ledger.lock:
                    ledger.stored[uid] = _dataset_md5(p.read_bytes())
        finally:
            assoc.release() if assoc.is_established else assoc.abort()


def _study_at_once(site: Site, ledger: Ledger, studies: Studies, stop: threading.Event) -> None:
    """Four clients send parts of one study at the same moment, each through another door, all with
    ``overwrite=append`` into one experiment; then the next study, until the server dies."""
    while not stop.is_set() and (taken := studies.take()) is not None:
        _one_study(site, ledger, *taken)


def _one_study(site: Site, ledger: Ledger, i: int, files: list[Path]) -> None:
    label, subject = f"ST{i:03d}", f"S{i % 3}"
    labels = {"PROJECT_ID": STU, "SUBJECT_ID": subject, "EXPT_LABEL": label, "overwrite": "append"}
    dest = {"dest": f"/archive/projects/{STU}/subjects/{subject}/experiments/{label}", "overwrite": "append"}
    direct = {**labels, "Direct-Archive": "true"}
    parts = [files[k::4] for k in range(4)]
    senders: list[Callable[[], None]] = [
        functools.partial(_send_whole, site, ledger, parts[0], "zip", dest, True),
        functools.partial(_send_whole, site, ledger, parts[1], "tar", direct, False),
        functools.partial(_send_one_by_one, site, ledger, parts[2], direct),
        functools.partial(_send_then_archive, site, ledger, parts[3], labels),
    ]
    start = threading.Barrier(len(senders))

    def run(send: Callable[[], None]) -> None:
        start.wait(timeout=60)
        send()

    with concurrent.futures.ThreadPoolExecutor(len(senders)) as pool:
        done = [pool.submit(run, send) for send in senders]
    for d in done:
        d.result()  # a transport error (the server died) ends the workload, as in the others


def _acknowledge(ledger: Ledger, part: list[Path], archived: bool) -> None:
    digests = {hashlib.md5(f.read_bytes()).hexdigest() for f in part}
    with ledger.lock:
        ledger.study_kept |= digests
        if archived:
            ledger.study_archived |= digests


def _send_whole(
    site: Site, ledger: Ledger, part: list[Path], kind: str, params: dict[str, str], archived: bool
) -> None:
    body, ctype = (_zip(part), "application/zip") if kind == "zip" else (_tar(part), "application/x-tar")
    with site.client() as http:
        r = http.post("/data/services/import", params=params, content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    _acknowledge(ledger, part, archived)


def _send_one_by_one(site: Site, ledger: Ledger, part: list[Path], params: dict[str, str]) -> None:
    with site.client() as http:
        for f in part:
            r = http.post(
                "/data/services/import", params={**params, "inbody": "true"}, content=f.read_bytes(),
                headers={"Content-Type": "application/dicom"},
            )  # fmt: skip
            assert r.status_code == 200, r.text
            _acknowledge(ledger, [f], False)


def _send_then_archive(site: Site, ledger: Ledger, part: list[Path], labels: dict[str, str]) -> None:
    with site.client() as http:
        params = {**labels, "dest": f"/prearchive/projects/{STU}"}
        r = http.post("/data/services/import", params=params, content=_zip(part))
        assert r.status_code == 200, r.text
        _acknowledge(ledger, part, False)
        done = http.post("/data/services/archive", params={"src": r.text.strip(), "overwrite": "append"})
        assert done.status_code in (200, 403, 404), done.text  # 403/404: another archive took it
        if done.status_code == 200:
            _acknowledge(ledger, part, True)


def _tar(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for f in files:
            tf.add(f, f"batch/{f.name}")
    return buf.getvalue()


def _guard(work: Callable[[], None], errors: list[BaseException]) -> Callable[[], None]:
    """A worker ends quietly when the server dies under it; anything else is a failure."""

    def run() -> None:
        try:
            work()
        except (httpx.TransportError, ConnectionError, OSError):
            pass
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    return run


# --- checks after each restart -------------------------------------------------------------------------


def _rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def _check_uploads(http: httpx.Client, ledger: Ledger, fresh: set[str]) -> None:
    r = http.get(f"/data/projects/{UPL}/resources/R/files", params={"format": "json"})
    listed = {f["Name"]: f["digest"] for f in _rows(r)} if r.status_code == 200 else {}
    for name, digest in ledger.uploads.items():
        got = listed.get(name)
        # the acknowledged content, or that of an overwrite the kill cut short (committed or not)
        assert got in (digest, ledger.overwrites.get(name, digest)), f"acknowledged upload {name} lost"
        ledger.uploads[name] = got
    for name, digest in listed.items():
        sent = (ledger.tried_uploads.get(name), ledger.uploads.get(name))
        assert digest in sent, f"{name} is not what was sent (half-written?)"
    for name in (fresh | ledger.overwritten) & set(listed):  # read back what this round added or replaced
        body = http.get(f"/data/projects/{UPL}/resources/R/files/{name}").content
        assert hashlib.md5(body).hexdigest() == listed[name], f"{name} is not what its row says"
        ledger.reads += 1
    ledger.overwrites.clear()
    ledger.overwritten.clear()


def _check_clashes(http: httpx.Client, ledger: Ledger) -> None:
    """Every acknowledged file of the clash workload is there with its MD5; nothing else is (a
    refused upload stored nothing); what this round added reads back."""
    r = http.get(CLASH, params={"format": "json"})
    listed = {f["URI"].split("/files/", 1)[1]: f["digest"] for f in _rows(r)} if r.status_code == 200 else {}
    for path, digest in ledger.clash_files.items():
        assert listed.get(path) == digest, f"acknowledged {path} lost"
    for path, digest in listed.items():
        assert ledger.clash_tried.get(path) == digest, f"{path} was never sent (or not so)"
    for path in set(listed) - ledger.clash_checked:
        body = http.get(f"{CLASH}/{path}").content
        assert hashlib.md5(body).hexdigest() == listed[path], f"{path} is not what its row says"
        ledger.clash_checked.add(path)


def _check_sessions(http: httpx.Client, ledger: Ledger) -> None:
    for project in (IMP, PRE):
        r = http.get(f"/data/projects/{project}/experiments", params={"format": "json"})
        present = {e["label"] for e in _rows(r)}
        for key in ledger.sessions:
            if key.startswith(project + "/"):
                assert key.split("/")[1] in present, f"acknowledged session {key} lost"
        for label in present - {k.split("/")[1] for k in ledger.checked_sessions if k.startswith(project)}:
            key = f"{project}/{label}"
            exp = f"/data/projects/{project}/experiments/{label}"
            count = 0
            for scan in _rows(http.get(f"{exp}/scans", params={"format": "json"})):
                files = _rows(
                    http.get(f"{exp}/scans/{scan['ID']}/resources/DICOM/files", params={"format": "json"})
                )
                assert files, f"{key} scan {scan['ID']} has no files"
                count += len(files)
            assert count == ledger.tried_sessions[key], (
                f"{key} has {count} files, was sent {ledger.tried_sessions[key]}"
            )
            ledger.checked_sessions.add(key)


def _digests(http: httpx.Client, base: str) -> set[str]:
    """The MD5 of every DICOM file of a session (archive or prearchive) at ``base``; none if it went
    meanwhile (a staging session the idle builder archived)."""
    found: set[str] = set()
    scans = http.get(f"{base}/scans", params={"format": "json"})
    for scan in _rows(scans) if scans.status_code != 404 else []:
        listing = http.get(f"{base}/scans/{scan['ID']}/resources/DICOM/files", params={"format": "json"})
        found |= {f["digest"] for f in _rows(listing)} if listing.status_code != 404 else set()
    return found


def _check_one_study(http: httpx.Client, ledger: Ledger, wait: bool = False) -> None:
    """Every file of a one-study import answered 2xx is in the archive, or waits in the prearchive
    (a staging session not archived yet, or one whose archive the kill cut short: recovery makes it
    archivable again), with its MD5; a file whose answer said archived is in the archive. ``wait``:
    first let the idle builder archive the staging sessions (the end of the run). The prearchive is
    read first: a file only moves from there to the archive."""
    deadline = time.monotonic() + 60
    while True:
        sessions = _rows(http.get(f"/data/prearchive/projects/{STU}", params={"format": "json"}))
        if not wait or all(s["status"] != "RECEIVING" for s in sessions) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not wait or all(s["status"] != "RECEIVING" for s in sessions), "staging sessions left unarchived"
    waiting: set[str] = set()
    for s in sessions:
        waiting |= _digests(http, f"/data{s['url']}")
    archived: set[str] = set()
    for e in _rows(http.get(f"/data/projects/{STU}/experiments", params={"format": "json"})):
        archived |= _digests(http, f"/data/projects/{STU}/experiments/{e['label']}")
    assert not ledger.study_archived - archived, (
        f"{len(ledger.study_archived - archived)} archived files lost"
    )
    assert not ledger.study_kept - archived - waiting, f"{len(ledger.study_kept - archived - waiting)} lost"


def _spool_filed(site: Site, timeout: float = 60) -> None:
    """The restarted receiver files what a killed one left in DATA/spool/dicom (its part of start-up
    recovery); wait for it, so verify does not meet those files between their rename and commit."""
    deadline = time.monotonic() + timeout
    while list((site.data / "spool" / "dicom").rglob("*.dcm")):
        assert time.monotonic() < deadline, "the spool of the killed receiver was not filed"
        time.sleep(0.2)


def _check_verify(site: Site, md5: bool) -> None:
    _spool_filed(site)
    out = site.verify(*(() if md5 else ("--no-md5",)))
    assert out.returncode == 0, f"xnatd verify after restart:\n{out.stdout}\n{out.stderr}\nlog: {site.log}"
    assert not [
        p
        for p in (site.data / "tmp").iterdir()
        if not p.name.startswith(".") and not (p / "owner.lock").exists()
    ]


def _check_cstores(site: Site, ledger: Ledger) -> None:
    """Every acknowledged object filed (the spool of a killed receiver is filed by the next one)."""
    deadline = time.monotonic() + 60
    with site.client() as http:
        while True:
            got: dict[str, str] = {}
            for session in _rows(http.get(f"/data/prearchive/projects/{CST}", params={"format": "json"})):
                for scan in _rows(http.get(f"/data{session['url']}/scans", params={"format": "json"})):
                    url = f"/data{session['url']}/scans/{scan['ID']}/resources/DICOM/files"
                    for f in _rows(http.get(url, params={"format": "json"})):
                        body = http.get(f["URI"]).content
                        assert hashlib.md5(body).hexdigest() == f["digest"]
                        ds = pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True)
                        got[str(ds.SOPInstanceUID)] = _dataset_md5(body)
            missing = set(ledger.stored) - set(got)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert not missing, f"{len(missing)} acknowledged C-STORE objects not filed"
    for uid, digest in ledger.stored.items():
        assert got[uid] == digest, f"C-STORE object {uid} differs from what was sent"


def _check_repair_keeps_files(site: Site, ledger: Ledger) -> None:
    """With the server stopped (nothing in flight), ``xnatd verify --repair --stale-after 0`` takes
    every temporary for a dead one: the files named like them are users' files, and stay."""
    site.stop()
    out = site.verify("--repair", "--stale-after", "0")
    assert out.returncode == 0, f"xnatd verify --repair:\n{out.stdout}\n{out.stderr}"
    folder = site.data / "archive" / UPL / "resources" / "CL"
    for path, digest in ledger.clash_files.items():
        assert hashlib.md5((folder / path).read_bytes()).hexdigest() == digest, f"{path} lost by the repair"


def _recoveries(log: str) -> Counter[str]:
    """What the restarts' own recovery did, by kind and action (the server logs each as a warning)."""
    found: Counter[str] = Counter()
    for line in log.splitlines():
        if "start-up recovery:" in line:
            kind = line.split("start-up recovery:", 1)[1].split()[0]
            action = " ".join(line.rsplit("->", 1)[-1].split()[:2])
            found[f"{kind} {action}"] += 1
    return found


def _round(site: Site, ledger: Ledger, rnd: random.Random, n: int, studies: dict[str, Studies]) -> int:
    stop, errors = threading.Event(), list[BaseException]()
    work: list[Callable[[], None]] = [
        lambda: _uploads(site, ledger, random.Random(rnd.random()), f"r{n}a", stop),
        lambda: _uploads(site, ledger, random.Random(rnd.random()), f"r{n}b", stop),
        lambda: _clashes(site, ledger, random.Random(rnd.random()), f"r{n}c", stop),
        lambda: _imports(site, ledger, studies[IMP], IMP, stop),
        lambda: _imports(site, ledger, studies[PRE], PRE, stop),
        lambda: _cstores(site, ledger, studies[CST], stop),
        lambda: _study_at_once(site, ledger, studies[STU], stop),
    ]
    threads = [threading.Thread(target=_guard(w, errors), daemon=True) for w in work]
    for t in threads:
        t.start()
    time.sleep(rnd.uniform(0.4, 1.8))
    killed = site.kill_tree()
    for t in threads:
        t.join(timeout=60)
    assert not errors, f"round {n}: {errors!r}"
    return killed


# Its wall time grows with the machine's load (20 kills, each a restart and recovery): its own bound.
@pytest.mark.timeout(3600)
def test_acknowledged_work_survives_sigkill_of_the_whole_tree(tmp_path: Path) -> None:
    seed = int(os.environ.get("XNATD_CRASH_SEED", str(random.SystemRandom().randrange(1 << 32))))
    print(f"crash harness seed: {seed} (XNATD_CRASH_SEED={seed} replays it)")
    rnd = random.Random(seed)
    started = time.monotonic()
    receivers = '[{"aeTitle": "CRASH", "project": "' + CST + '", "port": {dicom_port}}]'
    site = Site(
        tmp_path / "data",
        env={
            "XNATD_DICOM_RECEIVERS": receivers,
            "XNATD_PREARCHIVE_IDLE_BUILD": "2",
            "XNATD_DICOM_PROCESSES": "1",
        },
    )
    studies = {p: Studies(tmp_path / "studies" / p, ROUNDS) for p in (IMP, PRE, CST)}
    studies[STU] = Studies(tmp_path / "studies" / STU, 2 * ROUNDS, GE)
    ledger = Ledger()
    kills = processes = 0
    pool = concurrent.futures.ThreadPoolExecutor(1)
    site.start()
    try:
        with site.client() as http:
            for p in (UPL, IMP, PRE, CST, STU):
                assert http.put(f"/data/projects/{p}").status_code in (200, 201)
        print(f"set-up {time.monotonic() - started:.1f} s")
        for n in range(ROUNDS):
            before = set(ledger.uploads)
            t0 = time.monotonic()
            processes += _round(site, ledger, rnd, n, studies)
            kills += 1
            t1 = time.monotonic()
            site.start()
            t2 = time.monotonic()
            verifying = pool.submit(_check_verify, site, False)
            with site.client() as http:  # the REST checks meanwhile: both only read
                _check_uploads(http, ledger, set(ledger.tried_uploads) - before)
                _check_clashes(http, ledger)
                _check_sessions(http, ledger)
                _check_one_study(http, ledger)
            verifying.result()
            t3 = time.monotonic()
            print(
                f"round {n}: work {t1 - t0:.1f} s, restart {t2 - t1:.1f} s, checks and verify {t3 - t2:.1f} s"
            )
        _check_cstores(site, ledger)
        with site.client() as http:
            _check_one_study(http, ledger, wait=True)
        _check_verify(site, md5=True)
        _check_repair_keeps_files(site, ledger)
    finally:
        pool.shutdown()
        site.stop()
    elapsed = time.monotonic() - started
    print("start-up recovery:", dict(_recoveries(site.log.read_text(errors="replace"))))
    print(
        f"crash harness: seed {seed}, {kills} kills ({processes} processes), "
        f"{len(ledger.uploads)} acknowledged uploads ({ledger.reads} read back), "
        f"{len(ledger.clash_files)} acknowledged clash-workload files, "
        f"{len(ledger.sessions)} acknowledged sessions, "
        f"{len(ledger.stored)} acknowledged C-STOREs, {len(ledger.study_kept)} files of one-study imports "
        f"({len(ledger.study_archived)} answered archived), {elapsed:.0f} s"
    )
    assert kills == ROUNDS and ledger.uploads and ledger.sessions and ledger.stored and ledger.study_kept


# --- an overwrite or a deletion killed between its renames and its commit ---------------------------

HOLD = Path(__file__).resolve().parents[1] / "support" / "crash_window"  # sitecustomize: holds a write


def _held(
    site: Site, mark: Path, request: Callable[[httpx.Client], httpx.Response], aside: bool = True
) -> None:
    """Send ``request``, wait until the server holds it at its point (the marker file), SIGKILL the
    whole tree there and start the server again on the same data folder. ``aside``: the request
    moves an old copy aside (a move only renames)."""
    mark.unlink(missing_ok=True)

    def send() -> None:
        with site.client() as http, contextlib.suppress(httpx.TransportError):
            request(http)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert time.monotonic() < deadline, f"the server never reached the held point:\n{site.log}"
        time.sleep(0.05)
    backups = list((site.data / "tmp").glob("*/backup-*")) + list((site.data / "tmp").glob("*/aside-*"))
    assert backups or not aside, (
        "the old copy (a deleted folder too) waits in the process's folder, not deleted"
    )
    site.kill_tree()
    sender.join(timeout=60)
    site.start()


def test_an_overwrite_or_deletion_killed_before_its_commit_is_undone(tmp_path: Path) -> None:
    """Placement moves the old copy of a replaced or deleted file aside and journals it first; the
    next start puts it back if the commit never happened, and drops it if it did."""
    mark = tmp_path / "held"
    site = Site(
        tmp_path / "data",
        env={"PYTHONPATH": str(HOLD), "XNATD_TEST_HOLD_MARK": str(mark), "XNATD_DICOM_PROCESSES": "1"},
    )
    files = "/data/projects/CRW/resources/R/files"
    rnd = random.Random(1)
    old = {n: rnd.randbytes(50_000) for n in ("hold-put.bin", "hold-remove.bin", "hold-commit.bin")}
    new = {n: rnd.randbytes(50_000) for n in old}  # same sizes: only the MD5 tells them apart
    site.start()
    try:
        with site.client() as http:
            assert http.put("/data/projects/CRW").status_code in (200, 201)
            for name, body in old.items():
                r = http.put(f"{files}/{name}", content=body, params={"inbody": "true"})
                assert r.status_code in (200, 201), r.text

        def overwrite(name: str) -> Callable[[httpx.Client], httpx.Response]:
            params = {"inbody": "true", "overwrite": "true"}
            return lambda http: http.put(f"{files}/{name}", content=new[name], params=params)

        _held(site, mark, overwrite("hold-put.bin"))  # killed before the commit: the old copy is back
        _held(site, mark, lambda http: http.delete(f"{files}/hold-remove.bin"))  # likewise: not deleted
        _held(site, mark, overwrite("hold-commit.bin"))  # killed after the commit: the new copy stays
        doomed = "/data/projects/CRW/resources/hold-removeR"
        with site.client() as http:
            r = http.put(
                f"{doomed}/files/sub/kept.bin", content=old["hold-put.bin"], params={"inbody": "true"}
            )
            assert r.status_code == 200, r.text
        # a resource deletion killed before its commit: the resource and its files are still there
        _held(site, mark, lambda http: http.delete(doomed, params={"removeFiles": "true"}))
        with site.client() as http:  # a prearchive session, then moved to another project
            assert http.put("/data/projects/HOLDMV1").status_code in (200, 201)
            r = http.post(
                "/data/services/import",
                params={"dest": "/prearchive/projects/CRW"},
                content=_zip(copy_study(CT[:2], tmp_path / "mv", "HOLDMV")),
            )
            assert r.status_code == 200, r.text
            session = r.text.strip().splitlines()[0]
        move = {"src": session, "newProject": "HOLDMV1"}
        _held(site, mark, lambda http: http.post("/data/services/prearchive/move", params=move), aside=False)
        expected = {"hold-put.bin": old, "hold-remove.bin": old, "hold-commit.bin": new}
        with site.client() as http:
            listed = {f["Name"]: f["digest"] for f in _rows(http.get(files, params={"format": "json"}))}
            for name, bodies in expected.items():
                want = hashlib.md5(bodies[name]).hexdigest()
                assert listed.get(name) == want, f"{name}: listed {listed.get(name)}"
                assert hashlib.md5(http.get(f"{files}/{name}").content).hexdigest() == want, name
            kept = http.get(f"{doomed}/files/sub/kept.bin")
            assert kept.status_code == 200 and kept.content == old["hold-put.bin"], kept.status_code
            # the move never committed: the session is still in CRW, whole
            scans = _rows(http.get(f"{session}/scans", params={"format": "json"}))
            count = 0
            for scan in scans:
                url = f"{session}/scans/{scan['ID']}/resources/DICOM/files"
                for f in _rows(http.get(url, params={"format": "json"})):
                    assert hashlib.md5(http.get(f["URI"]).content).hexdigest() == f["digest"]
                    count += 1
            assert count == 2, count
        out = site.verify()  # its own process, MD5s included, no lowered threshold
        assert out.returncode == 0, f"xnatd verify:\n{out.stdout}\n{out.stderr}"
        assert not list((site.data / "tmp").rglob("backup-*"))
        kept = [p.read_bytes() for p in (site.data / "quarantine").rglob("hold-put.bin")]
        assert kept == [new["hold-put.bin"]], "the uncommitted new copy is quarantined, not deleted"
    finally:
        site.stop()
    recovered = _recoveries(site.log.read_text(errors="replace"))
    assert recovered["md5 old copy"] == 1 and recovered["missing put back"] == 2, recovered
