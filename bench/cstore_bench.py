"""C-STORE ingest: xnatd's DICOM receiver vs dcmtk's ``storescp`` (the floor) and Orthanc, same run.

Inputs: copies of a real GE series (shared/testdata ``xnat_test_resources/duplicates``, ~135 KB per
file) under new UIDs until there are at least ``dicom_files`` files; the sender is dcmtk's
``storescu`` everywhere. Each xnatd round runs ``xnatd dicom`` on a fresh data folder (so nothing is
a duplicate), on the same disk as the baselines. RSS: a 2 GB series of large multi-frame objects
(real CT header and slice, frames repeated), sampled over the receiver's whole process tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pydicom

from bench.benchmarks import RSS_LIMIT, Context, log
from bench.import_bench import _orthanc, _orthanc_version
from bench.results import INFO, Row, Section, fmt_mb
from bench.server import PssSampler, RssSampler, free_port, stop_process
from bench.xnat import BenchError
from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files

SERIES = TESTDATA / "xnat_test_resources" / "duplicates"
CT_SLICE = TESTDATA / "dcm_qa_ct_philips" / "S21570" / "S2010" / "I10"
NAGLE_BASELINE_FILES = 200  # dcmtk-based receivers stall ~60 ms per file there: a sample suffices
BIG_OBJECT = 128 * 1024**2
BIG_TOTAL = 2 * 1024**3
DICOMD = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "xnatd"


def _inputs(dest: Path, count: int) -> list[Path]:
    files: list[Path] = []
    n = 0
    while len(files) < count:
        n += 1
        files += copy_study(dicom_files(SERIES), dest / f"s{n:03d}", f"CSTORE{n:03d}")
    return files


def _send(port: int, called: str, groups: list[list[Path]], nodelay: bool) -> float:
    """Each group over its own association, all at once; seconds until the last storescu exits."""
    env = {**os.environ, "TCP_NODELAY": "1" if nodelay else "0"}
    if not nodelay:
        env.pop("TCP_NODELAY")
    t0 = time.perf_counter()
    procs = []
    for group in groups:
        args = ["storescu", "-aec", called, "127.0.0.1", str(port), *map(str, group)]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    errors = [p.communicate()[1] for p in procs]
    elapsed = time.perf_counter() - t0
    bad = [e.decode(errors="replace")[-500:] for p, e in zip(procs, errors, strict=True) if p.returncode]
    if bad:
        raise BenchError(f"storescu failed: {bad[0]}")
    return elapsed


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"receiver exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise BenchError(f"nothing listens on port {port}")


class _Receiver:
    """``xnatd dicom`` on a fresh data folder, stopped by its PID."""

    def __init__(self, work: Path) -> None:
        self.data = work / f"xnatd-{time.monotonic_ns()}"
        self.port = free_port()
        self.log = self.data.with_suffix(".log")
        self.data.mkdir(parents=True)
        env = {**os.environ, "XNATD_ADMIN_PASSWORD": "admin", "XNATD_LOG_LEVEL": "info"}
        args = [str(DICOMD), "dicom", "--data", str(self.data), "--dicom-port", str(self.port)]
        args += ["--parent-pid", str(os.getpid())]  # it dies with the benchmark, whatever happens
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while b"receiver listening on" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop_process(self.proc)
                raise BenchError(f"xnatd dicom did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def cpu(self) -> float:
        """CPU seconds (user + system) used so far by the receiver's whole process tree: the machine is
        shared, so this is steadier than wall-clock time."""
        root = psutil.Process(self.proc.pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def filed(self) -> int:
        with contextlib.closing(sqlite3.connect(self.data / "xnatd.db", timeout=30)) as db:
            return int(db.execute("select count(*) from prearchive_files").fetchone()[0])

    def wait_filed(self, count: int, timeout: float = 120.0) -> float:
        t0 = time.perf_counter()
        while self.filed() < count:
            if time.perf_counter() - t0 > timeout:
                raise BenchError(f"only {self.filed()} of {count} objects filed after {timeout:.0f} s")
            time.sleep(0.05)
        return time.perf_counter() - t0

    def stop(self) -> None:
        stop_process(self.proc, grace=90)
        shutil.rmtree(self.data, ignore_errors=True)


def _xnatd_round(work: Path, groups: list[list[Path]], nodelay: bool) -> tuple[float, float, float]:
    """(seconds to the last response, seconds more until every object is indexed, receiver CPU
    milliseconds per object from the first connection until all are indexed)."""
    rcv = _Receiver(work)
    try:
        count = sum(len(g) for g in groups)
        cpu0 = rcv.cpu()
        sent = _send(rcv.port, "XNAT", groups, nodelay)
        filed = rcv.wait_filed(count)
        return sent, filed, (rcv.cpu() - cpu0) * 1000 / count
    finally:
        rcv.stop()


def _storescp_round(work: Path, groups: list[list[Path]]) -> float:
    """dcmtk's storescp (``--fork``: a process per association) writing the objects to a folder."""
    out = work / "storescp-out"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "TCP_NODELAY": "1"}
    args = ["storescp", "--fork", "-od", str(out), str(port)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        return _send(port, "STORESCP", groups, True)
    finally:
        stop_process(proc)
        shutil.rmtree(out, ignore_errors=True)


def _orthanc_round(work: Path, groups: list[list[Path]], nodelay: bool) -> float:
    """Orthanc's DICOM side is dcmtk's, which reads TCP_NODELAY too: it gets its faster setting."""
    folder = work / f"orthanc-{time.monotonic_ns()}"
    saved = os.environ.get("TCP_NODELAY")
    os.environ["TCP_NODELAY"] = "1"
    try:
        proc, _url = _orthanc(folder)
    finally:
        if saved is None:
            os.environ.pop("TCP_NODELAY")
        else:
            os.environ["TCP_NODELAY"] = saved
    try:
        port = int(json.loads((folder / "orthanc.json").read_text())["DicomPort"])
        _wait_port(port, proc)
        return _send(port, "ORTHANC", groups, nodelay)
    finally:
        stop_process(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _quarters(files: list[Path]) -> list[list[Path]]:
    """Four senders, each with whole studies (a study is one folder)."""
    studies: dict[Path, list[Path]] = {}
    for f in files:
        studies.setdefault(f.parent, []).append(f)
    groups: list[list[Path]] = [[], [], [], []]
    for i, study in enumerate(studies.values()):
        groups[i % 4] += study
    return groups


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} files/s ({seconds:.2f} s)"


def bench_cstore(ctx: Context) -> Section:
    n = ctx.config.dicom_files
    sec = Section(
        "cstore",
        f"7. C-STORE ingest of {n:,}+ files of ~135 KB",
        "dcmtk `storescu` sends copies of a real GE series (new UIDs per copy) to `xnatd dicom` on a fresh "
        "data folder, to dcmtk `storescp -od DIR` (writes the files, nothing else: the floor) and to Orthanc "
        "(Debian package, own loopback ports, fresh storage), one after the other in this run, on the same "
        "disk. `TCP_NODELAY=1` is dcmtk's switch to disable Nagle's algorithm on the sender; without it "
        "(dcmtk's default, as scanners' scripts run it) Orthanc is measured on the first "
        f"{NAGLE_BASELINE_FILES} files only. Four associations: four `storescu` at once, whole studies "
        "each. Time: from the first connection to the last response; xnatd then indexes what is left "
        "(reported as the extra time until every object is in the database).",
    )
    work = ctx.work / "cstore"
    files = _inputs(ctx.src / "cstore", n)
    size = sum(f.stat().st_size for f in files)
    sec.notes.append(f"{len(files):,} files, {fmt_mb(size)} ({size / len(files) / 1024:,.0f} KB each).")
    work.mkdir(parents=True, exist_ok=True)

    t_scp = _storescp_round(work, [files])
    t_scp4 = _storescp_round(work, _quarters(files))
    t_orth = _orthanc_round(work, [files], True)
    t_orth_nagle = _orthanc_round(work, [files[:NAGLE_BASELINE_FILES]], False)
    t_orth4 = _orthanc_round(work, _quarters(files), True)
    r_orth = len(files) / t_orth
    r_orth_nagle = NAGLE_BASELINE_FILES / t_orth_nagle
    log(
        f"storescp {t_scp:.2f} s, Orthanc {t_orth:.2f} s (Nagle {t_orth_nagle:.2f} s/200, 4x {t_orth4:.2f} s)"
    )

    t1, f1, c1 = _xnatd_round(work, [files], True)
    t2, f2, c2 = _xnatd_round(work, [files], False)
    t4, f4, c4 = _xnatd_round(work, _quarters(files), True)
    log(f"xnatd: nodelay {t1:.2f}+{f1:.2f} s, Nagle {t2:.2f}+{f2:.2f} s, 4 assoc {t4:.2f}+{f4:.2f} s")
    log(f"xnatd CPU per object: nodelay {c1:.2f} ms, Nagle {c2:.2f} ms, 4 assoc {c4:.2f} ms")
    mbs = size / 2**20
    cpu = {"1": c1, "N": c2, "4": c4}

    def row(label: str, t: float, filed: float, base: str, ratio: float, target: str, ok: bool) -> None:
        key = "4" if label.startswith("4") else "N" if "Nagle" in label else "1"
        value = f"{_rate(len(files), t)}, {mbs / t:,.0f} MB/s; all indexed +{filed:.2f} s; "
        value += f"receiver CPU {cpu[key]:.2f} ms/object"
        sec.add(Row(label, value, base, ratio, target, Row.verdict_of(ok)))

    orth = f"Orthanc: {_rate(len(files), t_orth)}"
    row(
        "1 association, TCP_NODELAY=1",
        t1,
        f1,
        orth,
        len(files) / t1 / r_orth,
        "≥ 1.2x",
        len(files) / t1 >= 1.2 * r_orth,
    )
    nagle = f"Orthanc: {NAGLE_BASELINE_FILES / t_orth_nagle:,.0f} files/s ({NAGLE_BASELINE_FILES} files)"
    ok2 = len(files) / t2 >= 5 * r_orth_nagle
    row(
        "1 association, storescu defaults (Nagle on)",
        t2,
        f2,
        nagle,
        len(files) / t2 / r_orth_nagle,
        "≥ 5x",
        ok2,
    )
    ok4 = len(files) / t4 >= 2 * r_orth
    row("4 associations at once", t4, f4, orth + " (1 association)", len(files) / t4 / r_orth, "≥ 2x", ok4)
    sec.add(Row("Orthanc, 4 associations at once", _rate(len(files), t_orth4), "—", None, "—", INFO))
    floor4 = f"storescp --fork: {_rate(len(files), t_scp4)}"
    sec.add(
        Row("xnatd, 4 associations, vs dcmtk's floor", _rate(len(files), t4), floor4, t_scp4 / t4, "—", INFO)
    )
    sec.add(
        Row(
            "dcmtk storescp (writes files only), 1 association",
            _rate(len(files), t_scp),
            "the floor",
            (len(files) / t1) / (len(files) / t_scp),
            "xnatd / storescp",
            INFO,
        )
    )
    sec.add(_rss_row(ctx, work))
    sec.notes.append(f"Orthanc {_orthanc_version()}; dcmtk {_dcmtk_version()}.")
    return sec


def _big_series(dest: Path) -> list[Path]:
    """16 objects of 128 MB: a real CT header, its slice repeated as frames of one multi-frame image."""
    ds = pydicom.dcmread(CT_SLICE)
    frame = ds.PixelData
    frames = BIG_OBJECT // len(frame)
    ds.NumberOfFrames = frames
    ds.PixelData = frame * frames
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(BIG_TOTAL // (frames * len(frame))):
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        path = dest / f"big{i:02d}.dcm"
        ds.save_as(path, enforce_file_format=False)
        out.append(path)
    return out


def _rss_row(ctx: Context, work: Path) -> Row:
    files = _big_series(ctx.src / "cstore-big")
    total = sum(f.stat().st_size for f in files)
    rcv = _Receiver(work)
    sampler = RssSampler(rcv.proc.pid).start()
    pss = PssSampler(rcv.proc.pid)
    try:
        time.sleep(0.5)
        idle = sampler.first()
        with sampler.phase("C-STORE of a 2 GB series") as ph:
            t = _send(rcv.port, "XNAT", [files], True)
            rcv.wait_filed(len(files))
        peak = sampler.max_in(ph)
    finally:
        sampler.stop()
        peak_pss = pss.stop()
        rcv.stop()
        shutil.rmtree(ctx.src / "cstore-big", ignore_errors=True)
    value = (
        f"PSS {fmt_mb(peak_pss)} peak; RSS summed over processes {fmt_mb(peak)} peak "
        f"(idle {fmt_mb(idle)}, +{fmt_mb(peak - idle)} during the series); {total / t / 2**20:,.0f} MB/s"
    )
    label = f"Receiver memory (supervisor + workers), {len(files)} objects of {fmt_mb(total / len(files))}"
    return Row(label, value, "—", None, "< 200 MB (PSS)", Row.verdict_of(peak_pss < RSS_LIMIT))


def _dcmtk_version() -> str:
    out = subprocess.run(["storescu", "--version"], capture_output=True, text=True).stdout
    return next((ln.strip() for ln in out.splitlines() if "dcmtk" in ln.lower()), "?")
