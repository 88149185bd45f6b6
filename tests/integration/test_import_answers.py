"""The answer contract of an import (docs/reliability.md, "The answer contract of an import"): a 2xx
means every file of the request is stored durably and, where the request asked for the archive, is
there (``dest=/archive``) or will be once the sender goes quiet (``Direct-Archive=true``); a 400 (409
from the SI importer) after the upload means the archive refused the session and the files wait in
the prearchive as CONFLICT; nothing answered
2xx is ever dropped, however many clients send parts of one study at once, through whichever door.

Runs on SQLite and, with ``XNATD_TEST_BACKEND=postgresql``, on a real PostgreSQL server.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.live_server import ADMIN, XNATD, LiveServer, live_server

pytestmark = pytest.mark.slow
GE = TESTDATA / "dcm_qa_nih" / "20180918GE"
PER_SERIES = 12  # files of each of the four GE series
DICOM = {"Content-Type": "application/dicom"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("answers") / "data"
    with live_server(data, env={"XNATD_PREARCHIVE_IDLE_BUILD": "2"}) as srv:
        yield srv


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def project(http: httpx.Client) -> str:
    pid = f"A{uuid.uuid4().hex[:8]}"
    assert http.put(f"/data/projects/{pid}").status_code == 200
    return pid


def _study(out: Path, tag: str) -> list[Path]:
    """A fresh copy of four GE series (new UIDs, so every file's MD5 is its own)."""
    return copy_study([f for d in sorted(GE.glob("mr_*")) for f in dicom_files(d)[:PER_SERIES]], out, tag)


def _zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for f in files:
            zf.write(f, f"DICOM/{f.name}")
    return buf.getvalue()


def _tar(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for f in files:
            tf.add(f, f"batch/{f.name}")
    return buf.getvalue()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def _archived(http: httpx.Client, project: str, label: str) -> Counter[str]:
    """The MD5 of every file of the experiment's scans, counted."""
    exp = f"/data/projects/{project}/experiments/{label}"
    r = http.get(f"{exp}/scans", params={"format": "json"})
    if r.status_code == 404:
        return Counter()
    found: Counter[str] = Counter()
    for scan in _rows(r):
        url = f"{exp}/scans/{scan['ID']}/resources/DICOM/files"
        found.update(f["digest"] for f in _rows(http.get(url, params={"format": "json"})))
    return found


def _sessions(http: httpx.Client, project: str) -> list[dict[str, str]]:
    return _rows(http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}))


def _prearchived(http: httpx.Client, project: str) -> dict[str, tuple[str, Counter[str]]]:
    """Each prearchive session of the project: its status and the MD5s of its files (for a state
    that no longer changes: the idle builder is done)."""
    out = {}
    for s in _sessions(http, project):
        digests: Counter[str] = Counter()
        for scan in _rows(http.get(f"/data{s['url']}/scans", params={"format": "json"})):
            url = f"/data{s['url']}/scans/{scan['ID']}/resources/DICOM/files"
            digests.update(f["digest"] for f in _rows(http.get(url, params={"format": "json"})))
        out[s["url"]] = (s["status"], digests)
    return out


def _wait_archived(http: httpx.Client, project: str, label: str, want: set[str]) -> Counter[str]:
    """Until every file in ``want`` is archived and no session of the project still receives or is
    being archived (the staging sessions of Direct-Archive imports are archived once their senders
    are quiet)."""
    deadline = time.monotonic() + 120
    while True:
        busy = [s for s in _sessions(http, project) if s["status"] in ("RECEIVING", "ARCHIVING")]
        found = _archived(http, project, label)
        if (want <= set(found) and not busy) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _at_once(tasks: list[Callable[[], object]]) -> list[object]:
    """Run every task at the same moment, each in its own thread (on its own connection)."""
    start = threading.Barrier(len(tasks))

    def run(task: Callable[[], object]) -> object:
        start.wait(timeout=60)
        return task()

    with ThreadPoolExecutor(len(tasks)) as pool:
        return list(pool.map(run, tasks))


def _post(server: LiveServer, body: bytes, ctype: str, params: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=300) as c:
        return c.post("/data/services/import", params=params, content=body, headers={"Content-Type": ctype})


