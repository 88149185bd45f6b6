"""DICOM import benchmarks: a zip of ≥ 2,000 files vs ``unzip``, and one file per request vs Orthanc.

Inputs are real studies from /work/shared/testdata/dicom copied under new UIDs (so no instance is a
duplicate of another); the server and the baselines write to the same disk, in the same run.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from bench.benchmarks import RSS_LIMIT, Context, log
from bench.results import INFO, Row, Section, fmt_mb
from bench.server import PssSampler, free_port, running_server, stop_process
from bench.xnat import Api, BenchError, check
from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files

STUDIES = [
    "dcm_qa_nih/20180918GE",
    "dcm_qa_nih/20180918Si",
    "studyforrest_func_1block",
    "dcm_qa_ct_philips",
    "dcm_qa_ts",
    "xnat_test_resources/duplicates",
]
ZIP_REPEATS = 3
PER_REQUEST_FILES = 600
FILES_ROUNDS = 3  # section 5: rounds per client count, alternating xnatd and Orthanc; medians


def make_studies(dest: Path, count: int) -> list[Path]:
    """At least ``count`` files: whole real studies, each copy a new study (new UIDs and patient)."""
    files: list[Path] = []
    n = 0
    while len(files) < count:
        for name in STUDIES:
            n += 1
            files += copy_study(dicom_files(TESTDATA / name), dest / f"study{n:03d}", f"BENCH{n:03d}")
            if len(files) >= count:
                break
    return files


def _zip(files: list[Path], out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for f in files:
            zf.write(f, f"{f.parent.name}/{f.name}")


def _written(pid: int) -> int:
    """Bytes the server process (and children) handed to write() so far."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(p.io_counters().write_chars for p in procs)


def _dicom_files_in(folder: Path) -> int:
    """Files the import filed, leaving out what archiving adds (scan thumbnails in SNAPSHOTS)."""
    return sum(1 for p in folder.rglob("*") if p.is_file() and "SNAPSHOTS" not in p.parts)


def _post_file(client: httpx.Client, path: Path, params: dict[str, str], ctype: str) -> float:
    size = path.stat().st_size

    def body() -> object:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                yield block

    headers = {"Content-Type": ctype, "Content-Length": str(size)}
    t0 = time.perf_counter()
    r = client.post("/data/services/import", params=params, content=body(), headers=headers)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - t0
    check(r, (200,))
    return elapsed


