"""Plain helpers shared by the compatibility tests (no fixtures here; those live in conftest.py)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.dicom_copies import TESTDATA

ADMIN = ("admin", "admin")
AUTH_REQUIRED_TEXT = "The request requires user authentication"


def new_label(prefix: str = "L") -> str:
    """A label that is unique for this test run and valid in XNAT (`[A-Za-z0-9_-]`)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def zip_of_testdata(folder: str) -> bytes:
    """A zip of one shared test-data folder, its notes (.txt, .md) left out."""
    buf = io.BytesIO()
    root = TESTDATA / folder
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix not in (".txt", ".md"):
                zf.write(p, str(p.relative_to(root)))
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def looks_like_html(body: bytes | str) -> bool:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    head = text.lstrip()[:200].lower()
    return head.startswith("<!doctype") or head.startswith("<html")


def describe(resp: httpx.Response) -> str:
    """One line describing a response, for assertion messages."""
    body = resp.content[:300].decode("utf-8", "replace")
    ctype = resp.headers.get("content-type")
    return f"{resp.request.method} {resp.request.url} -> {resp.status_code} {ctype!r} {body!r}"


def rows(resp: httpx.Response) -> list[dict[str, Any]]:
    """The rows of a JSON `ResultSet` listing."""
    assert resp.status_code == 200, describe(resp)
    doc = resp.json()
    assert "ResultSet" in doc and "Result" in doc["ResultSet"], describe(resp)
    result = doc["ResultSet"]["Result"]
    assert isinstance(result, list), describe(resp)
    return result


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def item_fields(resp: httpx.Response) -> dict[str, Any]:
    """`data_fields` of the first non-history item of a single-object JSON document."""
    assert resp.status_code == 200, describe(resp)
    items = resp.json()["items"]
    item = next(i for i in items if not i.get("meta", {}).get("isHistory", False))
    return dict(item["data_fields"])


def item_children(resp: httpx.Response, field_name: str) -> list[dict[str, Any]]:
    """`data_fields` of the children `field_name` (e.g. `demographics`) of a single-object JSON document."""
    items = resp.json()["items"]
    item = next(i for i in items if not i.get("meta", {}).get("isHistory", False))
    out: list[dict[str, Any]] = []
    for child in item.get("children", []):
        if child.get("field") == field_name:
            out.extend(dict(c.get("data_fields", {})) for c in child.get("items", []))
    return out


def zip_members(data: bytes) -> dict[str, bytes]:
    """Name -> content of every file member (directories left out) of a zip body."""
    assert data[:2] == b"PK", f"not a zip: {data[:120]!r}"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buf.getvalue()


def assert_plain_error(resp: httpx.Response, *statuses: int) -> None:
    """A 4xx with a short plain-text reason (never HTML, never empty), optionally one of `statuses`."""
    if statuses:
        assert resp.status_code in statuses, f"expected {statuses}: {describe(resp)}"
    else:
        assert 400 <= resp.status_code < 500, f"expected a 4xx: {describe(resp)}"
    ctype = resp.headers.get("content-type", "")
    assert ctype.startswith("text/plain"), f"error body should be text/plain: {describe(resp)}"
    assert resp.content.strip(), f"error without a reason: {describe(resp)}"
    assert not looks_like_html(resp.content), f"HTML error body: {describe(resp)}"


def create_project(client: httpx.Client, pid: str, prefix: str = "/data") -> None:
    r = client.put(f"{prefix}/projects/{pid}", params={"xsiType": "xnat:projectData", "name": pid})
    assert r.status_code in (200, 201), describe(r)


def create_subject(client: httpx.Client, pid: str, label: str) -> str:
    r = client.put(f"/data/projects/{pid}/subjects/{label}", params={"xsiType": "xnat:subjectData"})
    assert r.status_code in (200, 201), describe(r)
    return r.text.strip()


def create_experiment(
    client: httpx.Client, pid: str, subject: str, label: str, xsi_type: str = "xnat:mrSessionData"
) -> str:
    r = client.put(
        f"/data/projects/{pid}/subjects/{subject}/experiments/{label}",
        params={"xsiType": xsi_type},
    )
    assert r.status_code in (200, 201), describe(r)
    return r.text.strip()


def file_names(client: httpx.Client, files_uri: str) -> dict[str, dict[str, Any]]:
    """Listing of `.../files` keyed by the path after the last `/files/` of each row's URI."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows(client.get(files_uri, params={"format": "json"})):
        uri = str(row.get("URI", ""))
        key = uri.split("/files/", 1)[1] if "/files/" in uri else str(row.get("Name"))
        out[key] = row
    return out


@dataclass
class CurlResult:
    status: int
    headers: dict[str, str]
    body: bytes
    argv: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        ctype = self.headers.get("content-type")
        return f"curl {' '.join(self.argv)} -> {self.status} {ctype!r} {self.body[:300]!r}"


def curl(*args: str, cwd: Path | None = None, timeout: float = 120) -> CurlResult:
    """Run the real curl binary with the given arguments (exactly as a user would type them).

    Only output plumbing is added (`-sS`, `-D` for the headers, `-w` for the status); the request itself
    is what the arguments say. When the caller passes `-o FILE`, the body is read back from that file.
    """
    with tempfile.TemporaryDirectory() as tmp:
        hdr = Path(tmp) / "headers"
        body_file = Path(tmp) / "body"
        argv = list(args)
        has_output = "-o" in argv
        extra = ["-sS", "-D", str(hdr), "-w", "%{http_code}"]
        if not has_output:
            extra += ["-o", str(body_file)]
        proc = subprocess.run(
            ["curl", *extra, *argv], cwd=cwd, capture_output=True, timeout=timeout, check=False
        )
        assert proc.returncode == 0, f"curl {argv} failed ({proc.returncode}): {proc.stderr!r}"
        status = int(proc.stdout.decode().strip()[-3:])
        headers: dict[str, str] = {}
        for line in hdr.read_text("latin-1").splitlines():
            if line.upper().startswith("HTTP/"):
                headers = {}  # keep only the last response's headers
            elif ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if has_output:
            out = Path(argv[argv.index("-o") + 1])
            if not out.is_absolute() and cwd is not None:
                out = cwd / out
            body = out.read_bytes() if out.exists() else b""
        else:
            body = body_file.read_bytes() if body_file.exists() else b""
        return CurlResult(status=status, headers=headers, body=body, argv=argv)
