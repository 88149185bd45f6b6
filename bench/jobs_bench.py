"""Job benchmark: dcm2niix on 20 real series through the job system with 1 and 2 local workers, against
dcm2niix called directly on the very same archive folders (same disk, same run).

For each worker count a fresh server (``--job-workers N``) gets one session of 20 scans whose DICOM
resources are real series from shared/testdata/dicom (cycled to make 20). Timed: one
``POST /xapi/jobs`` on the project (20 jobs) until the last job is complete, i.e. queueing, dispatch,
conversion, MD5, the atomic move into the archive and the database commit. Baseline: the same
``dcm2niix`` binary and arguments on the same 20 input folders, one after the other (and 2 at a time
for the 2-worker case), writing to a scratch folder on the same disk. Runs alternate; medians.
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.benchmarks import Context, log
from bench.results import Row, Section
from bench.server import running_server
from bench.xnat import Api, BenchError, check
from tests.support.testdata import DICOM

TESTDATA = DICOM
SERIES = [
    "dcm_qa_nih/20180918GE/mr_0004",
    "dcm_qa_nih/20180918GE/mr_0005",
    "dcm_qa_nih/20180918GE/mr_0006",
    "dcm_qa_nih/20180918GE/mr_0007",
    "dcm_qa_nih/20180918Si/mr_0003",
    "dcm_qa_nih/20180918Si/mr_0004",
    "dcm_qa_nih/20180918Si/mr_0005",
    "dcm_qa_nih/20180918Si/mr_0006",
    "dcm_qa_ct_philips/S21570/S2010",
    "xnat_test_resources/duplicates",
    "studyforrest_func_1block",
]
N_SERIES = 20
REPEATS = 5
PROJECT = "BENCHJOBS"
DCM2NIIX_ARGS = ["-b", "y", "-z", "y", "-f", "%s_%d"]


def _zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if (
                p.is_file()
                and p.suffix not in (".txt", ".md", ".tsv")
                and p.name not in ("LICENSE", "DIRFILE")
            ):
                zf.write(p, p.relative_to(folder).as_posix())
    return buf.getvalue()


def _fill(api: Api) -> list[str]:
    """One session of N_SERIES scans; returns the scans' DICOM folders in the server's archive."""
    exp = f"/data/projects/{PROJECT}/subjects/S1/experiments/E1"
    check(api.client.put(f"/data/projects/{PROJECT}"), (200, 201))
    check(api.client.put(f"/data/projects/{PROJECT}/subjects/S1"), (200, 201))
    check(api.client.put(exp, params={"xsiType": "xnat:mrSessionData"}), (200, 201))
    zips = {name: _zip(TESTDATA / name) for name in SERIES}
    for i in range(N_SERIES):
        name = SERIES[i % len(SERIES)]
        check(api.client.put(f"{exp}/scans/{i + 1}", params={"xsiType": "xnat:mrScanData"}), (200, 201))
        url = f"{exp}/scans/{i + 1}/resources/DICOM/files/s.zip"
        check(
            api.client.put(url, content=zips[name], params={"extract": "true", "inbody": "true"}), (200, 201)
        )
    return [f"archive/{PROJECT}/arc001/E1/SCANS/{i + 1}/DICOM" for i in range(N_SERIES)]


def _run_jobs(api: Api, overwrite: bool) -> float:
    """Queue dcm2niix on the project and wait for the last job; seconds from the POST to that moment."""
    t0 = time.perf_counter()
    body = {"command": "dcm2niix", "target": f"/data/projects/{PROJECT}", "overwrite": overwrite}
    ids = [j["id"] for j in check(api.client.post("/xapi/jobs", json=body), (201,)).json()]
    if len(ids) != N_SERIES:
        raise BenchError(f"{len(ids)} jobs queued, expected {N_SERIES}")
    while True:
        rows = check(api.client.get("/xapi/jobs", params={"project": PROJECT, "limit": "100"})).json()
        mine = [r for r in rows if r["id"] in ids]
        if all(r["status"] in ("complete", "failed", "cancelled") for r in mine):
            elapsed = time.perf_counter() - t0
            bad = [r for r in mine if r["status"] != "complete"]
            if bad:
                raise BenchError(f"{len(bad)} job(s) did not complete: {bad[0]['message']}")
            return elapsed
        time.sleep(0.05)


def _direct(binary: str, inputs: list[Path], scratch: Path, parallel: int) -> float:
    """dcm2niix on the same folders, `parallel` at a time, into fresh scratch folders."""
    shutil.rmtree(scratch, ignore_errors=True)
    outs = [scratch / str(i) for i in range(len(inputs))]
    for o in outs:
        o.mkdir(parents=True)

    def one(i: int) -> None:
        cmd = [binary, *DCM2NIIX_ARGS, "-o", str(outs[i]), str(inputs[i])]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, range(len(inputs))))
    return time.perf_counter() - t0


def _measure(ctx: Context, workers: int, binary: str) -> tuple[float, float, int]:
    """(median job-system seconds, median direct seconds, output files) for one worker count."""
    data = ctx.work / f"jobs{workers}" / "data"
    server_log = ctx.work / f"jobs{workers}" / "xnatd.log"
    data.parent.mkdir(parents=True, exist_ok=True)
    with (
        running_server(data, server_log, extra_args=("--job-workers", str(workers))) as srv,
        Api(srv.url) as api,
    ):
        inputs = [data / rel for rel in _fill(api)]
        t_jobs, t_direct = [], []
        for r in range(_rounds(ctx)):
            t_direct.append(_direct(binary, inputs, ctx.scratch / "dcm2niix", workers))
            t_jobs.append(_run_jobs(api, overwrite=r > 0))
            log(f"{workers} worker(s), run {r + 1}: jobs {t_jobs[-1]:.2f} s, direct {t_direct[-1]:.2f} s")
        files = sum(1 for p in (data / "archive" / PROJECT).rglob("*") if p.is_file() and "NIFTI" in p.parts)
    shutil.rmtree(data.parent, ignore_errors=True)
    return statistics.median(t_jobs), statistics.median(t_direct), files


def _rounds(ctx: Context) -> int:
    """One round in the quick smoke run (recognised by its small DICOM size), else REPEATS."""
    return 1 if ctx.config.dicom_files < 1000 else REPEATS


def bench_jobs(ctx: Context) -> Section:
    import dcm2niix

    sec = Section(
        "jobs",
        f"6. dcm2niix on {N_SERIES} series: 1 and 2 local workers, and the job system's overhead",
        __doc__.split("\n\n", 1)[1].replace("\n", " ") if __doc__ else "",
    )
    one, direct1, files = _measure(ctx, 1, dcm2niix.bin)
    two, direct2, _ = _measure(ctx, 2, dcm2niix.bin)
    sec.notes.append(
        f"{N_SERIES} series cycled from {len(SERIES)} real ones (GE and Siemens EPI, Philips CT, GE SPGR "
        f"with duplicates, a 630-file Philips fMRI run); {files} NIfTI and JSON files stored per run; "
        f"dcm2niix {dcm2niix.__version__}; {_rounds(ctx)} run(s) each, median."
    )
    _rows(sec, one, two, direct1, direct2)
    per_job = (one - direct1) / N_SERIES
    sec.notes.append(f"Job-system overhead per job with 1 worker: {per_job * 1000:.0f} ms.")
    return sec


def _rows(sec: Section, one: float, two: float, direct1: float, direct2: float) -> None:
    speedup, direct_speedup = one / two, direct1 / direct2
    sec.add(Row(f"{N_SERIES} series, 1 worker (median)", f"{one:.2f} s"))
    sec.add(
        Row(
            f"{N_SERIES} series, 2 workers: speed-up over 1 worker",
            f"{two:.2f} s",
            f"1 worker: {one:.2f} s",
            speedup,
            "≥ 1.4x, or ≥ 0.9x of what dcm2niix alone gains from 2 at a time",
            Row.verdict_of(speedup >= 1.4 or speedup >= 0.9 * direct_speedup),
        )
    )
    sec.add(
        Row(
            "(info) dcm2niix alone, 2 at a time vs one after the other",
            f"{direct2:.2f} s",
            f"one after the other: {direct1:.2f} s",
            direct_speedup,
        )
    )
    for label, t, base, how in ((1, one, direct1, "one after the other"), (2, two, direct2, "2 at a time")):
        sec.add(
            Row(
                f"Job system, {label} worker{'s' if label > 1 else ''}, vs dcm2niix run directly {how}",
                f"{t:.2f} s",
                f"direct: {base:.2f} s",
                base / t,
                "≥ 0.67x (overhead ≤ 1.5x)",
                Row.verdict_of(t <= 1.5 * base),
            )
        )