def bench_import_zip(ctx: Context) -> Section:
    n = ctx.config.dicom_files
    sec = Section(
        "import_zip",
        f"4. Zip import of {n:,}+ DICOM files",
        "Whole real studies from /work/shared/testdata/dicom, copied under new UIDs until there are at "
        f"least {n:,} files, zipped (stored). Measured: "
        "`POST /data/services/import?dest=/archive/projects/P` "
        "with the zip as a streamed raw body, from the first byte sent to the answer (the files are then "
        "archived, indexed and durable: one filesystem sync before the commit). Baseline: `unzip -q` of the "
        f"same zip onto the same disk (no fsync); for information also `unzip` followed by `sync -f` of its "
        f"output, the durability xnatd's answer stands for. {ZIP_REPEATS} runs each, alternating, median; "
        "each import goes to a new project.",
    )
    src = ctx.src / "import"
    files = make_studies(src / "studies", n)
    payload = sum(f.stat().st_size for f in files)
    archive = src / "import.zip"
    _zip(files, archive)
    zipped = fmt_mb(archive.stat().st_size)
    sec.notes.append(f"{len(files):,} files in {len(STUDIES)}-study rounds, {fmt_mb(payload)}; zip {zipped}.")
    api = ctx.api
    t_server: list[float] = []
    t_unzip: list[float] = []
    t_durable: list[float] = []  # unzip, then its files flushed (`sync -f`): what xnatd's answer means
    rss = pss = 0
    written = 0
    ctx.scratch.mkdir(parents=True, exist_ok=True)
    for i in range(ZIP_REPEATS):
        out = ctx.scratch / f"unzip{i}"
        t0 = time.perf_counter()
        subprocess.run(["unzip", "-q", str(archive), "-d", str(out)], check=True)
        t_unzip.append(time.perf_counter() - t0)
        subprocess.run(["sync", "-f", str(out)], check=True)
        t_durable.append(time.perf_counter() - t0)
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(["sync"], check=True)  # the deletion's writeback is not charged to the import
        project = f"BENCHIMP{i}"
        api.put(f"/data/projects/{project}")
        before = _written(ctx.server.pid)
        shared = PssSampler(ctx.server.pid, interval=0.05)
        try:
            dest = {"dest": f"/archive/projects/{project}"}
            with ctx.sampler.phase(f"zip import {i + 1}") as ph:
                t_server.append(_post_file(api.client, archive, dest, "application/zip"))
        finally:
            pss = max(pss, shared.stop())
        rss = max(rss, ctx.sampler.max_in(ph))
        written = _written(ctx.server.pid) - before
        stored = _dicom_files_in(ctx.server.data / "archive" / project)
        if stored != len(files):
            raise BenchError(f"import {i}: {stored} files in the archive, expected {len(files)}")
        times = f"unzip {t_unzip[-1]:.2f} s, with sync {t_durable[-1]:.2f} s"
        log(f"zip import {i + 1}/{ZIP_REPEATS}: {t_server[-1]:.2f} s ({times})")
    ts, tu = statistics.median(t_server), statistics.median(t_unzip)
    rate = f"{len(files) / ts:,.0f} files/s, {payload / ts / 2**20:,.1f} MB/s ({ts:.2f} s)"
    base = f"`unzip`: {len(files) / tu:,.0f} files/s ({tu:.2f} s)"
    sec.add(
        Row(
            "Zip import to the archive (median)",
            rate,
            base,
            tu / ts,
            "≥ 0.5x",
            Row.verdict_of(tu / ts >= 0.5),
        )
    )
    td = statistics.median(t_durable)
    sec.add(
        Row(
            "Zip import vs `unzip` then `sync -f` (files on disk, as when xnatd answers)",
            f"{ts:.2f} s",
            f"{len(files) / td:,.0f} files/s ({td:.2f} s)",
            td / ts,
            "—",
            INFO,
        )
    )
    sec.add(
        Row(
            "Server peak memory during the imports (server process and its zip-import helpers)",
            f"PSS {fmt_mb(pss)} peak; RSS summed over the processes {fmt_mb(rss)} peak",
            "—",
            None,
            "< 200 MB (PSS)",
            Row.verdict_of(0 < pss < RSS_LIMIT),
        )
    )
    ratio = written / (archive.stat().st_size + payload)
    sec.add(
        Row(
            "Bytes the server wrote / (zip + files) in a direct-to-archive import",
            f"{ratio:.2f}x ({fmt_mb(written)})",
            "staged zip once + each file once = 1.00x",
            None,
            "≤ 1.1x (no prearchive copy)",
            Row.verdict_of(ratio <= 1.1),
        )
    )
    ctx.import_files = files  # type: ignore[attr-defined]
    return sec


# --------------------------------------------------------------------------------------------------------
# one file per request, xnatd vs Orthanc


def _orthanc(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("Orthanc")
    if exe is None:
        raise BenchError("Orthanc is not installed (make bench installs the Debian package `orthanc`)")
    store = work / "db"
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = {"Name": "bench", "StorageDirectory": str(store), "IndexDirectory": str(store), "HttpPort": port,
            "DicomPort": free_port(), "RemoteAccessAllowed": False}  # fmt: skip
    (work / "orthanc.json").write_text(json.dumps(conf))
    log_file = (work / "orthanc.log").open("wb")
    proc = subprocess.Popen([exe, str(work / "orthanc.json")], stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/system", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_process(proc)
    raise BenchError(f"Orthanc did not start: {(work / 'orthanc.log').read_text()[-2000:]}")


def _send_all(
    files: list[Path],
    clients: int,
    make: Callable[[], httpx.Client],
    send: Callable[[httpx.Client, Path], None],
) -> float:
    chunks = [files[i::clients] for i in range(clients)]

    def run(chunk: list[Path]) -> None:
        with make() as c:
            for f in chunk:
                send(c, f)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, chunks))
    return time.perf_counter() - t0


def _xnatd_round(api: Api, files: list[Path], clients: int, project: str) -> float:
    api.put(f"/data/projects/{project}")
    params = {"inbody": "true", "PROJECT_ID": project}

    def send(c: httpx.Client, f: Path) -> None:
        check(c.post("/data/services/import", params=params, content=f.read_bytes(),
                     headers={"Content-Type": "application/dicom"}), (200,))  # fmt: skip

    def make() -> httpx.Client:
        return Api(api.url, auth=None, session=api.session).client if api.session else Api(api.url).client

    return _send_all(files, clients, make, send)


WORKERS = 2  # the second configuration measured: one HTTP process per core of the bench machine


