"""Schemathesis against xnatd's own OpenAPI document (issue #9): no input may make the server answer 5xx.

A real server (``tests/support/live_server.py``) holds a small project whose objects are the path
examples of the document, so generated requests reach real projects, subjects, sessions, scans,
resources and files. The schemathesis CLI runs as a subprocess, logged in as the site administrator
(Basic auth), with a fixed seed and a bounded number of examples per operation; its HAR report is read
back to count the requests by status class. ``docs/openapi.md`` says how to run it longer.

Two passes: everything but DELETE, then the DELETEs (which remove the objects the first pass needs).
Left out altogether, because they would end the run's own login: ``PUT /xapi/users/profile`` (may
change or disable the administrator's account) and ``POST /app/logout``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import ADMIN, REPO, LiveServer, free_port, live_server

ST = REPO / ".venv" / "bin" / "st"
SEED = int(os.environ.get("XNATD_FUZZ_SEED", "20261123"))
# Examples per operation in the first pass and the DELETE pass; raise them to fuzz longer.
MAX_EXAMPLES = int(os.environ.get("XNATD_FUZZ_EXAMPLES", "8"))
RUN_TIMEOUT = int(os.environ.get("XNATD_FUZZ_TIMEOUT", "2400"))  # seconds for one schemathesis pass
EXCLUDED = ("PUT /xapi/users/profile", "POST /app/logout")

pytestmark = pytest.mark.slow


def examples(document: dict[str, Any]) -> dict[str, str]:
    """Path parameter examples of the document, by parameter name."""
    found: dict[str, str] = {}
    for item in document["paths"].values():
        for param in item.get("parameters", []):
            found.setdefault(param["name"], param["example"])
    return found


def populate(http: httpx.Client, ex: dict[str, str]) -> None:
    """The objects the document's examples name, each with a resource holding one file."""
    for project in (ex["project"], ex["share_project"]):
        http.put(f"/data/projects/{project}").raise_for_status()
    subject = f"/data/projects/{ex['project']}/subjects/{ex['subject']}"
    session = f"{subject}/experiments/{ex['experiment']}"
    objects = {
        f"/data/projects/{ex['project']}": None,
        subject: None,
        session: "xnat:mrSessionData",
        f"{session}/scans/{ex['scan']}": "xnat:mrScanData",
        f"{session}/assessors/{ex['assessor']}": "xnat:qcAssessmentData",
        f"{session}/reconstructions/{ex['reconstruction']}": "xnat:reconstructedImageData",
    }
    for path, xsi_type in objects.items():
        if xsi_type or path != f"/data/projects/{ex['project']}":
            http.put(path, params={"xsiType": xsi_type} if xsi_type else None).raise_for_status()
        url = f"{path}/resources/{ex['resource']}/files/{ex['file']}"
        http.put(url, content=b"fuzz target\n").raise_for_status()
    http.post("/xapi/users", json={"username": ex["name"], "password": "oapi-pass"}).raise_for_status()
    receiver = {"aeTitle": "OAPI", "port": free_port(), "enabled": False}
    assert http.post("/xapi/dicomscp", json=receiver).json()["id"] == int(ex["id"])
    assert http.get(f"/data/experiments/{ex['experiment_id']}").status_code == 200


