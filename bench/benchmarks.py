"""The three benchmarks of the issue. Each fills a Section; a failure is recorded there, never hidden."""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import data
from bench.results import FAIL, INFO, PASS, Row, Section, fmt_mb, fmt_ms, fmt_rate, mb
from bench.server import ADMIN, DEFAULT_XNATD, RssSampler, Server, cpu_seconds
from bench.xnat import Api, BenchError

RSS_LIMIT = 200 * 1024 * 1024
PROJECT, SUBJECT, SESSION, RESOURCE = "BENCH", "BENCH_S1", "BENCH_E1", "R"
LIST_PROJECT = "BENCHLIST"
EXP = f"/data/projects/{PROJECT}/subjects/{SUBJECT}/experiments/{SESSION}"


@dataclass
class Config:
    big_bytes: int
    dicom_files: int
    experiments: int
    threads: int = 8
    listing_requests: int = 200
    page_size: int = 50
    zip_repeats: int = 5
    seed: int = 20240601
    curl: bool = True
    xnatd: Path = DEFAULT_XNATD  # the server executable (benchmarks that start a server of their own)


@dataclass
class Context:
    server: Server
    sampler: RssSampler
    api: Api
    work: Path
    config: Config
    big: Path | None = None
    big_md5: str = ""
    dicoms: list[Path] = field(default_factory=list)
    dicom_zip: Path | None = None
    latencies: list[float] = field(default_factory=list)
    basic_latencies: list[float] = field(default_factory=list)
    throughput: list[tuple[str, float, float]] = field(default_factory=list)  # (label, server MB/s, baseline)

    @property
    def src(self) -> Path:
        return self.work / "src"

    @property
    def scratch(self) -> Path:
        return self.work / "baseline"

    @property
    def downloads(self) -> Path:
        return self.work / "downloads"

    def worker_api(self) -> Api:
        """A further client with the same credentials (the session cookie if we have one)."""
        if self.api.session:
            return Api(self.server.url, auth=None, session=self.api.session)
        return Api(self.server.url)


def size_label(n: int) -> str:
    return f"{n / 1024**3:g} GB" if n >= 1024**3 else f"{n / 1024**2:g} MB"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ensure_session(api: Api) -> None:
    api.put(f"/data/projects/{PROJECT}")
    api.put(f"/data/projects/{PROJECT}/subjects/{SUBJECT}")
    api.put(EXP, {"xsiType": "xnat:mrSessionData"})


def file_rows(api: Api, path: str) -> list[dict[str, object]]:
    return api.result_rows(path)


# --------------------------------------------------------------------------------------------------------
# 1. upload of a big file


