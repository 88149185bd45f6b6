"""A zip of several studies imported straight into the archive: archived together, each on its own.

``archiver.archive_all`` archives the studies of one upload in one transaction, a savepoint each:
a study that cannot be archived (its label is taken) is undone alone and left in the prearchive as
CONFLICT, the others are archived, and the answer says which.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dicom_copies import TESTDATA, copy_study, dicom_files
from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
SOURCE = TESTDATA / "dcm_qa_nih" / "20180918GE"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("archive_all") / "data") as srv:
        yield srv


def test_a_study_whose_label_is_taken_is_left_in_the_prearchive_the_others_are_archived(
    server: LiveServer, tmp_path: Path
) -> None:
    project = f"A{uuid.uuid4().hex[:8]}"
    first = copy_study(dicom_files(SOURCE)[:70], tmp_path / "a", "FIRST")
    taken = copy_study(dicom_files(SOURCE)[70:140], tmp_path / "b", "TAKEN")
    third = copy_study(dicom_files(SOURCE)[140:150], tmp_path / "c", "THIRD")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in first + taken + third:
            zf.write(f, f"{f.parent.name}/{f.name}")
    with server.client() as http:
        assert http.put(f"/data/projects/{project}").status_code == 200
        r = http.put(
            f"/data/projects/{project}/subjects/S/experiments/TAKEN", params={"xsiType": "xnat:mrSessionData"}
        )
        assert r.status_code in (200, 201), r.text
        r = http.post(
            "/data/services/import", params={"dest": f"/archive/projects/{project}"}, content=buf.getvalue()
        )
        assert r.status_code == 400, r.text  # a refusal of the archive (XNAT's DICOM-zip)
        assert "1 of 3 sessions failed" in r.text
        assert "/experiments/FIRST" in r.text and "/experiments/THIRD" in r.text  # done
        for label, files in (("FIRST", first), ("THIRD", third)):
            scans = http.get(
                f"/data/projects/{project}/experiments/{label}/scans/ALL/files", params={"format": "json"}
            )
            assert scans.status_code == 200, scans.text
            assert len(scans.json()["ResultSet"]["Result"]) == len(files)
        rows = http.get(f"/data/prearchive/projects/{project}", params={"format": "json"}).json()[
            "ResultSet"
        ]["Result"]
        assert [(row["name"], row["status"]) for row in rows] == [("TAKEN", "CONFLICT")]
        assert len(list((server.data / "prearchive" / project).rglob("*.dcm"))) == 70  # left whole
        src = f"/data/prearchive/projects/{project}/{rows[0]['timestamp']}/{rows[0]['name']}"
        dest = f"/archive/projects/{project}/subjects/S"  # where TAKEN is: merged into it
        r = http.post("/data/services/archive", params={"src": src, "dest": dest, "overwrite": "append"})
        assert r.status_code == 200, r.text
        files = http.get(
            f"/data/projects/{project}/experiments/TAKEN/scans/ALL/files", params={"format": "json"}
        )
        assert len(files.json()["ResultSet"]["Result"]) == 70