def _two_worker_rounds(ctx: Context, files: list[Path]) -> dict[int, float]:
    """The same rounds against a second server started with ``--workers 2`` (its own data folder)."""
    data, server_log = ctx.work / f"data-workers{WORKERS}", ctx.work / f"xnatd-workers{WORKERS}.log"
    with running_server(data, server_log, ctx.config.xnatd, ("--workers", str(WORKERS))) as server:
        api = Api(server.url)
        try:
            api.login()
            return {n: _xnatd_round(api, files, n, f"BENCHW{WORKERS}C{n}") for n in (1, 4)}
        finally:
            api.close()


def _orthanc_round(work: Path, files: list[Path], clients: int) -> float:
    proc, url = _orthanc(work)
    try:

        def send(c: httpx.Client, f: Path) -> None:
            r = c.post("/instances", content=f.read_bytes(), headers={"Content-Type": "application/dicom"})
            if r.status_code != 200:
                raise BenchError(f"Orthanc POST /instances: {r.status_code} {r.text[:200]}")

        return _send_all(files, clients, lambda: httpx.Client(base_url=url, timeout=120), send)
    finally:
        stop_process(proc)


def bench_import_files(ctx: Context) -> Section:
    files = getattr(ctx, "import_files", None) or make_studies(
        ctx.src / "import" / "studies", PER_REQUEST_FILES
    )
    files = files[:PER_REQUEST_FILES]
    payload = sum(f.stat().st_size for f in files)
    sec = Section(
        "import_files",
        "5. One DICOM file per request, 1 and 4 clients",
        f"{len(files):,} files ({fmt_mb(payload)}) of the copied studies, each sent with "
        "`POST /data/services/import?inbody=true&PROJECT_ID=P` and `Content-Type: application/dicom` (seed "
        "000's way), by 1 and then 4 concurrent clients (httpx, keep-alive, session cookie), into a new "
        "project each time. Baseline: Orthanc's `POST /instances` (Debian package, its own config with "
        "default settings but for loopback ports and a fresh storage folder on the same disk), same files, "
        f"same client counts, run right after; {FILES_ROUNDS} rounds each, alternating, median. Time from "
        "the first request to the last answer. Then, for information, one round against a second xnatd "
        f"started with `--workers {WORKERS}` (one HTTP process per core), compared with the same Orthanc "
        "medians.",
    )
    orthanc: dict[int, float] = {}
    for clients in (1, 4):
        t_x, t_o = [], []
        for i in range(FILES_ROUNDS):  # alternating, so a noisy moment hits both
            t_x.append(_xnatd_round(ctx.api, files, clients, f"BENCHONE{clients}R{i}"))
            t_o.append(_orthanc_round(ctx.scratch / f"orthanc{clients}", files, clients))
            shutil.rmtree(ctx.scratch / f"orthanc{clients}", ignore_errors=True)
            log(f"{clients} client(s), round {i + 1}: xnatd {t_x[-1]:.2f} s, Orthanc {t_o[-1]:.2f} s")
        orthanc[clients] = statistics.median(t_o)
        label = f"{clients} client{'s' if clients > 1 else ''} (median of {FILES_ROUNDS})"
        sec.add(_files_row(label, len(files), statistics.median(t_x), orthanc[clients]))
    for clients, t_x_w in _two_worker_rounds(ctx, files).items():
        log(f"{clients} client(s), --workers {WORKERS}: xnatd {t_x_w:.2f} s")
        label = f"{clients} client{'s' if clients > 1 else ''}, `xnatd serve --workers {WORKERS}` (one round)"
        sec.add(_files_row(label, len(files), t_x_w, orthanc[clients], target=False))
    sec.notes.append(
        f"Orthanc {_orthanc_version()}; sessions stay in the prearchive (RECEIVING), as after a DICOM send."
    )
    return sec


def _files_row(label: str, count: int, t_x: float, t_o: float, target: bool = True) -> Row:
    value = f"{count / t_x:,.0f} files/s ({t_x:.2f} s)"
    base = f"Orthanc: {count / t_o:,.0f} files/s ({t_o:.2f} s)"
    if not target:  # another configuration, for information: the target is the default server's
        return Row(label, value, base, t_o / t_x, "—", INFO)
    return Row(label, value, base, t_o / t_x, "≥ 1.0x", Row.verdict_of(t_o >= t_x))


def _orthanc_version() -> str:
    try:
        out = subprocess.run(["Orthanc", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else "?"
    except OSError:
        return "?"