def bench_upload(ctx: Context) -> Section:
    cfg = ctx.config
    size = cfg.big_bytes
    sec = Section(
        "upload",
        f"1. Upload of a {size_label(size)} file",
        f"`PUT {EXP}/resources/{RESOURCE}/files/big.bin?inbody=true` with the file as a raw body streamed by "
        "httpx (a generator of 1 MiB blocks, Content-Length set), compared with `cp` of the same file to a "
        "folder on the same filesystem as the server's data folder. The source file is evicted from the page "
        "cache (fsync + `POSIX_FADV_DONTNEED`) before every copy and upload; `cp` runs before the upload, "
        "after it, and after the `curl` upload; the baseline is the median of the three.",
    )
    ctx.src.mkdir(parents=True, exist_ok=True)
    ctx.scratch.mkdir(parents=True, exist_ok=True)
    big = ctx.src / "big.bin"
    log(f"writing a {size_label(size)} source file")
    t0 = time.perf_counter()
    ctx.big_md5 = data.make_big_file(big, size)
    ctx.big = big
    sec.notes.append(
        f"Source file written and fsynced in {time.perf_counter() - t0:.1f} s; MD5 {ctx.big_md5}."
    )

    api = ctx.api
    ensure_session(api)
    api.put(f"{EXP}/resources/{RESOURCE}")

    log("cp baseline (1/3)")
    data.quiesce()
    cp1 = data.time_cp(big, ctx.scratch / "big.copy")
    data.evict(big)
    data.quiesce()
    log("upload")
    cpu0 = cpu_seconds(ctx.server.pid), cpu_seconds(os.getpid())
    with ctx.sampler.phase("upload 1: PUT big file") as ph:
        up = api.upload_file(f"{EXP}/resources/{RESOURCE}/files/big.bin", big, {"inbody": "true"})
    cpu_server = cpu_seconds(ctx.server.pid) - cpu0[0]
    cpu_client = cpu_seconds(os.getpid()) - cpu0[1]
    max_rss = ctx.sampler.max_in(ph)
    log(f"upload took {up:.2f} s; cp baseline (2/3)")
    data.quiesce()
    cp2 = data.time_cp(big, ctx.scratch / "big.copy")
    curl = Section("curl", "", "")  # its rows go after the target rows
    if ctx.config.curl and shutil.which("curl"):
        _curl_upload(ctx, curl, big, size)
    log("cp baseline (3/3)")
    data.quiesce()
    cp3 = data.time_cp(big, ctx.scratch / "big.copy")
    cps = [cp1, cp2, cp3]

    synced = statistics.median([c.synced_seconds for c in cps])
    plain = statistics.median([c.cp_seconds for c in cps])
    ratio = synced / up
    sec.add(
        Row(
            f"Upload {size_label(size)}, httpx streaming PUT",
            fmt_rate(size, up),
            f"`cp` + fsync of the copy: {fmt_rate(size, synced)}",
            ratio,
            "≥ 0.5x baseline",
            Row.verdict_of(ratio >= 0.5),
        )
    )
    sec.add(
        Row(
            "same upload vs plain `cp` (no fsync)",
            fmt_rate(size, up),
            f"`cp`: {fmt_rate(size, plain)}",
            plain / up,
            "≥ 0.5x (as the issue words it)",
            Row.verdict_of(plain / up >= 0.5),
        )
    )
    runs = "; ".join(
        f"{when} {fmt_rate(size, c.cp_seconds)} (+fsync: {fmt_rate(size, c.synced_seconds)})"
        for when, c in zip(("before the upload", "after it", "after the curl upload"), cps, strict=True)
    )
    sec.notes.append(
        f"`cp` runs: {runs}. The baseline is their median. The server promises durability (it fsyncs "
        "before it answers, DESIGN.md), so the target row compares with `cp` + fsync; the plain-`cp` row "
        "is shown too because the issue says `cp`."
    )
    sec.add(
        Row(
            "Server max RSS during the upload",
            fmt_mb(max_rss),
            f"idle at start: {fmt_mb(ctx.sampler.first())}",
            None,
            "< 200 MB",
            Row.verdict_of(0 < max_rss < RSS_LIMIT),
        )
    )
    sec.notes.append(f"{ctx.sampler.samples_in(ph)} RSS samples (every 50 ms, server process and children).")
    ctx.throughput.append((f"upload {size_label(size)}", mb(size) / up, mb(size) / synced))

    rows = file_rows(api, f"{EXP}/resources/{RESOURCE}/files")
    found = [r for r in rows if r.get("Name") == "big.bin"]
    digest = str(found[0].get("digest", "")) if found else "(no row named big.bin)"
    listed_size = str(found[0].get("Size", "")) if found else ""
    ok = digest == ctx.big_md5 and listed_size == str(size)
    sec.add(
        Row(
            "MD5 (`digest`) and Size in the file listing",
            f"`{digest}`, {listed_size} bytes",
            f"source: `{ctx.big_md5}`, {size} bytes",
            None,
            "equal",
            Row.verdict_of(ok),
        )
    )
    sec.add(
        Row(
            "CPU time during the upload (info)",
            f"server {cpu_server:.1f} s ({mb(size) / max(cpu_server, 1e-9):,.0f} MB per CPU-second), "
            f"client {cpu_client:.1f} s, wall {up:.1f} s",
        )
    )
    sec.rows += curl.rows
    sec.notes += curl.notes
    return sec