def run_schemathesis(server: LiveServer, out: Path, name: str, *filters: str) -> list[int]:
    """One CLI run; answers the status of every request it made (from its HAR report)."""
    har = out / f"{name}.har"
    args = [
        str(ST), "run", f"{server.url}/xapi/openapi.json",
        "--auth", f"{ADMIN[0]}:{ADMIN[1]}",
        "--checks", "not_a_server_error",
        "--phases", os.environ.get("XNATD_FUZZ_PHASES", "examples,coverage,fuzzing"),
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-database", "none",
        "--no-shrink",
        "--workers", "1",
        "--request-timeout", "60",
        "--suppress-health-check", "all",
        "--warnings", "off",
        "--no-color",
        "--report", "har", "--report-har-path", str(har),
        *[arg for op in EXCLUDED for arg in ("--exclude-name", op)],
        *filters,
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=out)
    print(proc.stdout[-3000:])
    generated = re.search(r"(\d+) generated", proc.stdout)
    print(
        f"schemathesis {name}: exit {proc.returncode} in {time.monotonic() - started:.1f} s, "
        f"{generated.group(1) if generated else '?'} test cases generated"
    )
    entries = json.loads(har.read_text())["log"]["entries"]
    assert entries, f"schemathesis made no request:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"schemathesis found failures:\n{proc.stdout[-6000:]}{proc.stderr[-2000:]}"
    return [int(e["response"]["status"]) for e in entries]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server holding the objects the document's examples name (the tests below run in order:
    the regressions read them, the fuzz run deletes them at its end)."""
    with live_server(tmp_path_factory.mktemp("xnatd-fuzz") / "data") as srv, srv.client() as http:
        populate(http, examples(http.get("/xapi/openapi.json").json()))
        yield srv


def test_regressions_found_by_schemathesis(server: LiveServer) -> None:
    """What earlier runs found: each answered 500 before its fix."""
    with server.client() as http:
        exp = http.get("/data/experiments/XNAT_E00001", params={"format": "json"}).json()
        label = exp["items"][0]["data_fields"]["label"]
        # PUT on the accession-ID shortcut with a document: updated in its own project (was an assertion).
        xml = {"Content-Type": "application/xml"}
        r = http.put("/data/experiments/XNAT_E00001", content=b"<data></data>", headers=xml)
        assert r.status_code in (200, 400), r.text
        r = http.put("/data/subjects/XNAT_S00001", params={"xnat:subjectData/demographics/gender": "female"})
        assert r.status_code == 200, r.text
        subject = http.get("/data/subjects/XNAT_S00001", params={"format": "json"}).json()
        assert subject["items"][0]["data_fields"]["label"] == label.replace("_E1", "_S1")
        # JSON bodies that are not UTF-8 text: 400 with a reason (was a UnicodeDecodeError).
        r = http.post(
            "/xapi/jobs/commands", content=b"\xe4d\x01\xff", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400 and "Malformed JSON" in r.text
        # A file whose name is not Latin-1 (headers are): downloaded with an RFC 6266 filename*.
        url = "/data/projects/OAPI/files/%7C%C2%B3%F2%A2%86%9D.txt"
        assert http.put(url, content=b"odd name\n").status_code == 200
        r = http.get(url)
        assert r.status_code == 200 and r.content == b"odd name\n", r.text
        assert "filename*=UTF-8''%7C%C2%B3%F2%A2%86%9D.txt" in r.headers["content-disposition"]
        # Numbers past 64 bits, and digits that are no numbers (``²``): 200/400/404, not an OverflowError.
        huge = "275841600160954056704"
        r = http.get(
            f"/data/projects/{exp['items'][0]['data_fields']['project']}/experiments", params={"limit": huge}
        )
        assert r.status_code == 200, r.text
        assert http.get("/data/projects", params={"offset": huge}).status_code == 200
        assert http.get("/xapi/jobs", params={"limit": "\u00b2"}).status_code == 400
        assert http.get(f"/xapi/jobs/{huge}").status_code == 404
        assert http.get(f"/xapi/dicomscp/{huge}").status_code == 404
        for level in ("\u00b2", "99", huge):
            r = http.get("/data/projects/OAPI/files", params={"format": "zip", "compression": level})
            assert r.status_code == 400, (level, r.status_code, r.text)


# About 20,000 requests: the wall time grows with the machine's load, so a bound of its own.
@pytest.mark.timeout(3600)
def test_no_input_makes_a_server_error(server: LiveServer, tmp_path: Path) -> None:
    with server.client() as http:
        statuses = run_schemathesis(server, tmp_path, "main", "--exclude-method", "DELETE")
        statuses += run_schemathesis(server, tmp_path, "delete", "--include-method", "DELETE")
        by_class = Counter(f"{s // 100}xx" for s in statuses)
        print(f"requests: {len(statuses)}; by status class: {dict(sorted(by_class.items()))}")
        assert by_class["5xx"] == 0, [s for s in statuses if s >= 500]
        assert http.get("/xapi/siteConfig/buildInfo").status_code == 200
        assert http.get("/data/projects", params={"format": "json"}).status_code == 200
        server_log = server.log.read_text(errors="replace")
        assert "Traceback" not in server_log, server_log[-4000:]
