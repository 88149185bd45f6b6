"""Run the xnatd benchmarks and write a markdown report with plots.

    .venv/bin/python -m bench.run --out bench/out            # the issue's sizes (make bench)
    .venv/bin/python -m bench.run --quick --out /tmp/bq      # smoke run: 50 MB, 200 files, 500 experiments

Everything is generated in a temporary folder that also holds the server's data folder, so baselines and
server write to the same filesystem; the folder is removed at the end and the server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import psutil

from bench import benchmarks, data, registry
from bench.benchmarks import Config, Context, log
from bench.report import write_report
from bench.results import FAIL, Section
from bench.server import DEFAULT_XNATD, REPO, CpuSnapshot, RssSampler, running_server
from bench.xnat import Api

GB = 1024**3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--out", type=Path, default=REPO / "bench" / "out", help="report folder (default bench/out)"
    )
    p.add_argument("--quick", action="store_true", help="small smoke run: 50 MB, 200 files, 500 experiments")
    p.add_argument("--big-gb", type=float, default=None, help="size of the uploaded file in GiB (default 2)")
    p.add_argument("--dicom-files", type=int, default=None, help="DICOM files in the scan (default 2000)")
    p.add_argument(
        "--experiments", type=int, default=None, help="experiments in the listed project (default 10000)"
    )
    p.add_argument(
        "--threads", type=int, default=8, help="client threads that create experiments (default 8)"
    )
    p.add_argument("--requests", type=int, default=200, help="timed paged listing requests (default 200)")
    p.add_argument(
        "--zip-repeats", type=int, default=5, help="zip downloads and baselines, median (default 5)"
    )
    p.add_argument(
        "--only",
        default="upload,zip,listing,jobs",
        help="comma list of benchmarks: upload, zip, listing, import_zip, import_files, jobs, cstore, load",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="parent of the temporary folder with inputs, baselines and the server's data (default: --out)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (for debugging)")
    p.add_argument(
        "--xnatd", type=Path, default=DEFAULT_XNATD, help="server executable (default .venv/bin/xnatd)"
    )
    p.add_argument(
        "--server-arg", action="append", default=[], help="extra `xnatd serve` argument (repeatable)"
    )
    p.add_argument("--no-curl", action="store_true", help="skip the extra `curl -T` upload")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before each benchmark, wait up to this long for other processes to use < 10%% of the CPU "
        "(default 60, 0 with --quick)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    return p.parse_args(argv)


def make_config(a: argparse.Namespace) -> Config:
    big, files, exps = (0.05 / 1.024, 200, 500) if a.quick else (2.0, 2000, 10000)
    return Config(
        big_bytes=int((a.big_gb if a.big_gb is not None else big) * GB),
        dicom_files=a.dicom_files if a.dicom_files is not None else files,
        experiments=a.experiments if a.experiments is not None else exps,
        threads=a.threads,
        listing_requests=a.requests,
        zip_repeats=max(1, a.zip_repeats),
        curl=not a.no_curl,
        xnatd=a.xnatd,
    )


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    ram = psutil.virtual_memory().total / GB
    return f"{os.cpu_count()} cores ({cpu or platform.machine()}), {ram:.0f} GiB RAM, {platform.platform()}"


def wait_quiet(server_pid: int, limit: float) -> str:
    """Wait (at most `limit` s) until other processes use under 10% of the machine over 3 s."""
    if limit <= 0:
        return ""
    deadline = time.monotonic() + limit
    cores = os.cpu_count() or 1
    share = 1.0
    while time.monotonic() < deadline:
        before = CpuSnapshot.take(server_pid)
        time.sleep(3)
        wall, others, _ = CpuSnapshot.take(server_pid).others_since(before)
        share = others / (wall * cores)
        if share < 0.1:
            return ""
        log(f"machine busy ({share:.0%} of the CPU used by other processes); waiting")
    return f"Waited {limit:.0f} s for a quiet machine in vain (other processes used {share:.0%} of the CPU)."


def load_note(before: CpuSnapshot, after: CpuSnapshot) -> str:
    """How busy the rest of the machine was: the figures are noisy when other processes ran meanwhile."""
    wall, others, steal = after.others_since(before)
    cores = os.cpu_count() or 1
    share = others / (wall * cores) if wall > 0 else 0.0
    load = os.getloadavg()[0]
    text = (
        f"Other processes (and kernel threads) used {others:.1f} CPU-seconds meanwhile "
        f"({share:.0%} of {cores} cores over {wall:.0f} s); hypervisor steal {steal:.1f} s; "
        f"load average now {load:.2f}."
    )
    if share > 0.1:
        text += " **The machine was busy: these figures are noisier than usual.**"
    return text


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    cfg = make_config(a)
    quiet_wait = a.wait_quiet if a.wait_quiet is not None else (0.0 if a.quick else 60.0)
    wanted = [w.strip() for w in a.only.split(",") if w.strip()]
    unknown = set(wanted) - {k for k, _ in registry.ALL}
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    out: Path = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    parent = (a.workdir or out).resolve()
    parent.mkdir(parents=True, exist_ok=True)

    need = 4 * cfg.big_bytes + cfg.dicom_files * 200_000 + GB // 2
    free = shutil.disk_usage(parent).free
    if free < need:
        print(
            f"not enough space in {parent}: {free / GB:.1f} GiB free, about {need / GB:.1f} GiB needed",
            file=sys.stderr,
        )
        return 2

    work = Path(tempfile.mkdtemp(prefix="xnatd-bench-", dir=parent))
    sections: list[Section] = []
    sampler: RssSampler | None = None
    ctx: Context | None = None
    head_commit = _git("rev-parse", "--short", "HEAD")
    dirty = " (with uncommitted changes in src/)" if _git("status", "--porcelain", "--", "src") else ""
    header: list[tuple[str, str]] = [
        ("Date", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("Machine", machine()),
        ("Python", sys.version.split()[0]),
        (
            "xnatd",
            f"commit {head_commit}{dirty}, `{a.xnatd} serve --no-dicom {' '.join(a.server_arg)}`".strip(),
        ),
        (
            "Sizes",
            f"big file {benchmarks.size_label(cfg.big_bytes)}, {cfg.dicom_files:,} DICOM files, "
            f"{cfg.experiments:,} experiments, {cfg.listing_requests} timed listings",
        ),
        ("Disk (inputs, baselines and server data)", f"`{work}`: {data.disk_of(work)}"),
    ]
    log(f"work folder {work} ({data.disk_of(work)})")
    server_log = work / "xnatd.log"
    started = time.perf_counter()
    try:
        with running_server(work / "data", server_log, a.xnatd, tuple(a.server_arg)) as server:
            same_fs = os.stat(server.data).st_dev == os.stat(work).st_dev
            header.append(("Same filesystem for server data and baselines", "yes" if same_fs else "**NO**"))
            log(f"xnatd ready at {server.url}, PID {server.pid}")
            sampler = RssSampler(server.pid).start()
            time.sleep(0.3)
            api = Api(server.url)
            sid = api.login()
            header.append(
                (
                    "Client authentication",
                    "session cookie (`POST /data/JSESSION`), as xnatpy"
                    if sid
                    else "HTTP Basic on every request",
                )
            )
            ctx = Context(server=server, sampler=sampler, api=api, work=work, config=cfg)
            try:
                for key, fn in registry.ALL:
                    if key not in wanted:
                        continue
                    log(f"=== benchmark: {key}")
                    waited = wait_quiet(server.pid, quiet_wait)
                    t0 = time.perf_counter()
                    cpu0 = CpuSnapshot.take(server.pid)
                    try:
                        if not server.alive():
                            raise RuntimeError(f"the server (PID {server.pid}) is no longer running")
                        sec = fn(ctx)
                    except Exception as e:
                        sec = Section(key, registry.TITLES[key], "")
                        sec.error = (
                            f"{type(e).__name__}: {e}\n\n{traceback.format_exc(limit=4)}\n"
                            f"--- server log (tail) ---\n{server.log_tail()}"
                        )
                        log(f"benchmark {key} failed: {type(e).__name__}: {e}")
                    sec.notes.append(f"Benchmark wall time: {time.perf_counter() - t0:.1f} s.")
                    sec.notes.append(load_note(cpu0, CpuSnapshot.take(server.pid)))
                    if waited:
                        sec.notes.append(waited)
                    sections.append(sec)
                    _cleanup_inputs(work, keep=a.keep)
            finally:
                api.close()
                sampler.stop()
    except Exception as e:
        log(f"could not run the server: {e}")
        sections.append(Section("server", "Server", "", error=f"{type(e).__name__}: {e}"))
    finally:
        if server_log.exists():
            text = server_log.read_bytes()[-2_000_000:]
            (out / "xnatd.log").write_bytes(text)
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    header.append(("Total wall time", f"{time.perf_counter() - started:.0f} s"))
    report = write_report(
        out,
        sections,
        header,
        sampler,
        ctx.latencies if ctx else [],
        ctx.basic_latencies if ctx else [],
        ctx.throughput if ctx else [],
        a.quick,
    )
    log(f"report: {report}")
    print(report.read_text().split("## 1.")[0] if "## 1." in report.read_text() else report.read_text())
    if any(s.error for s in sections):
        return 2
    if a.strict and any(FAIL in s.verdicts for s in sections):
        return 1
    return 0


def _cleanup_inputs(work: Path, keep: bool) -> None:
    """Between benchmarks, drop leftover downloads and baseline scratch files (inputs are reused)."""
    if keep:
        return
    for d in (work / "downloads", work / "baseline"):
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