def _curl_upload(ctx: Context, sec: Section, big: Path, size: int) -> None:
    """The same upload with `curl -T` (a C client, no Python on the client side), for information."""
    api = ctx.api
    api.put(f"{EXP}/resources/CURL")
    url = f"{ctx.server.url}{EXP}/resources/CURL/files/big.bin?inbody=true"
    auth = ["-b", f"JSESSIONID={api.session}"] if api.session else ["-u", f"{ADMIN[0]}:{ADMIN[1]}"]
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(big)]
    cmd += ["-H", "Content-Type: application/octet-stream", "-H", "Expect:", *auth, url]
    data.evict(big)
    data.quiesce()
    log("upload with curl (info)")
    with ctx.sampler.phase("upload 2: curl -T") as ph:
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
        secs = time.perf_counter() - t0
    if out.returncode != 0 or out.stdout.strip() not in ("200", "201"):
        sec.notes.append(
            f"`curl -T` upload failed: exit {out.returncode}, HTTP {out.stdout!r}, {out.stderr[:300]!r}"
        )
        return
    sec.add(
        Row(
            f"Upload {size_label(size)} with `curl -T` (info)",
            fmt_rate(size, secs),
            "—",
            None,
            "—",
            INFO,
        )
    )
    sec.add(
        Row(
            "Server max RSS during the curl upload",
            fmt_mb(ctx.sampler.max_in(ph)),
            "—",
            None,
            "< 200 MB",
            INFO,
        )
    )


