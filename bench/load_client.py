"""The load-test client: a separate process that drives one server with N concurrent asyncio clients.

    python -m bench.load_client --url http://127.0.0.1:PORT --session SID --project P \
        --experiments E1,E2 --requests 2000 --concurrency 50

Each client takes the next request from a shared counter until `--requests` have been sent. The mix, in
rotation: 40% listings (a page of the project's experiments, a session's files), 35% single-object GETs
(an experiment, a subject), 15% small uploads (4 KiB PUT into a resource) and 10% zip downloads of a
small resource. Prints one JSON object: requests, errors, seconds, requests/s, p50/p95/p99 (ms) and the
first few error messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

MIX = ["list", "get", "list", "get", "upload", "list", "get", "zip", "list", "get", "files", "upload",
       "get", "list", "get", "files", "list", "get", "upload", "zip"]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


async def run(a: argparse.Namespace) -> dict[str, object]:
    exps = a.experiments.split(",")
    base = f"/data/projects/{a.project}"
    payload = os.urandom(4096)
    counter = iter(range(a.requests))
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=a.concurrency, max_keepalive_connections=a.concurrency)
    async with httpx.AsyncClient(
        base_url=a.url, cookies={"JSESSIONID": a.session}, limits=limits, timeout=120.0
    ) as client:

        async def one(i: int) -> None:
            kind = MIX[i % len(MIX)]
            exp = exps[i % len(exps)]
            t0 = time.perf_counter()
            try:
                if kind == "list":
                    r = await client.get(
                        f"{base}/experiments", params={"format": "json", "limit": 50, "offset": i % 5 * 10}
                    )
                elif kind == "get":
                    r = await client.get(f"{base}/experiments/{exp}", params={"format": "json"})
                elif kind == "files":
                    r = await client.get(f"{base}/experiments/{exp}/resources/SMALL/files?format=json")
                elif kind == "upload":
                    r = await client.put(
                        f"{base}/experiments/{exp}/resources/UP/files/f{i}_{os.getpid()}.bin",
                        params={"inbody": "true"},
                        content=payload,
                        headers={"Content-Type": "application/octet-stream"},
                    )
                else:
                    r = await client.get(
                        f"{base}/experiments/{exp}/resources/SMALL/files", params={"format": "zip"}
                    )
                ok = r.status_code in (200, 201)
                if not ok:
                    errors.append(f"{kind} {r.request.url} -> {r.status_code}: {r.text[:200]!r}")
            except httpx.HTTPError as e:
                errors.append(f"{kind}: {type(e).__name__}: {e}")
            latencies.append(time.perf_counter() - t0)

        async def worker() -> None:
            for i in counter:
                await one(i)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(a.concurrency)))
        seconds = time.perf_counter() - t0
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "seconds": seconds,
        "rps": len(latencies) / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load_client")
    p.add_argument("--url", required=True)
    p.add_argument("--session", required=True, help="JSESSIONID to send (from POST /data/JSESSION)")
    p.add_argument("--project", required=True)
    p.add_argument("--experiments", required=True, help="comma list of experiment labels")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50)
    a = p.parse_args(argv)
    print(json.dumps(asyncio.run(run(a))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