def _one_by_one(server: LiveServer, files: list[Path], params: dict[str, str]) -> list[httpx.Response]:
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=300) as c:
        return [
            c.post("/data/services/import", params=params, content=f.read_bytes(), headers=DICOM)
            for f in files
        ]


def _verify(server: LiveServer) -> None:
    env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin"}
    argv = [str(XNATD), "verify", "--data", str(server.data), "--database", server.database]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, f"xnatd verify:\n{out.stdout}\n{out.stderr}"


# --- Direct-Archive: one staging session per study, archived once the sender is quiet ----------------


def test_direct_archive_tar_batches_sent_at_once_are_all_archived(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """Issue 17 item 2: an uploader sends four tar batches of one study in parallel with
    ``Direct-Archive=true&overwrite=delete`` (each batch holds part of every series). Before, one
    answered 200 and the others 409, their files gone; now every batch lands in one staging session,
    archived once, whole."""
    files = _study(tmp_path / "study", "DTAR")
    params = {"Direct-Archive": "true", "overwrite": "delete", "PROJECT_ID": project, "SUBJECT_ID": "S"}
    params["EXPT_LABEL"] = "DTAR"
    batches = [files[i::4] for i in range(4)]
    answers = _at_once([lambda b=b: _post(server, _tar(b), "application/x-tar", params) for b in batches])
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]  # type: ignore[attr-defined]
    uris = {r.text.strip() for r in answers}  # type: ignore[attr-defined]
    assert len(uris) == 1 and uris.pop().startswith(f"/data/prearchive/projects/{project}/"), uris
    found = _wait_archived(http, project, "DTAR", {_md5(f) for f in files})
    assert found == Counter({_md5(f): 1 for f in files})  # every file, once
    assert _prearchived(http, project) == {}


