"""A thin XNAT REST client for the benchmarks: precise errors, session login, streaming up and down."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.server import ADMIN

CHUNK = 1024 * 1024
TIMEOUT = httpx.Timeout(connect=10.0, read=1800.0, write=1800.0, pool=60.0)


class BenchError(RuntimeError):
    """The server did something a benchmark could not go on with; the message says exactly what."""


def describe(resp: httpx.Response, body: str | None = None) -> str:
    req = resp.request
    text = body if body is not None else _safe_text(resp)
    return f"{req.method} {req.url} -> {resp.status_code} {resp.reason_phrase}: {text[:500]!r}"


def _safe_text(resp: httpx.Response) -> str:
    try:
        return resp.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return "<body not read>"


def check(resp: httpx.Response, ok: tuple[int, ...] = (200, 201)) -> httpx.Response:
    if resp.status_code not in ok:
        raise BenchError(f"expected {'/'.join(map(str, ok))}; got {describe(resp)}")
    return resp


class Api:
    """One httpx client on the server. After `login()` it sends only the JSESSIONID cookie, as xnatpy does."""

    def __init__(self, url: str, auth: tuple[str, str] | None = ADMIN, session: str | None = None) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, auth=auth, timeout=TIMEOUT)
        if session:
            self.client.cookies.set("JSESSIONID", session)
        self.session = session

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login(self) -> str | None:
        """Get a session (`POST /data/JSESSION` with Basic auth) and use only its cookie from then on.

        Returns the session id, or None if the server has no sessions (Basic auth is then kept).
        """
        try:
            r = self.client.post("/data/JSESSION")
        except httpx.HTTPError:
            return None
        sid = r.cookies.get("JSESSIONID") or (r.text.strip() if r.status_code == 200 else "")
        if r.status_code != 200 or not sid or len(sid) > 200 or "<" in sid:
            return None
        probe = httpx.Client(base_url=self.url, timeout=TIMEOUT, cookies={"JSESSIONID": sid})
        try:
            ok = probe.get("/data/projects", params={"format": "json"}).status_code == 200
        finally:
            probe.close()
        if not ok:
            return None
        self.client.auth = None  # type: ignore[assignment]
        self.client.cookies.set("JSESSIONID", sid)
        self.session = sid
        return sid

    def put(
        self, path: str, params: Mapping[str, str] | None = None, ok: tuple[int, ...] = (200, 201)
    ) -> str:
        return check(self.client.put(path, params=params), ok).text

    def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        r = check(self.client.get(path, params={"format": "json", **(params or {})}), (200,))
        try:
            data = r.json()
        except ValueError as e:
            raise BenchError(f"not JSON: {describe(r)}") from e
        if not isinstance(data, dict):
            raise BenchError(f"JSON is not an object: {describe(r)}")
        return data

    def result_rows(self, path: str, params: Mapping[str, str | int] | None = None) -> list[dict[str, Any]]:
        data = self.get_json(path, params)
        try:
            rows = data["ResultSet"]["Result"]
        except (KeyError, TypeError) as e:
            raise BenchError(f"GET {path} {params}: no ResultSet.Result in {str(data)[:300]!r}") from e
        if not isinstance(rows, list):
            raise BenchError(f"GET {path} {params}: ResultSet.Result is not a list")
        return rows

    def upload_file(self, path: str, source: Path, params: Mapping[str, str], chunk: int = CHUNK) -> float:
        """PUT `source` as a raw streamed body; returns the seconds from first byte sent to response read."""
        size = source.stat().st_size

        def body() -> Iterator[bytes]:
            with source.open("rb", buffering=0) as f:
                while True:
                    block = f.read(chunk)
                    if not block:
                        return
                    yield block

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        t0 = time.perf_counter()
        r = self.client.put(path, params=params, content=body(), headers=headers)
        elapsed = time.perf_counter() - t0
        check(r)
        if "duplicates" in r.text:
            raise BenchError(f"upload was not stored (file already there): {describe(r)}")
        return elapsed

    def download(self, path: str, params: Mapping[str, str], dest: Path, chunk: int = CHUNK) -> Download:
        """GET streamed to `dest`: seconds to the first body byte and to the last byte written, bytes."""
        t0 = time.perf_counter()
        n = 0
        first = 0.0
        with self.client.stream("GET", path, params=params) as r:
            if r.status_code != 200:
                r.read()
                raise BenchError(f"expected 200; got {describe(r)}")
            with dest.open("wb") as out:
                for block in r.iter_raw(chunk):
                    if not n:
                        first = time.perf_counter() - t0
                    out.write(block)
                    n += len(block)
        return Download(time.perf_counter() - t0, first, n)


@dataclass
class Download:
    seconds: float
    first_byte: float
    nbytes: int
