"""Creating objects from XNAT XML documents (PUT/POST bodies), as XnatDataClient and lab scripts do
(shared/reference/xnat-api.md section 1.4: the item is built from the XML body, query params on top)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import httpx
import pytest

from tests.compat.helpers import create_subject, describe, item_children, item_fields, rows

pytestmark = pytest.mark.slow

NewId = Callable[[str], str]
NS = {"xnat": "http://nrg.wustl.edu/xnat"}


def test_subject_from_xml_with_demographics(http: httpx.Client, project: str, new_id: NewId) -> None:
    label = new_id("XS")
    doc = f"""<?xml version="1.0" encoding="UTF-8"?>
<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    project="{project}" label="{label}">
  <xnat:demographics xsi:type="xnat:demographicData">
    <xnat:gender>female</xnat:gender><xnat:handedness>right</xnat:handedness><xnat:age>51</xnat:age>
  </xnat:demographics>
</xnat:Subject>"""
    r = http.put(
        f"/data/projects/{project}/subjects/{label}", content=doc, headers={"Content-Type": "text/xml"}
    )
    assert r.status_code == 201, describe(r)
    sid = r.text.strip()
    got = http.get(f"/data/projects/{project}/subjects/{label}", params={"format": "json"})
    assert item_fields(got)["ID"] == sid
    demo = item_children(got, "demographics")
    assert demo and demo[0].get("gender") == "female" and str(demo[0].get("age")) == "51", demo
    assert demo[0].get("handedness") == "right", demo
    root = ET.fromstring(http.get(f"/data/subjects/{sid}", params={"format": "xml"}).content)
    assert root.get("label") == label
    assert root.findtext("xnat:demographics/xnat:gender", namespaces=NS) == "female"


def test_project_post_xml(http: httpx.Client, new_id: NewId) -> None:
    pid = new_id("XP")
    doc = f"""<xnat:Project xmlns:xnat="http://nrg.wustl.edu/xnat" ID="{pid}" secondary_ID="{pid}_s">
<xnat:name>Project {pid}</xnat:name><xnat:description>made from XML</xnat:description></xnat:Project>"""
    r = http.post("/data/projects", content=doc, headers={"Content-Type": "text/xml"})
    assert r.status_code in (200, 201), describe(r)
    assert r.text.strip().endswith(f"/data/projects/{pid}"), describe(r)
    listed = rows(
        http.get("/data/projects", params={"format": "json", "columns": "ID,name,description,secondary_ID"})
    )
    row = next(x for x in listed if x["ID"] == pid)
    assert (row["name"], row["description"], row["secondary_ID"]) == (
        f"Project {pid}",
        "made from XML",
        f"{pid}_s",
    )
    again = http.post("/data/projects", content=doc, headers={"Content-Type": "text/xml"})
    assert again.status_code == 409, describe(again)


def test_session_xml_with_scanner_and_scans(http: httpx.Client, project: str, new_id: NewId) -> None:
    """A session document with nested scans creates the scans too (nothing silently dropped)."""
    subject = new_id("S")
    create_subject(http, project, subject)
    label = new_id("MR")
    doc = f"""<xnat:MRSession xmlns:xnat="http://nrg.wustl.edu/xnat"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" label="{label}" project="{project}">
  <xnat:date>2022-02-02</xnat:date>
  <xnat:scanner manufacturer="GE" model="Signa">MR1</xnat:scanner>
  <xnat:scans>
    <xnat:scan ID="5" type="DWI" xsi:type="xnat:mrScanData">
      <xnat:series_description>dwi 64dir</xnat:series_description>
    </xnat:scan>
    <xnat:scan ID="6" type="T1" xsi:type="xnat:mrScanData"/>
  </xnat:scans>
  <xnat:fieldStrength>1.5</xnat:fieldStrength>
</xnat:MRSession>"""
    url = f"/data/projects/{project}/subjects/{subject}/experiments/{label}"
    r = http.put(url, content=doc, headers={"Content-Type": "application/xml"})
    assert r.status_code == 201, describe(r)
    fields = item_fields(http.get(url, params={"format": "json"}))
    assert fields["date"] == "2022-02-02"
    assert (fields.get("scanner"), fields.get("scanner/manufacturer"), fields.get("scanner/model")) == (
        "MR1",
        "GE",
        "Signa",
    ), fields
    assert str(fields.get("fieldStrength")) == "1.5", fields
    scans = rows(http.get(f"{url}/scans", params={"format": "json"}))
    assert sorted((s["ID"], s["type"], s["series_description"]) for s in scans) == [
        ("5", "DWI", "dwi 64dir"),
        ("6", "T1", ""),
    ], f"scans of the XML document: {scans}"


def test_xml_with_unknown_element_is_refused_not_silently_dropped(http: httpx.Client, project: str) -> None:
    """The query-string path answers 400 for an unknown field; an XML document carrying one must not be
    accepted with that element silently lost."""
    label = "UNKNOWN_EL"
    doc = f"""<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" project="{project}" label="{label}">
<xnat:no_such_element>important value</xnat:no_such_element></xnat:Subject>"""
    r = http.put(
        f"/data/projects/{project}/subjects/{label}", content=doc, headers={"Content-Type": "text/xml"}
    )
    assert 400 <= r.status_code < 500, f"unknown element accepted and dropped: {describe(r)}"
    assert r.headers.get("content-type", "").startswith("text/plain"), describe(r)
    assert (
        http.get(f"/data/projects/{project}/subjects/{label}", params={"format": "json"}).status_code == 404
    )
