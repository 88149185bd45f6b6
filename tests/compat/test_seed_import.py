"""The DICOM import flows of the seed documents, sent by the real curl binary, on real DICOM.

Seed 000 ("Data import using CURL/REST"): one DICOM file per request (the 630-file fMRI series), then
``action=build``, ``action=commit``, ``/data/services/archive?overwrite=delete&src=..&dest=..``, a PDF
added to the session, and demographics set after archiving (which the seed says broke in XNAT).
The seed's script spells ``PASSORD=admin`` and then uses ``$PASSWORD``; the loop below sets the
variable it uses, and names the project ``ADCSFlorDicom`` (test_seed_commands.py already uses the
seed's ``ADCSFlor`` on the shared server). Seed 003 (LONI to XNAT): a zip to
``/REST/services/import?inbody=true&import-handler=DICOM-zip&dest=/prearchive/projects/CCF_TEST`` (its URL
quoted, as in a shell it must be), into ``CCF_DICOM`` (test_seed_commands.py uses ``CCF_TEST``).
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.compat.helpers import curl
from tests.support.dicom_copies import TESTDATA, dicom_files
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow
U = "admin:admin"
FORREST = TESTDATA / "studyforrest_func_1block" / "dicoms"
SEED_000_LOOP = r"""
set -e
USER=admin
PASSWORD=admin
PROJECT=ADCSFlorDicom
subject=P0001
session=P0001_01
for u in "$DICOMS"/*; do
erg=`curl -s -H 'Content-Type: application/dicom' \
    -X POST -u $USER:$PASSWORD \
    "$URL/xnat/data/services/import\
?inbody=true&PROJECT_ID=$PROJECT&SUBJECT_ID=$subject&EXPT_LABEL=$session" \
 --data-binary @$u | tr -d [:cntrl:]`
echo "$erg"
done
"""


def _zip(folder: Path, out: Path, dicom_only: bool = False) -> Path:
    """``folder`` zipped; ``dicom_only``: its DICOM files alone (the READMEs and licences of the test
    data would make XNAT's DICOM-zip importer refuse the upload, as xnatd's does)."""
    files = dicom_files(folder) if dicom_only else [p for p in sorted(folder.rglob("*")) if p.is_file()]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.write(p, str(p.relative_to(folder)))
    return out


def test_seed_000_one_file_per_request_then_build_commit_archive(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    http.put("/data/projects/ADCSFlorDicom")
    run = subprocess.run(
        ["bash", "-c", SEED_000_LOOP],
        env={"URL": server.url, "DICOMS": str(FORREST), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    answers = set(run.stdout.split())
    assert len(answers) == 1, answers  # all 630 files went to one prearchive session
    erg = answers.pop()
    assert erg.startswith("/data/prearchive/projects/ADCSFlorDicom/") and erg.endswith("/P0001_01")
    base = f"{server.url}/xnat"
    args = ["-X", "POST", "-u", U]
    assert curl(*args, f"{base}{erg}?action=build").status == 200
    commit = curl(*args, f"{base}{erg}?action=commit")
    assert commit.status == 200 and commit.text.strip() == erg  # project code 0: stays for archiving
    dest = "/archive/projects/ADCSFlorDicom/subjects/P0001"
    archive_url = f"{base}/data/services/archive?overwrite=delete&src={erg}&dest={dest}"
    res = curl(*args, archive_url)
    assert res.status == 200, str(res)
    assert res.text.strip() == "/data/archive/projects/ADCSFlorDicom/subjects/P0001/experiments/P0001_01"
    exp = "/data/projects/ADCSFlorDicom/subjects/P0001/experiments/P0001_01"
    scans = http.get(f"{exp}/scans", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert [(s["ID"], s["type"]) for s in scans] == [("401", "func_task-oneback_run-1")]
    files = http.get(f"{exp}/scans/401/resources/DICOM/files", params={"format": "json"}).json()["ResultSet"][
        "Result"
    ]
    assert len(files) == 630
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4 a report made outside XNAT\n%%EOF\n")
    url = f"{base}/data/archive{exp[len('/data') :]}/files/report.pdf?inbody=true&format=PDF"
    assert curl("-X", "PUT", "-u", U, url, "--data-binary", f"@{pdf}").status in (200, 201)
    assert http.get(f"{exp}/files/report.pdf").content == pdf.read_bytes()
    # "Add demographic information ... does not work anymore after the data has been moved" (seed 000)
    subj = f"{base}/data/projects/ADCSFlorDicom/subjects/P0001?gender=male&age=40"
    assert curl("-X", "PUT", "-u", U, subj).status in (200, 201)
    doc = http.get("/data/projects/ADCSFlorDicom/subjects/P0001", params={"format": "json"}).json()["items"][
        0
    ]
    demo = next(c for c in doc["children"] if c["field"] == "demographics")["items"][0]["data_fields"]
    assert demo["gender"] == "male" and int(demo["age"]) == 40


def test_seed_003_zip_to_prearchive_then_parameters(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    http.put("/data/projects/CCF_DICOM")
    dicoms = _zip(TESTDATA / "dcm_qa_nih", tmp_path / "dicoms.zip", dicom_only=True)
    query = "inbody=true&import-handler=DICOM-zip&dest=/prearchive/projects/CCF_DICOM"
    url = f"{server.url}/REST/services/import?{query}"
    res = curl("-u", U, url, "-X", "POST", "--data-binary", f"@{dicoms}")
    assert res.status == 200, str(res)
    uris = res.text.split()
    assert len(uris) == 2, "two scanners, two studies, two sessions"
    first = curl("-u", U, "-X", "POST", f"{server.url}/data/services/archive?src={uris[0]}")
    assert first.status == 200, str(first)
    clash = curl("-u", U, "-X", "POST", f"{server.url}/data/services/archive?src={uris[1]}")
    assert clash.status == 409, "the same PatientID makes the same label: XNAT's 409"
    second = curl("-u", U, "-X", "POST", f"{server.url}/data/services/archive?src={uris[1]}&label=DEV_2")
    assert second.status == 200, str(second)
    subject = first.text.strip().split("/")[6]
    assert subject == "Test_Regression"
    for path in (first.text.strip(), second.text.strip()):
        exp = http.get(path, params={"format": "json"}).json()["items"][0]
        assert exp["meta"]["xsi:type"] == "xnat:mrSessionData"
        assert exp["data_fields"]["scanner/manufacturer"] in ("GE MEDICAL SYSTEMS", "SIEMENS")
    rest = f"{server.url}/REST/projects/CCF_DICOM/subjects/{subject}"
    assert curl("-u", U, f"{rest}?xsiType=xnat:subjectData&gender=female", "-X", "PUT").status in (200, 201)
    exp_url = f"{rest}/experiments/DEV?xsiType=xnat:mrSessionData&scanner=SIEMENS"
    assert curl("-u", U, exp_url, "-X", "PUT").status == 200
    scan_url = f"{rest}/experiments/DEV/scans/4?xsiType=xnat:mrScanData&xnat:mrScanData/type=T1w"
    assert curl("-u", U, scan_url, "-X", "PUT").status == 200
    scan = http.get(
        f"/data/projects/CCF_DICOM/subjects/{subject}/experiments/DEV/scans/4", params={"format": "json"}
    )
    assert scan.json()["items"][0]["data_fields"]["type"] == "T1w"


@pytest.mark.parametrize(
    ("folder", "session_type", "scans"),
    [
        ("dcm_qa_ct_philips", "xnat:ctSessionData", {"100", "201"}),
        ("dcm_qa_ts", "xnat:mrSessionData", {str(n) for n in range(1, 10)}),
        ("xnat_test_resources/pet_enhanced_header_only", "xnat:petSessionData", {"1"}),
    ],
)
def test_odd_sets_as_zips_straight_to_the_archive(
    server: LiveServer, http: httpx.Client, tmp_path: Path, folder: str, session_type: str, scans: set[str]
) -> None:
    project = "SEEDODD"
    http.put(f"/data/projects/{project}")
    label = folder.replace("/", "_")
    dicoms = _zip(TESTDATA / folder, tmp_path / "set.zip")
    dest = f"/archive/projects/{project}/subjects/ODD/experiments/{label}"
    res = curl(
        "-u", U, "-X", "POST", f"{server.url}/data/services/import?dest={dest}", "--data-binary", f"@{dicoms}"
    )
    assert res.status == 200, str(res)
    exp = http.get(f"/data/projects/{project}/experiments/{label}", params={"format": "json"}).json()[
        "items"
    ][0]
    assert exp["meta"]["xsi:type"] == session_type
    listed = http.get(f"/data/projects/{project}/experiments/{label}/scans", params={"format": "json"})
    assert {s["ID"] for s in listed.json()["ResultSet"]["Result"]} == scans
