"""Large catalogue: 100,000 experiments and 1,000,000 file rows in one project, then HTTP listing latency.

The rows are generated directly in the database (a `Context` from `open_context`, big batched inserts
through the db layer's connection), not over HTTP; then the running server answers: a page of the
project's experiments, a subject's sessions, a resource's files. Target: p95 < 100 ms on both backends.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.benchmarks import Context, log
from bench.results import Row, Section, fmt_ms
from bench.server import running_server
from bench.xnat import Api
from xnatd.config import Settings
from xnatd.db import schema
from xnatd.services.operations.bootstrap import open_context

PROJECT = "BIGCAT"
BATCH = 20_000
TARGET = 0.100


def _p95(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def generate(data: Path, database_url: str, experiments: int, files_per_exp: int, per_subject: int) -> None:
    """Insert subjects, experiments (one resource each) and file rows in batches of BATCH."""
    ctx = open_context(Settings(data=data, database_url=database_url), recover=False)
    now = dt.datetime.now()
    with ctx.db.read() as conn:
        first_pk = (
            int(conn.execute(select(func.coalesce(func.max(schema.resources.c.pk), 0))).scalar_one()) + 1
        )
    subjects = [
        {"id": f"{PROJECT}_S{i:06d}", "project_id": PROJECT, "label": f"S{i:06d}", "fields": {},
         "insert_date": now, "insert_user": "admin", "last_modified": now}
        for i in range((experiments + per_subject - 1) // per_subject)
    ]  # fmt: skip
    for i in range(0, len(subjects), BATCH):
        with ctx.db.write() as conn:
            conn.execute(schema.subjects.insert(), subjects[i : i + BATCH])
    step = max(1, BATCH // files_per_exp)
    for start in range(0, experiments, step):
        exps, res, fil = [], [], []
        for i in range(start, min(experiments, start + step)):
            eid, label, pk = f"{PROJECT}_E{i:07d}", f"E{i:07d}", first_pk + i
            exps.append(
                {"id": eid, "project_id": PROJECT, "subject_id": f"{PROJECT}_S{i // per_subject:06d}",
                 "session_id": None, "label": label, "xsi_type": "xnat:mrSessionData", "date": "2024-01-01",
                 "time": None, "fields": {}, "insert_date": now, "insert_user": "admin", "last_modified": now}
            )  # fmt: skip
            res.append(
                {"pk": pk, "owner": f"experiment:{eid}", "project_id": PROJECT, "label": "DATA", "format": "",
                 "content": "", "description": "", "tags": "",
                 "directory": f"{PROJECT}/arc001/{label}/RESOURCES/DATA", "insert_date": now}
            )  # fmt: skip
            fil.extend(
                {"resource_pk": pk, "path": f"f{j:03d}.dcm", "size": 1000 + j, "md5": "0" * 32, "format": "",
                 "content": "", "tags": "", "modified": now, "created_by": "admin"}
                for j in range(files_per_exp)
            )  # fmt: skip
        with ctx.db.write() as conn:
            conn.execute(schema.experiments.insert(), exps)
            conn.execute(schema.resources.insert(), res)
            conn.execute(schema.files.insert(), fil)
        if start % (step * 10) == 0:
            log(f"catalogue: {start + len(exps):,} / {experiments:,} experiments")


def _measure(api: Api, paths: list[tuple[str, dict[str, Any]]]) -> list[float]:
    out: list[float] = []
    for path, params in paths:
        t0 = time.perf_counter()
        r = api.client.get(path, params={"format": "json", **params})
        out.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {r.status_code} {r.text[:200]}")
    return out


def bench_catalogue(ctx: Context) -> Section:
    quick = ctx.config.experiments < 1000
    experiments, files_per_exp, per_subject = (1_000, 10, 10) if quick else (100_000, 10, 10)
    n = 50 if quick else 200
    sec = Section(
        "catalogue",
        "9. Large catalogue: listing latency with 100,000 experiments and 1,000,000 files",
        f"One project with {experiments:,} experiments ({per_subject} per subject, one resource each) and "
        f"{experiments * files_per_exp:,} file rows, generated directly in the database through "
        f"`open_context` and batched inserts of {BATCH:,} rows. Then {n} requests each, over HTTP with a "
        "session cookie, at random places: a page of 50 experiments of the project "
        "(`/data/projects/P/experiments?limit=50&offset=K`), a subject's sessions, a resource's files.",
    )
    rng = random.Random(7)
    for backend in ("sqlite", "postgresql"):
        data = ctx.work / f"catalogue-{backend}"
        extra: list[str] = ["--job-workers", "0"]
        url = ""
        if backend == "postgresql":
            from tests.support.postgres import database_url

            url = database_url()
            extra += ["--database", url]
        log_file = ctx.work / f"catalogue-{backend}.log"
        with running_server(data, log_file, extra_args=tuple(extra)) as server, Api(server.url) as api:
            api.login()
            api.put(f"/data/projects/{PROJECT}")
            t0 = time.perf_counter()
            generate(data, url, experiments, files_per_exp, per_subject)
            sec.notes.append(f"{backend}: generating the rows took {time.perf_counter() - t0:,.0f} s.")
            subjects = experiments // per_subject
            base = f"/data/projects/{PROJECT}"
            cases = {
                "a page of 50 experiments": [
                    (f"{base}/experiments", {"limit": 50, "offset": rng.randrange(experiments - 50)})
                    for _ in range(n)
                ],
                "a subject's sessions": [
                    (f"{base}/subjects/S{rng.randrange(subjects):06d}/experiments", {}) for _ in range(n)
                ],
                "a resource's files": [
                    (f"{base}/experiments/E{rng.randrange(experiments):07d}/resources/DATA/files", {})
                    for _ in range(n)
                ],
            }
            for what, paths in cases.items():
                _measure(api, paths[:5])  # warm-up
                lat = _measure(api, paths)
                p95 = _p95(lat)
                sec.add(
                    Row(
                        f"{backend}: {what}, p50 / p95",
                        f"{fmt_ms(sorted(lat)[len(lat) // 2])} / {fmt_ms(p95)}",
                        target="p95 < 100 ms",
                        verdict=Row.verdict_of(p95 < TARGET),
                    )
                )
    return sec
