"""Load test: 50 concurrent clients (a separate process, bench/load_client.py) against 1, 2 and 4 workers.

For each backend (SQLite in the data folder; PostgreSQL on a cluster of our own, started the way
tests/support/postgres.py does) and each worker count, a fresh server is started with
`xnatd serve --no-dicom --workers N --job-workers 0`, seeded over HTTP (a project, a subject,
experiments each with a small resource of a few files), then the client process sends a fixed number of
requests mixing listings, single-object GETs, small uploads and zip downloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.benchmarks import Context, log
from bench.results import Row, Section
from bench.server import REPO, running_server
from bench.xnat import Api

PROJECT = "LOAD"
WORKERS = (1, 2, 4)
CONCURRENCY = 50


def _seed(api: Api, experiments: int) -> list[str]:
    base = f"/data/projects/{PROJECT}"
    api.put(base)
    api.put(f"{base}/subjects/S1")
    labels = [f"LOAD_E{i:03d}" for i in range(experiments)]
    for label in labels:
        exp = f"{base}/subjects/S1/experiments/{label}"
        api.put(exp, {"xsiType": "xnat:mrSessionData", "date": "2024-01-01"})
        api.put(f"{exp}/resources/SMALL")
        api.put(f"{exp}/resources/UP")
        for j in range(3):
            r = api.client.put(
                f"{exp}/resources/SMALL/files/f{j}.bin",
                params={"inbody": "true"},
                content=os.urandom(8192),
                headers={"Content-Type": "application/octet-stream"},
            )
            if r.status_code not in (200, 201):
                raise RuntimeError(f"seeding {exp}: {r.status_code} {r.text[:200]}")
    return labels


def _one(work: Path, backend: str, workers: int, requests: int, experiments: int) -> dict[str, object]:
    data = work / f"load-{backend}-{workers}"
    extra: list[str] = ["--workers", str(workers), "--job-workers", "0"]
    if backend == "postgresql":
        from tests.support.postgres import database_url

        extra += ["--database", database_url()]
    with running_server(data, work / f"load-{backend}-{workers}.log", extra_args=tuple(extra)) as server:
        with Api(server.url) as api:
            sid = api.login()
            if not sid:
                raise RuntimeError("the server gave no session")
            labels = _seed(api, experiments)
        cmd = [
            sys.executable, "-m", "bench.load_client", "--url", server.url, "--session", sid,
            "--project", PROJECT, "--experiments", ",".join(labels),
            "--requests", str(requests), "--concurrency", str(CONCURRENCY),
        ]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=3600, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"load client failed: {out.stderr[-2000:]}")
        result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


def bench_load(ctx: Context) -> Section:
    quick = ctx.config.experiments < 1000
    requests = 400 if quick else 4000
    experiments = 5 if quick else 20
    sec = Section(
        "load",
        "8. Load test: 50 concurrent clients, 1/2/4 worker processes, SQLite and PostgreSQL",
        f"A separate client process (`python -m bench.load_client`, asyncio + httpx) runs {CONCURRENCY} "
        f"concurrent clients that send {requests:,} requests in all: 40% listings (a page of 50 "
        "experiments), 10% a resource's file list, 25% single-experiment GETs, 15% small uploads (4 KiB "
        "PUT), 10% zip downloads of a 3-file resource. For each backend and worker count a fresh server "
        "(`xnatd serve --no-dicom --workers N --job-workers 0`) on loopback; PostgreSQL is a cluster of our "
        "own on a free loopback port (tests/support/postgres.py).",
    )
    cores = os.cpu_count() or 1
    for backend in ("sqlite", "postgresql"):
        rps1 = 0.0
        for workers in WORKERS:
            log(f"load: {backend}, {workers} worker(s)")
            r = _one(ctx.work, backend, workers, requests, experiments)
            rps = float(r["rps"])  # type: ignore[arg-type]
            if workers == 1:
                rps1 = rps
            ratio = rps / rps1 if rps1 else None
            errors = int(r["errors"])  # type: ignore[call-overload]
            sec.add(
                Row(
                    f"{backend}, {workers} worker(s): req/s; p50 / p95 / p99; errors",
                    f"{rps:,.0f} req/s; {float(r['p50_ms']):,.0f} / {float(r['p95_ms']):,.0f} / "  # type: ignore[arg-type]
                    f"{float(r['p99_ms']):,.0f} ms; {errors} errors",  # type: ignore[arg-type]
                    baseline="1 worker" if workers > 1 else "—",
                    ratio=ratio if workers > 1 else None,
                    target="0 errors",
                    verdict=Row.verdict_of(errors == 0),
                )
            )
            if errors:
                sec.notes.append(f"{backend}/{workers}: first errors: {r['error_samples']}")
    sec.notes.append(
        f"This machine has {cores} core(s); the server workers, PostgreSQL and the client process share "
        "them, so the scaling ratio cannot exceed about the number of cores (and the client takes its "
        "share). On a host with 16 cores and the client elsewhere, requests/s should grow close to "
        "linearly with workers up to the core count, until the database (SQLite's single writer for the "
        "uploads; PostgreSQL's connections) or the filesystem bounds it: a projection, not a measurement."
    )
    return sec