def test_direct_archive_one_file_per_request_is_archived_once_quiet(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """Issue 17 item 2: ``gradual-DICOM`` with ``Direct-Archive=true``, one file per request from four
    clients at once. Before, the session was archived after every file and the next file got 409
    (599 of 600 lost); now each answer names the staging session, archived when the stream stops."""
    files = _study(tmp_path / "study", "DGRAD")
    params = {"import-handler": "gradual-DICOM", "Direct-Archive": "true", "PROJECT_ID": project}
    params |= {"SUBJECT_ID": "S", "EXPT_LABEL": "DGRAD", "inbody": "true"}
    sent = _at_once([lambda i=i: _one_by_one(server, files[i::4], params) for i in range(4)])
    answers = [r for rs in sent for r in rs]  # type: ignore[attr-defined]
    assert [r.status_code for r in answers] == [200] * len(files), [r.text for r in answers if r.is_error]
    assert all(r.text.strip().startswith(f"/data/prearchive/projects/{project}/") for r in answers)
    found = _wait_archived(http, project, "DGRAD", {_md5(f) for f in files})
    assert found == Counter({_md5(f): 1 for f in files})
    scans = _rows(http.get(f"/data/projects/{project}/experiments/DGRAD/scans", params={"format": "json"}))
    assert sorted(s["ID"] for s in scans) == ["4", "5", "6", "7"]


def test_direct_archive_into_a_taken_label_without_overwrite_is_refused_and_kept(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """``overwrite=none`` (the default) and the label is taken, or ``append`` into another subject's
    session: refused (400, as XNAT's DICOM importers answer a refusal of the archive), and the files
    wait in the prearchive as CONFLICT (never a 200 whose files cannot be archived, never dropped)."""
    files = _study(tmp_path / "study", "DTAKEN")
    labels = {"PROJECT_ID": project, "SUBJECT_ID": "S", "EXPT_LABEL": "DTAKEN"}
    dest = f"/archive/projects/{project}/subjects/S/experiments/DTAKEN"
    assert _post(server, _zip(files[:10]), "application/zip", {"dest": dest}).status_code == 200
    r = _post(server, _zip(files[10:20]), "application/zip", {"Direct-Archive": "true", **labels})
    assert r.status_code == 400 and "already exists" in r.text, r.text
    [(status, digests)] = _prearchived(http, project).values()
    assert status == "CONFLICT" and digests == Counter({_md5(f): 1 for f in files[10:20]})
    # merging is asked, but the label belongs to another subject's session: refused too, and kept
    other = {**labels, "SUBJECT_ID": "OTHER", "overwrite": "append", "Direct-Archive": "true"}
    r = _post(server, _zip(files[20:30]), "application/zip", other)
    assert r.status_code == 400 and "another subject" in r.text, r.text
    kept = list(_prearchived(http, project).values())
    assert ("CONFLICT", Counter({_md5(f): 1 for f in files[20:30]})) in kept, kept
    assert _archived(http, project, "DTAKEN") == Counter({_md5(f): 1 for f in files[:10]})


# --- dest=/archive: each request archives its own files, at once -----------------------------------


def test_dest_archive_zips_sent_at_once_with_append_all_merge(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """Issue 17 item 4: four zips to the same ``dest`` with ``overwrite=append`` at once. Before, the
    answers were 200, 409 and 404 (the 404 after storing); now each merges as it would in turn, and
    each 200 names the experiment that holds its files. (The parts are disjoint: a file the archive
    holds already is refused by ``append``, XNAT's rule, tested in test_import_merges.)"""
    files = _study(tmp_path / "study", "DAPP")
    exp = f"/archive/projects/{project}/subjects/S/experiments/DAPP"
    params = {"dest": exp, "overwrite": "append"}
    parts = [files[i::4] for i in range(4)]
    answers = _at_once([lambda p=p: _post(server, _zip(p), "application/zip", params) for p in parts])
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]  # type: ignore[attr-defined]
    assert {r.text.strip() for r in answers} == {f"/data{exp}"}  # type: ignore[attr-defined]
    assert _archived(http, project, "DAPP") == Counter({_md5(f): 1 for f in files})  # at once
    assert _prearchived(http, project) == {}


def test_zips_into_an_auto_archive_project_at_once_all_merge(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """A sibling of item 4: a zip into a project whose prearchive code is 4 (auto-archive, merge) is
    archived before its answer. Four at once used to share one prearchive session and race to
    archive it (200, 409 and 404, files lost); each now archives its own and they merge."""
    assert http.put(f"/data/projects/{project}/prearchive_code/4").status_code == 200
    files = _study(tmp_path / "study", "AUTO")
    params = {"PROJECT_ID": project, "SUBJECT_ID": "S", "EXPT_LABEL": "AUTO"}
    parts = [files[i::4] for i in range(4)]
    answers = _at_once([lambda p=p: _post(server, _zip(p), "application/zip", params) for p in parts])
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]  # type: ignore[attr-defined]
    exp = f"/data/archive/projects/{project}/subjects/S/experiments/AUTO"
    assert {r.text.strip() for r in answers} == {exp}  # type: ignore[attr-defined]
    assert _archived(http, project, "AUTO") == Counter({_md5(f): 1 for f in files})
    assert _prearchived(http, project) == {}


def test_archiving_several_sessions_says_which_were_archived_when_one_fails(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """A sibling of item 4: ``/data/services/archive`` with two ``src``, the second refused. Before,
    the answer was the second's 409 alone, though the first was archived; now it names both."""
    files = _study(tmp_path / "study", "TWO")
    uris = []
    for label, part in (("TWO1", files[:5]), ("TWO2", files[5:10])):
        to = {"dest": f"/prearchive/projects/{project}", "SUBJECT_ID": "S", "EXPT_LABEL": label}
        r = _post(server, _zip(part), "application/zip", to)
        assert r.status_code == 200, r.text
        uris.append(r.text.strip())
    dest = f"/archive/projects/{project}/subjects/S/experiments/TWO2"
    assert _post(server, _zip(files[10:12]), "application/zip", {"dest": dest}).status_code == 200
    r = http.post("/data/services/archive", params=[("src", u.removeprefix("/data")) for u in uris])
    assert r.status_code == 409, r.text
    assert f"archived: /data/archive/projects/{project}/subjects/S/experiments/TWO1" in r.text, r.text
    assert uris[1] in r.text
    assert _archived(http, project, "TWO1") == Counter({_md5(f): 1 for f in files[:5]})
    [(status, digests)] = _prearchived(http, project).values()
    assert status == "CONFLICT" and digests == Counter({_md5(f): 1 for f in files[5:10]})


# --- who may import where: an answer says where the files are ---------------------------------------


def test_a_non_admins_import_routed_to_unassigned_is_200_with_where_it_is(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """Issue 17 item 4: a zip whose headers name no project the sender may import into goes to the
    Unassigned prearchive, as in XNAT 1.8 (an administrator assigns it). Before, a non-admin's
    import was stored there and then answered 404; now the answer is 200 with the session's URI."""
    name = f"up{uuid.uuid4().hex[:6]}"
    body = {"username": name, "password": f"{name}-pw", "email": f"{name}@example.org"}
    assert http.post("/xapi/users", json=body).status_code in (200, 201)
    files = _study(tmp_path / "study", f"UN{uuid.uuid4().hex[:6]}")
    with httpx.Client(base_url=server.url, auth=(name, f"{name}-pw"), timeout=120) as user:
        plain = user.post(
            "/data/services/import", content=_zip(files[:5]), headers={"Content-Type": "application/zip"}
        )
        built = user.post(
            "/data/services/import", params={"dest": "/prearchive"}, content=_zip(files[5:10]),
            headers={"Content-Type": "application/zip"},
        )  # fmt: skip
        for r in (plain, built):
            assert r.status_code == 200, r.text
            assert r.text.strip().startswith("/data/prearchive/projects/Unassigned/"), r.text
            assert user.get(r.text.strip()).status_code == 404  # Unassigned sessions are for admins
    stored: Counter[str] = Counter()
    for uri in {plain.text.strip(), built.text.strip()}:
        for scan in _rows(http.get(f"{uri}/scans", params={"format": "json"})):
            url = f"{uri}/scans/{scan['ID']}/resources/DICOM/files"
            stored.update(f["digest"] for f in _rows(http.get(url, params={"format": "json"})))
    assert stored == Counter({_md5(f): 1 for f in files[:10]})
    for uri in {plain.text.strip(), built.text.strip()}:  # tidy: the other tests' verify stays clean
        assert http.delete(uri).status_code == 200


# --- every door at once -------------------------------------------------------------------------------


def test_every_import_mode_at_once_into_one_session(
    server: LiveServer, http: httpx.Client, project: str, tmp_path: Path
) -> None:
    """Nine clients send parts of one study at the same moment, each through another door (zip and
    tar to ``dest=/archive``, zip and tar with ``Direct-Archive``, one file per request with
    ``Direct-Archive`` and with ``dest=/archive``, and zips into the prearchive then archived with
    ``/data/services/archive``), all with ``overwrite=append`` into one experiment. Every file of every
    2xx answer ends in the archive with its MD5, once; ``xnatd verify`` is clean. (The parts are
    disjoint: ``append`` refuses an instance the archive holds already, XNAT's rule.)"""
    label = "ALLDOORS"
    files = _study(tmp_path / "study", label)
    labels = {"PROJECT_ID": project, "SUBJECT_ID": "S", "EXPT_LABEL": label, "overwrite": "append"}
    dest = {"dest": f"/archive/projects/{project}/subjects/S/experiments/{label}", "overwrite": "append"}
    direct = {**labels, "Direct-Archive": "true"}
    n = 9
    parts = [files[i::n] for i in range(n)]
    acknowledged: set[str] = set()
    lock = threading.Lock()

    def ack(r: httpx.Response, part: list[Path]) -> None:
        assert r.status_code == 200, r.text
        with lock:
            acknowledged.update(_md5(f) for f in part)

    def whole(part: list[Path], kind: str, params: dict[str, str]) -> Callable[[], None]:
        body, ctype = (_zip(part), "application/zip") if kind == "zip" else (_tar(part), "application/x-tar")
        return lambda: ack(_post(server, body, ctype, params), part)

    def gradual(part: list[Path], params: dict[str, str]) -> Callable[[], None]:
        def run() -> None:
            for f, r in zip(part, _one_by_one(server, part, {**params, "inbody": "true"}), strict=True):
                ack(r, [f])

        return run

    def via_prearchive(part: list[Path]) -> Callable[[], None]:
        def run() -> None:
            r = _post(
                server, _zip(part), "application/zip", {**labels, "dest": f"/prearchive/projects/{project}"}
            )
            ack(r, part)
            with httpx.Client(base_url=server.url, auth=ADMIN, timeout=300) as c:
                done = c.post("/data/services/archive", params={"src": r.text.strip(), "overwrite": "append"})
            # 403 or 404: another client is archiving (or has archived) the session, files and all
            assert done.status_code in (200, 403, 404), done.text

        return run

    tasks = [
        whole(parts[0], "zip", dest),
        whole(parts[1], "tar", dest),
        whole(parts[2], "zip", direct),
        whole(parts[3], "tar", direct),
        gradual(parts[4], direct),
        gradual(parts[5], direct),
        gradual(parts[6], dest),
        via_prearchive(parts[7]),
        via_prearchive(parts[8]),
    ]
    _at_once(tasks)  # type: ignore[arg-type]
    assert acknowledged == {_md5(f) for f in files}
    found = _wait_archived(http, project, label, acknowledged)
    assert found == Counter(dict.fromkeys(acknowledged, 1)), found - Counter(acknowledged)
    assert _prearchived(http, project) == {}
    scans = _rows(http.get(f"/data/projects/{project}/experiments/{label}/scans", params={"format": "json"}))
    assert sorted(s["ID"] for s in scans) == ["4", "5", "6", "7"]
    _verify(server)


# --- a session archived or deleted under an import that is filing into it ---------------------------

GATE = Path(__file__).resolve().parents[1] / "support" / "import_gate"  # sitecustomize: holds a commit


def _held_import(
    srv: LiveServer, mark: Path, body: bytes, params: dict[str, str]
) -> Callable[[], httpx.Response]:
    """Post an import the server holds just before its commit (its files placed); returns a function
    that lets it go on and answers its response."""
    mark.unlink(missing_ok=True)
    pool = ThreadPoolExecutor(1)
    answer = pool.submit(_post, srv, body, "application/zip", params)
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert time.monotonic() < deadline and not answer.done(), "the import was never held"
        time.sleep(0.05)

    def release() -> httpx.Response:
        mark.unlink()
        try:
            return answer.result(timeout=120)
        finally:
            pool.shutdown()

    return release


def _held_zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for f in files:
            zf.write(f, f"hold-{f.name}")
    return buf.getvalue()


def test_an_import_whose_session_goes_before_its_commit_files_into_the_next(tmp_path: Path) -> None:
    """An import found the study's prearchive session and placed its files; before its commit the
    session is archived (then, in a second round, deleted) by someone else. Before, the import
    answered 409 and the archive (or deletion) had removed its files with the session's folder; now
    the archive takes only the session's own files, and the import files its own into the study's
    next session and answers 200 with it."""
    mark = tmp_path / "gate"
    env = {"PYTHONPATH": str(GATE), "XNATD_TEST_GATE": str(mark)}
    with live_server(tmp_path / "data", env=env) as srv, srv.client() as http:
        project = f"G{uuid.uuid4().hex[:8]}"
        assert http.put(f"/data/projects/{project}").status_code == 200
        files = _study(tmp_path / "study", "GONE")
        to = {"dest": f"/prearchive/projects/{project}", "SUBJECT_ID": "S", "EXPT_LABEL": "GONE"}
        first = _post(srv, _zip(files[:10]), "application/zip", to)
        assert first.status_code == 200, first.text
        session = first.text.strip()

        release = _held_import(srv, mark, _held_zip(files[10:20]), to)
        archived = http.post("/data/services/archive", params={"src": session})
        assert archived.status_code == 200, archived.text
        second = release()
        assert second.status_code == 200, second.text
        assert second.text.strip() != session  # the study's next session
        assert _archived(http, project, "GONE") == Counter({_md5(f): 1 for f in files[:10]})
        [(status, digests)] = _prearchived(http, project).values()
        assert digests == Counter({_md5(f): 1 for f in files[10:20]}), status

        release = _held_import(srv, mark, _held_zip(files[20:30]), to)
        assert http.delete(second.text.strip()).status_code == 200
        third = release()
        assert third.status_code == 200, third.text
        [(status, digests)] = _prearchived(http, project).values()
        assert digests == Counter({_md5(f): 1 for f in files[20:30]}), status
        _verify(srv)
