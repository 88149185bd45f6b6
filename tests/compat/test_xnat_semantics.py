"""Status codes and bodies of create/update that scripts check (shared/reference/xnat-api.md section 1.4)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from tests.compat.helpers import describe, item_fields, rows

pytestmark = pytest.mark.slow

NewId = Callable[[str], str]


def test_create_then_update_statuses(http: httpx.Client, new_id: NewId) -> None:
    pid = new_id("P")
    r = http.put(f"/data/projects/{pid}", params={"xsiType": "xnat:projectData"})
    assert r.status_code == 200, describe(r)
    r = http.put(f"/data/projects/{pid}", params={"xsiType": "xnat:projectData", "description": "again"})
    assert r.status_code == 200, describe(r)

    r = http.put(f"/data/projects/{pid}/subjects/S1", params={"xsiType": "xnat:subjectData"})
    assert r.status_code == 201 and re.fullmatch(r"XNAT_S\d{5}", r.text.strip()), describe(r)
    sid = r.text.strip()
    r = http.put(
        f"/data/projects/{pid}/subjects/S1", params={"xsiType": "xnat:subjectData", "gender": "male"}
    )
    assert r.status_code == 200 and r.text.strip() in ("", sid), describe(r)

    exp = f"/data/projects/{pid}/subjects/S1/experiments/E1"
    r = http.put(exp, params={"xsiType": "xnat:mrSessionData"})
    assert r.status_code == 201 and re.fullmatch(r"XNAT_E\d{5}", r.text.strip()), describe(r)
    eid = r.text.strip()
    r = http.put(exp, params={"xsiType": "xnat:mrSessionData", "note": "n"})
    assert r.status_code == 200 and r.text.strip() in ("", eid), describe(r)
    # the same experiment by accession ID, globally and under the project
    assert item_fields(http.get(f"/data/experiments/{eid}", params={"format": "json"}))["label"] == "E1"
    assert (
        item_fields(http.get(f"/data/projects/{pid}/experiments/{eid}", params={"format": "json"}))["ID"]
        == eid
    )
    assert (
        item_fields(http.get(f"/data/projects/{pid}/subjects/{sid}", params={"format": "json"}))["label"]
        == "S1"
    )

    r = http.put(f"{exp}/scans/1", params={"xsiType": "xnat:mrScanData", "type": "T1"})
    assert r.status_code in (200, 201) and r.text.strip() in ("", "1"), describe(r)


def test_experiment_put_creates_unknown_subject(http: httpx.Client, project: str) -> None:
    """XNAT's SubjAssessmentResource creates the subject named in the URL when it does not exist."""
    r = http.put(
        f"/data/projects/{project}/subjects/NEWSUBJ/experiments/NEWEXP",
        params={"xsiType": "xnat:mrSessionData"},
    )
    assert r.status_code == 201, describe(r)
    subjects = rows(http.get(f"/data/projects/{project}/subjects", params={"format": "json"}))
    assert [x["label"] for x in subjects] == ["NEWSUBJ"]
    exps = rows(http.get(f"/data/projects/{project}/subjects/NEWSUBJ/experiments", params={"format": "json"}))
    assert [x["label"] for x in exps] == ["NEWEXP"]


def test_invalid_field_values_rejected_without_side_effects(http: httpx.Client, project: str) -> None:
    for params in ({"age": "abc"}, {"gender": "banana"}, {"dob": "1980-13-45"}):
        r = http.put(
            f"/data/projects/{project}/subjects/BAD", params={"xsiType": "xnat:subjectData", **params}
        )
        assert 400 <= r.status_code < 500, describe(r)
        assert r.headers.get("content-type", "").startswith("text/plain"), describe(r)
    assert rows(http.get(f"/data/projects/{project}/subjects", params={"format": "json"})) == []
