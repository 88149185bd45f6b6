"""Each built-in function, through a script applied to real DICOM."""

from __future__ import annotations

import uuid
from hashlib import sha1

import pydicom
import pytest
from pydicom.dataset import FileDataset

from tests.unit.dicom.dicomedit.conftest import JPEG2000, NATIVE
from xnatd.dicom.dicomedit import apply, parse
from xnatd.dicom.dicomedit.uids import hash_uid, is_valid_uid
from xnatd.errors import ScriptError


def _run(ds: FileDataset, line: str, **variables: str) -> str:
    """The value ``line`` (an expression) gives, by assigning it to Patient Comments."""
    apply(parse(f"(0010,4000) := {line}\n"), ds, variables)
    return str(ds.get("PatientComments", ""))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('format["{1}-{0}", (0010,0020), "x"]', "x-DEV"),
        ("lowercase[(0010,0010)]", "test^regression"),
        ("uppercase[(0008,103E)]", "EPI PE=AP"),
        ('replace[(0010,0010), "Regression", "R"]', "Test^R"),
        ("substring[(0010,0010), 0, 4]", "Test"),
        ("substring[(0010,0010), 5]", "Regression"),
        ('concatenate[(0010,0020), "-", (0020,0011)]', "DEV-3"),
        ('match[(0010,0010), "([A-Za-z]+)\\^(.*)", 2]', "Regression"),
        ('urlEncode["a b&c/d"]', "a+b%26c%2Fd"),
        ('getURLParam["http://host/x?project=P1&subject=S%201", "subject"]', "S 1"),
        ('shiftDateByIncrement[(0010,0030), "-1"]', "19691231"),
        ('shiftDateByIncrement[(0008,0020), 2, "weeks"]', "20181002"),
        ('shiftDateTimeByIncrement["20100430131041.40", 3600]', "20100430141041.40"),
        ('shiftDateTimeByIncrement["20200101120000+0100", -1, "days"]', "20191231120000+0100"),
        ("shiftDateTimeByIncrement[(0008,0022), 86400]", "20180919"),
    ],
)
def test_string_and_date_functions(siemens: FileDataset, expression: str, expected: str) -> None:
    assert _run(siemens, expression) == expected


def test_ismatch_and_is_present_as_conditions(siemens: FileDataset) -> None:
    apply(
        parse(
            'ismatch[(0010,0010), "Test.*"] ? (0010,4000) := "m"\n'
            'isPresent["(0010,2160)"] ? - (0010,0020)\n'
            'isPresent[(0010,0030)] ? (0010,0030) := ""\n'
        ),
        siemens,
    )
    assert siemens.PatientComments == "m"
    assert siemens.PatientID == "DEV"
    assert siemens.PatientBirthDate == ""


def test_hash_uid_is_xnats_version_5_uuid_under_2_25(siemens: FileDataset) -> None:
    study = siemens.StudyInstanceUID
    hashed = _run(siemens, "hashUID[(0020,000D)]")
    expected = uuid.UUID(bytes=sha1(study.encode()).digest()[:16], version=5)
    assert hashed == f"2.25.{expected.int}" == hash_uid(study)
    assert is_valid_uid(hashed)
    assert hash_uid("1.2.3") != hash_uid("1.2.4")


def test_new_uid_is_valid_and_new_each_time(siemens: FileDataset) -> None:
    script = parse("(0008,0018) := new UID\n(0020,000E) := newUID[]\n")
    apply(script, siemens)
    first = siemens.SOPInstanceUID
    apply(script, siemens)
    assert first != siemens.SOPInstanceUID
    assert is_valid_uid(first) and is_valid_uid(siemens.SeriesInstanceUID)
    assert first.startswith("2.25.")


def test_map_referenced_uids_hashes_references_not_class_uids(siemens: FileDataset) -> None:
    refs = [i.ReferencedSOPInstanceUID for i in siemens.SourceImageSequence]
    classes = [i.ReferencedSOPClassUID for i in siemens.SourceImageSequence]
    top = siemens.SOPInstanceUID
    apply(parse("mapReferencedUIDs[]\n"), siemens)
    assert [i.ReferencedSOPInstanceUID for i in siemens.SourceImageSequence] == [hash_uid(r) for r in refs]
    assert [i.ReferencedSOPClassUID for i in siemens.SourceImageSequence] == classes
    assert siemens.SOPInstanceUID == top  # top-level UIDs are hashUID's job


def test_hash_uid_list_and_map_referenced_uids_with_paths(siemens: FileDataset) -> None:
    frame = siemens.FrameOfReferenceUID
    refs = [i.ReferencedSOPInstanceUID for i in siemens.ReferencedImageSequence]
    apply(parse('hashUIDList["(0020,0052)"]\nmapReferencedUIDs["(0008,1140)[%]/(0008,1155)"]\n'), siemens)
    assert siemens.FrameOfReferenceUID == hash_uid(frame)
    assert [i.ReferencedSOPInstanceUID for i in siemens.ReferencedImageSequence] == [
        hash_uid(r) for r in refs
    ]


def test_set_delete_and_blank_values_take_tag_paths_as_strings(siemens: FileDataset) -> None:
    apply(
        parse('set["(0010,0020)", "X1"]\ndelete["(0010,0030)"]\nblankValues["(0008,0080)", "(0008,0081)"]\n'),
        siemens,
    )
    assert siemens.PatientID == "X1"
    assert "PatientBirthDate" not in siemens
    assert siemens.InstitutionName == siemens.InstitutionAddress == ""


def test_shift_date_time_sequence_by_increment(siemens: FileDataset) -> None:
    apply(parse('shiftDateTimeSequenceByIncrement[-86400, "*/(0008,002X)"]\n'), siemens)
    assert siemens.StudyDate == siemens.SeriesDate == siemens.AcquisitionDate == "20180917"


def test_shift_refuses_an_attribute_that_is_no_date(siemens: FileDataset) -> None:
    with pytest.raises(ScriptError, match="shiftDateByIncrement: \\(0010,0010\\) is PN, not DA"):
        apply(parse("(0010,4000) := shiftDateByIncrement[(0010,0010), 1]\n"), siemens)


def test_alter_pixels_paints_a_rectangle_in_native_pixel_data() -> None:
    ds = pydicom.dcmread(NATIVE)
    before = ds.pixel_array.copy()
    outcome = apply(parse('alterPixels["rectangle", "l=10, t=20, r=30, b=25", "solid", "v=7"]\n'), ds)
    after = pydicom.dcmread(NATIVE)
    after.PixelData = ds.PixelData
    pixels = after.pixel_array
    assert (pixels[20:25, 10:30] == 7).all()
    assert (pixels[:20] == before[:20]).all() and (pixels[25:] == before[25:]).all()
    assert (before[20:25, 10:30] != 7).any()
    assert outcome.changes[0].tag == "(7FE0,0010)"


def test_alter_pixels_refuses_compressed_pixel_data() -> None:
    ds = pydicom.dcmread(JPEG2000)
    data = ds.PixelData
    with pytest.raises(ScriptError, match="cannot be edited exactly") as caught:
        apply(parse('version "6.1"\nalterPixels["rectangle", "l=0, t=0, r=5, b=5", "solid", "v=0"]\n'), ds)
    assert caught.value.line == 2
    assert ds.PixelData == data


def test_refused_functions_say_why() -> None:
    with pytest.raises(ScriptError, match=r"getURL is not supported: .*network"):
        parse('(0010,0010) := getURL["http://example.org/"]\n')
