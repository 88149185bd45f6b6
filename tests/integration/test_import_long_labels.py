"""Over-long labels: refused (400) when given as parameters, cut to 255 characters when they come
from DICOM headers, so the object is filed over REST and over C-STORE (was ENAMETOOLONG: a 500, or
an acknowledged object quarantined from the spool)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pynetdicom import AE

from tests.support.dicom_copies import TESTDATA, dicom_files
from tests.support.live_server import LiveServer, free_port, live_server

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The value length:UserWarning")]
PROJECT = "LONGLBL"
CT = dicom_files(TESTDATA / "dcm_qa_ct_philips")[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    port = free_port()
    env = {"XNATD_DICOM_RECEIVERS": json.dumps([{"aeTitle": "LONG", "project": PROJECT, "port": port}])}
    data = tmp_path_factory.mktemp("longlabels") / "data"
    with live_server(data, "--dicom-port", str(port), env=env) as srv:
        srv.dicom_port = port  # type: ignore[attr-defined]
        with srv.client() as http:
            assert http.put(f"/data/projects/{PROJECT}").status_code == 200
        yield srv


def hostile_copy(tmp: Path) -> Path:
    """The CT file as a new study with a 300-character PatientID, SeriesNumber and InstanceNumber."""
    ds = pydicom.dcmread(CT)
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.PatientID = "P" * 300
    for tag in (0x00200011, 0x00200013):  # SeriesNumber, InstanceNumber: raw, past the IS limit
        ds[tag] = pydicom.DataElement(tag, "LO", "7" * 300)
    path = tmp / f"{uuid.uuid4().hex}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def sessions(http: httpx.Client) -> list[dict[str, str]]:
    r = http.get(f"/data/prearchive/projects/{PROJECT}", params={"format": "json"})
    assert r.status_code == 200, r.text
    return list(r.json()["ResultSet"]["Result"])


def test_long_label_parameters_are_refused(server: LiveServer) -> None:
    with server.client() as http:
        for key in ("EXPT_LABEL", "SUBJECT_ID", "PROJECT_ID"):
            params = {"PROJECT_ID": PROJECT, key: "L" * 256}
            r = http.post(
                "/data/services/import",
                params=params,
                content=CT.read_bytes(),
                headers={"Content-Type": "application/dicom"},
            )
            assert r.status_code == 400, (key, r.status_code, r.text[:200])
            assert "at most 255" in r.text
        ok = http.post(
            "/data/services/import",
            params={"PROJECT_ID": PROJECT, "EXPT_LABEL": "L" * 255},
            content=CT.read_bytes(),
            headers={"Content-Type": "application/dicom"},
        )
        assert ok.status_code == 200, ok.text
        assert any(s["name"] == "L" * 255 for s in sessions(http))


def test_long_header_values_are_cut_over_rest(server: LiveServer, tmp_path: Path) -> None:
    path = hostile_copy(tmp_path)
    with server.client() as http:
        r = http.post(
            "/data/services/import",
            params={"PROJECT_ID": PROJECT},
            content=path.read_bytes(),
            headers={"Content-Type": "application/dicom"},
        )
        assert r.status_code == 200, r.text
        uri = r.text.strip().splitlines()[-1]
        scans = http.get(f"/data{uri.removeprefix('/data')}/scans", params={"format": "json"})
        assert scans.status_code == 200, scans.text
    assert "P" * 255 in uri and "P" * 256 not in uri


def test_long_header_values_reach_the_prearchive_over_c_store(server: LiveServer, tmp_path: Path) -> None:
    path = hostile_copy(tmp_path)
    ae = AE("LONGSCU")
    meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
    ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", int(server.dicom_port), ae_title="LONG")  # type: ignore[attr-defined]
    assert assoc.is_established
    try:
        assert int(assoc.send_c_store(path).Status) == 0
    finally:
        assoc.release()
    study = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
    deadline = time.monotonic() + 120
    with server.client() as http:
        while time.monotonic() < deadline:
            found = [s for s in sessions(http) if s["tag"] == study]
            if found:
                break
            time.sleep(0.3)
        assert found, "the C-STORE object never reached the prearchive"
    assert found[0]["name"] == "P" * 255
