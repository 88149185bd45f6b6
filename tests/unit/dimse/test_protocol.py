"""The receiver's own encoders and decoders, checked against pydicom and pynetdicom."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from xnatd.dimse import dimse, part10, status, upper_layer
from xnatd.errors import InvalidInput, StorageFull
from xnatd.services.ingest.dicom_receivers import Receiver, from_values, parse_rules

VERSIONS = Path(__file__).resolve().parents[3] / "src" / "xnatd" / "db" / "migrations" / "versions"


def test_command_set_read_and_answered() -> None:
    rq = Dataset()
    rq.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    rq.CommandField = 0x0001
    rq.MessageID = 7
    rq.Priority = 0
    rq.CommandDataSetType = 0x0000
    rq.AffectedSOPInstanceUID = "1.2.3.4.5"
    raw = encode(rq, True, True)
    assert raw is not None
    cmd = dimse.parse(raw)
    assert (cmd.field, cmd.message_id, cmd.has_dataset) == (1, 7, True)
    assert (cmd.sop_class, cmd.sop_instance) == ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5")
    rsp = decode(io.BytesIO(dimse.response(cmd, 0xC210, "cannot read it")), True, True)
    assert rsp.CommandField == 0x8001 and rsp.MessageIDBeingRespondedTo == 7 and rsp.Status == 0xC210
    assert rsp.ErrorComment == "cannot read it" and rsp.CommandDataSetType == 0x0101
    assert rsp.CommandGroupLength == len(dimse.response(cmd, 0xC210, "cannot read it")) - 12
    with pytest.raises(dimse.BadCommand):
        dimse.parse(raw[:-3])


def test_file_header_is_valid_part10(tmp_path: Path) -> None:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    body = encode(ds, True, True)  # implicit VR little endian
    assert body is not None
    path = tmp_path / "x.dcm"
    head = part10.file_header("1.2.840.10008.5.1.4.1.1.4", "1.2.3", "1.2.840.10008.1.2", "SCANNER")
    path.write_bytes(head + body)
    read = pydicom.dcmread(path)
    assert read.file_meta.MediaStorageSOPInstanceUID == "1.2.3"
    assert read.file_meta.SourceApplicationEntityTitle == "SCANNER"
    assert read.PatientName == "Doe^Jane"


def test_pdv_split_and_short_pdus() -> None:
    pdu = upper_layer.p_data(3, b"abcd")
    assert pdu[0] == upper_layer.P_DATA_TF
    items = list(upper_layer.pdvs(memoryview(pdu[6:])))
    assert [(c, h, bytes(f)) for c, h, f in items] == [(3, 3, b"abcd")]
    with pytest.raises(upper_layer.PeerGone):
        list(upper_layer.pdvs(memoryview(pdu[6:-1])))


def test_statuses_of_errors() -> None:
    assert status.of_error(StorageFull("full")) == 0xA700
    assert status.of_error(InvalidInput("bad")) == 0xC210
    assert status.of_error(OSError(5, "EIO")) & 0xFF00 == 0xA700
    assert status.of_error(RuntimeError("x")) == status.PROCESSING_FAILURE


def test_whitelist_and_routing_rules() -> None:
    r = Receiver("XNAT", 8104, whitelist_enabled=True, whitelist=("CT1", "MR1@10.0.0.5"))
    assert r.allows("CT1", "127.0.0.1") and r.allows("MR1", "10.0.0.5")
    assert not r.allows("MR1", "127.0.0.1") and not r.allows("PACS", "127.0.0.1")
    (rule,) = parse_rules(r"(0008,1030):Project:\s*(\w+)", "project")
    assert rule.tag == 0x00081030 and rule.group == 1
    (rule,) = parse_rules("(0010,0020):^(\\w+)_(\\w+)$:2", "session")
    assert rule.group == 2
    with pytest.raises(InvalidInput):
        parse_rules("0010,0020 no colon", "subject")
    with pytest.raises(InvalidInput):
        from_values({"ae_title": "A\\B", "port": 104})
    receiver = from_values(
        {"ae_title": "R", "port": 104, "routing_enabled": True, "project_routing": "(0008,0050):(.+)"}
    )
    assert receiver.rules["project"][0].tag == 0x00080050


def test_migrations_have_one_head() -> None:
    revisions, parents = set(), set()
    for f in VERSIONS.glob("*.py"):
        text = f.read_text()
        rev = text.split('\nrevision = "', 1)[1].split('"', 1)[0]
        down = text.split("\ndown_revision = ", 1)[1].split("\n", 1)[0].strip().strip('"')
        revisions.add(rev)
        parents.add(down)
    assert len(revisions - parents) == 1, sorted(revisions - parents)