def _curl_download(ctx: Context, sec: Section, path: str, payload: int) -> None:
    """The same zip download with curl (a C client), to show how much of the time is the Python client's."""
    api = ctx.api
    auth = ["-b", f"JSESSIONID={api.session}"] if api.session else ["-u", f"{ADMIN[0]}:{ADMIN[1]}"]
    dest = ctx.downloads / "curl.zip"
    cmd = ["curl", "-sS", "-o", str(dest), "-w", "%{http_code}", *auth, f"{ctx.server.url}{path}"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    secs = time.perf_counter() - t0
    dest.unlink(missing_ok=True)
    if out.returncode != 0 or out.stdout.strip() != "200":
        sec.notes.append(
            f"`curl` zip download failed: exit {out.returncode}, HTTP {out.stdout!r}, {out.stderr[:300]!r}"
        )
        return
    sec.add(Row("Same zip download with `curl` (info, 1 run)", fmt_rate(payload, secs)))


# --------------------------------------------------------------------------------------------------------
# 2. zip download of a scan's DICOM files, and a 2 GB zip


def _zip_check(path: Path, expected: int) -> tuple[int, int, list[str]]:
    """(file entries, total uncompressed bytes, first names) of a downloaded zip."""
    with zipfile.ZipFile(path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
    return len(infos), sum(i.file_size for i in infos), [i.filename for i in infos[:2]]


def bench_zip(ctx: Context) -> Section:
    cfg = ctx.config
    n = cfg.dicom_files
    scan = f"{EXP}/scans/1"
    sec = Section(
        "zip",
        f"2. Zip download of a scan's {n:,} DICOM files",
        f"The {n:,} files are copies of the real DICOM files in shared/testdata/dicom, cycled, "
        f"uploaded with one `PUT {scan}/resources/DICOM/files/upload.zip?extract=true&inbody=true`. Then "
        f"`GET {scan}/resources/DICOM/files?format=zip` is streamed to a file, {cfg.zip_repeats} times, "
        "alternating with the baseline: Python's `zipfile` writing a ZIP_STORED zip of the same files to "
        "the same disk. Neither side fsyncs. Then a zip of about the size of the big file (the big file "
        "plus the DICOM files, in one resource) is downloaded while the server's RSS is sampled.",
    )
    api = ctx.api
    for d in (ctx.src, ctx.scratch, ctx.downloads):
        d.mkdir(parents=True, exist_ok=True)
    ensure_session(api)
    api.put(scan, {"xsiType": "xnat:mrScanData", "type": "T1"})

    sources = data.dicom_sources()
    log(f"copying {n} DICOM files from {len(sources)} sources")
    ctx.dicoms = data.make_dicom_set(ctx.src / "dicom", n, sources)
    payload = sum(p.stat().st_size for p in ctx.dicoms)
    sec.notes.append(
        f"{n:,} files, {fmt_mb(payload)}, cycled from {len(sources)} distinct DICOM files "
        f"(dcm_qa_nih, studyforrest, CT, transfer syntaxes, XNAT test files)."
    )
    upload_zip = ctx.src / "upload.zip"
    data.write_stored_zip(upload_zip, [(p, p.name) for p in ctx.dicoms])
    ctx.dicom_zip = upload_zip

    # upload + extract (information only)
    base_extract = data.time_extract(upload_zip, ctx.scratch / "extract")
    base_durable = data.time_extract(upload_zip, ctx.scratch / "extract", durable=True)
    data.quiesce()
    log("zip upload with extract=true")
    with ctx.sampler.phase("zip upload + extract") as ph:
        up = api.upload_file(
            f"{scan}/resources/DICOM/files/upload.zip", upload_zip, {"extract": "true", "inbody": "true"}
        )
    sec.add(
        Row(
            f"Upload + extract a zip of {n:,} files (info)",
            fmt_rate(payload, up),
            f"`zipfile` extractall: {fmt_rate(payload, base_extract)}",
            base_extract / up,
            "—",
            INFO,
        )
    )
    sec.add(
        Row(
            "same upload + extract vs a durable extract (info)",
            fmt_rate(payload, up),
            f"`zipfile` extract + fsync of every file and folder: {fmt_rate(payload, base_durable)}",
            base_durable / up,
            "—",
            INFO,
        )
    )
    sec.add(
        Row("Server max RSS during upload + extract", fmt_mb(ctx.sampler.max_in(ph)), "—", None, "—", INFO)
    )
    listed = file_rows(api, f"{scan}/resources/DICOM/files")
    sec.add(
        Row(
            "Files listed in the scan's DICOM resource",
            f"{len(listed):,}",
            f"{n:,} in the zip",
            None,
            "equal",
            Row.verdict_of(len(listed) == n),
        )
    )

    # download vs zipfile, alternating
    server_times: list[float] = []
    first_bytes: list[float] = []
    server_cpu: list[float] = []
    base_times: list[float] = []
    zip_bytes = 0
    entries = (0, 0, [""])
    max_rss = 0
    for i in range(cfg.zip_repeats):
        out = ctx.scratch / f"baseline{i}.zip"
        base_times.append(data.write_stored_zip(out, [(p, f"DICOM/files/{p.name}") for p in ctx.dicoms]))
        out.unlink()
        dl = ctx.downloads / f"dicom{i}.zip"
        data.quiesce()
        log(f"zip download {i + 1}/{cfg.zip_repeats}")
        cpu0 = cpu_seconds(ctx.server.pid)
        with ctx.sampler.phase(f"DICOM zip download {i + 1}") as ph:
            got = api.download(f"{scan}/resources/DICOM/files", {"format": "zip"}, dl)
        server_cpu.append(cpu_seconds(ctx.server.pid) - cpu0)
        max_rss = max(max_rss, ctx.sampler.max_in(ph))
        server_times.append(got.seconds)
        first_bytes.append(got.first_byte)
        zip_bytes = got.nbytes
        data.quiesce()
        if i == 0:
            entries = _zip_check(dl, n)
        dl.unlink()
    srv, base = statistics.median(server_times), statistics.median(base_times)
    ratio = base / srv
    sec.add(
        Row(
            f"Zip download of {n:,} DICOM files (median of {cfg.zip_repeats})",
            fmt_rate(payload, srv),
            f"`zipfile` ZIP_STORED: {fmt_rate(payload, base)}",
            ratio,
            "≥ 0.8x baseline",
            Row.verdict_of(ratio >= 0.8),
        )
    )
    ctx.throughput.append((f"zip of {n:,} DICOM", mb(payload) / srv, mb(payload) / base))
    sec.notes.append(
        "Zip download runs: "
        + ", ".join(f"{t:.2f} s" for t in server_times)
        + f"; baseline runs: {', '.join(f'{t:.2f} s' for t in base_times)}. "
        f"Downloaded zip: {fmt_mb(zip_bytes)}; MB/s counts the DICOM payload ({fmt_mb(payload)}) "
        "on both sides."
    )
    sec.add(
        Row(
            "Zip download: time to the first byte; server CPU time per download (info, medians)",
            f"{fmt_ms(statistics.median(first_bytes))}; {statistics.median(server_cpu):.2f} s",
            "—",
            None,
            "—",
            INFO,
        )
    )
    if cfg.curl and shutil.which("curl"):
        _curl_download(ctx, sec, f"{scan}/resources/DICOM/files?format=zip", payload)
    count, unzipped, names = entries
    sec.add(
        Row(
            "Downloaded zip: file entries and bytes",
            f"{count:,} entries, {unzipped:,} bytes",
            f"{n:,} files, {payload:,} bytes",
            None,
            "equal",
            Row.verdict_of(count == n and unzipped == payload),
        )
    )
    sec.notes.append(f"First entry names in the download: {', '.join(f'`{x}`' for x in names)}.")
    rss_ok = Row.verdict_of(0 < max_rss < RSS_LIMIT)
    sec.add(
        Row("Server max RSS during the DICOM zip downloads", fmt_mb(max_rss), "—", None, "< 200 MB", rss_ok)
    )

    if ctx.big is not None and ctx.big_md5:
        _big_zip(ctx, sec)
    else:
        sec.notes.append("The big-zip part was skipped: there is no big file (benchmark 1 failed early).")
    return sec


def _big_zip(ctx: Context, sec: Section) -> None:
    api = ctx.api
    assert ctx.big is not None and ctx.dicom_zip is not None
    res = f"{EXP}/resources/{RESOURCE}"
    names = {r.get("Name") for r in file_rows(api, f"{res}/files")}
    if "big.bin" not in names:
        api.put(res, ok=(200, 201, 409))
        api.upload_file(f"{res}/files/big.bin", ctx.big, {"inbody": "true"})
    log("adding the DICOM files to the big file's resource")
    api.upload_file(f"{res}/files/upload.zip", ctx.dicom_zip, {"extract": "true", "inbody": "true"})
    size = ctx.big.stat().st_size + sum(p.stat().st_size for p in ctx.dicoms)
    out = ctx.scratch / "big-baseline.zip"
    files = [(ctx.big, "R/files/big.bin")] + [(p, f"R/files/{p.name}") for p in ctx.dicoms]
    log("big zip baseline")
    base = data.write_stored_zip(out, files)
    out.unlink()
    dl = ctx.downloads / "big.zip"
    data.quiesce()
    log("big zip download")
    with ctx.sampler.phase("big zip download") as ph:
        got = api.download(f"{res}/files", {"format": "zip"}, dl)
    secs, nbytes = got.seconds, got.nbytes
    max_rss = ctx.sampler.max_in(ph)
    sec.add(
        Row(
            f"Zip download of {fmt_mb(nbytes)} (big file + {len(ctx.dicoms):,} DICOM) (info)",
            fmt_rate(size, secs),
            f"`zipfile` ZIP_STORED: {fmt_rate(size, base)}",
            base / secs,
            "—",
            INFO,
        )
    )
    sec.add(
        Row(
            f"Server max RSS during the {fmt_mb(nbytes)} zip download",
            fmt_mb(max_rss),
            f"idle at start: {fmt_mb(ctx.sampler.first())}",
            None,
            "< 200 MB",
            Row.verdict_of(0 < max_rss < RSS_LIMIT),
        )
    )
    ctx.throughput.append((f"zip of {fmt_mb(nbytes)}", mb(size) / secs, mb(size) / base))
    try:
        name, member_size, md5 = data.zip_member_md5(dl, "big.bin")
        ok = md5 == ctx.big_md5 and member_size == ctx.big.stat().st_size
        value = f"`{name}`: {member_size:,} bytes, MD5 `{md5}`"
    except (KeyError, zipfile.BadZipFile) as e:
        ok, value = False, f"unreadable: {e!r}"
    sec.add(
        Row(
            "Big file inside the downloaded zip",
            value,
            f"MD5 `{ctx.big_md5}`",
            None,
            "equal",
            Row.verdict_of(ok),
        )
    )
    dl.unlink()


# --------------------------------------------------------------------------------------------------------
# 3. listing a project with many experiments


def _parallel(ctx: Context, jobs: list[Callable[[Api], None]], what: str) -> float:
    """Run `jobs` on `threads` threads (one client each); print progress; returns seconds."""
    local = threading.local()
    clients: list[Api] = []
    lock = threading.Lock()
    done = 0
    step = max(1, len(jobs) // 10)

    def run(job: Callable[[Api], None]) -> None:
        nonlocal done
        api = getattr(local, "api", None)
        if api is None:
            api = local.api = ctx.worker_api()
            with lock:
                clients.append(api)
        job(api)
        with lock:
            done += 1
            if done % step == 0 or done == len(jobs):
                log(f"{what}: {done:,}/{len(jobs):,}")

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=ctx.config.threads) as pool:
            for _ in pool.map(run, jobs):
                pass
    finally:
        for c in clients:
            c.close()
    return time.perf_counter() - t0


def _percentile(values: Iterable[float], q: float) -> float:
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def bench_listing(ctx: Context) -> Section:
    cfg = ctx.config
    n, page = cfg.experiments, cfg.page_size
    base = f"/data/projects/{LIST_PROJECT}"
    sec = Section(
        "listing",
        f"3. Listing a project with {n:,} experiments",
        f"{n:,} MR sessions are created in project {LIST_PROJECT} ({max(1, n // 10):,} subjects, 10 sessions "
        f"each) by PUT requests on {cfg.threads} threads. Then {cfg.listing_requests} requests "
        f"`GET {base}/experiments?format=json&offset=K&limit={page}` with random K, one after the other "
        "on one keep-alive connection, timed from request to the last byte of the body. Full listings "
        "(no limit) are timed for information.",
    )
    api = ctx.api
    api.put(base)
    n_sub = max(1, n // 10)
    subjects = [f"S{i:05d}" for i in range(n_sub)]

    def make_subject(label: str) -> Callable[[Api], None]:
        def job(a: Api) -> None:
            a.put(f"{base}/subjects/{label}")

        return job

    def make_exp(i: int) -> Callable[[Api], None]:
        url = f"{base}/subjects/{subjects[i % n_sub]}/experiments/E{i:05d}"

        def job(a: Api) -> None:
            a.put(url, {"xsiType": "xnat:mrSessionData", "date": "2024-01-01"})

        return job

    with ctx.sampler.phase("create subjects + experiments") as ph:
        t_sub = _parallel(ctx, [make_subject(s) for s in subjects], "subjects")
        t_exp = _parallel(ctx, [make_exp(i) for i in range(n)], "experiments")
    sec.add(
        Row(
            f"Create {n_sub:,} subjects ({cfg.threads} threads) (info)",
            f"{n_sub / t_sub:,.0f} req/s ({t_sub:.1f} s)",
        )
    )
    sec.add(
        Row(
            f"Create {n:,} experiments ({cfg.threads} threads) (info)",
            f"{n / t_exp:,.0f} req/s ({t_exp:.1f} s)",
        )
    )
    sec.add(Row("Server max RSS while creating (info)", fmt_mb(ctx.sampler.max_in(ph))))

    rng = random.Random(cfg.seed)
    path = f"{base}/experiments"
    client = api.client
    bad: list[str] = []

    def timed_page(c_get: Callable[[int], tuple[float, int]], k: int) -> float:
        secs, rows = c_get(k)
        if rows != min(page, n - k):
            bad.append(f"offset={k}: {rows} rows, expected {min(page, n - k)}")
        return secs

    def get_page(k: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        r = client.get(path, params={"format": "json", "offset": k, "limit": page})
        secs = time.perf_counter() - t0
        if r.status_code != 200:
            raise BenchError(
                f"paged listing: {r.request.method} {r.request.url} -> {r.status_code} {r.text[:300]!r}"
            )
        return secs, len(r.json()["ResultSet"]["Result"])

    for _ in range(5):  # warm-up, not counted
        get_page(rng.randrange(0, max(1, n - page + 1)))
    with ctx.sampler.phase("paged listings") as ph:
        ctx.latencies = [
            timed_page(get_page, rng.randrange(0, max(1, n - page + 1))) for _ in range(cfg.listing_requests)
        ]
    lat = ctx.latencies
    p50, p95, p99 = (_percentile(lat, q) for q in (0.5, 0.95, 0.99))
    sec.add(Row(f"Paged listing p50 ({len(lat)} requests, limit={page})", fmt_ms(p50)))
    sec.add(Row("Paged listing p95", fmt_ms(p95), "—", None, "< 100 ms", Row.verdict_of(p95 < 0.1)))
    sec.add(Row("Paged listing p99 / max", f"{fmt_ms(p99)} / {fmt_ms(max(lat))}"))
    sec.add(
        Row(
            "Paged listings return the right number of rows",
            f"{len(lat) + 5 - len(bad)}/{len(lat) + 5}",
            "—",
            None,
            "all",
            Row.verdict_of(not bad),
        )
    )
    if bad:
        sec.notes.append("Wrong row counts: " + "; ".join(bad[:5]))
    sec.add(Row("Server max RSS during paged listings (info)", fmt_mb(ctx.sampler.max_in(ph))))

    # Basic auth on every request, no cookie (pyxnat's worst case): information
    with Api(ctx.server.url) as basic:

        def get_page_basic(k: int) -> tuple[float, int]:
            basic.client.cookies.clear()
            t0 = time.perf_counter()
            r = basic.client.get(path, params={"format": "json", "offset": k, "limit": page})
            secs = time.perf_counter() - t0
            if r.status_code != 200:
                raise BenchError(
                    f"paged listing (Basic): {r.request.url} -> {r.status_code} {r.text[:300]!r}"
                )
            return secs, len(r.json()["ResultSet"]["Result"])

        with ctx.sampler.phase("Basic-auth listings") as ph:
            first = get_page_basic(0)[0]
            ctx.basic_latencies = [
                timed_page(get_page_basic, rng.randrange(0, max(1, n - page + 1))) for _ in range(50)
            ]
    sec.add(
        Row(
            "First request with HTTP Basic (password check), and server max RSS meanwhile (info)",
            f"{fmt_ms(first)}, {fmt_mb(ctx.sampler.max_in(ph))}",
        )
    )
    bl = ctx.basic_latencies
    sec.add(
        Row(
            "Paged listing p50 / p95, HTTP Basic on every request, no cookie (info, 50 requests)",
            f"{fmt_ms(_percentile(bl, 0.5))} / {fmt_ms(_percentile(bl, 0.95))}",
        )
    )
    auth = "the JSESSIONID cookie from `POST /data/JSESSION`" if api.session else "HTTP Basic (no session)"
    sec.notes.append(f"The timed paged requests authenticate with {auth}.")

    # full listing, information
    full: list[float] = []
    size = rows_seen = 0
    with ctx.sampler.phase("full listings") as ph:
        for _ in range(3):
            t0 = time.perf_counter()
            r = client.get(path, params={"format": "json"})
            full.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise BenchError(f"full listing: {r.request.url} -> {r.status_code} {r.text[:300]!r}")
            size, rows_seen = len(r.content), len(r.json()["ResultSet"]["Result"])
    sec.add(
        Row(
            f"Full listing of {n:,} experiments, no limit (info, median of 3)",
            f"{statistics.median(full):.3f} s, {fmt_mb(size)}, {rows_seen:,} rows",
            "—",
            None,
            f"{n:,} rows",
            Row.verdict_of(rows_seen == n),
        )
    )
    sec.add(Row("Server max RSS during full listings (info)", fmt_mb(ctx.sampler.max_in(ph))))
    return sec


__all__ = ["FAIL", "PASS", "Config", "Context"]
