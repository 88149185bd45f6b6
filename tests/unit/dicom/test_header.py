"""The fast header scanner agrees with pydicom, and non-DICOM input is refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from tests.support.dicom_copies import TESTDATA
from xnatd.dicom import header
from xnatd.dicom.header import NotDicom, read_keys


def _reference(path: Path) -> header.FileKeys:
    return header._keys_from_dataset(header.read_dataset(path))


def _testdata_files() -> list[Path]:
    files = [
        p for p in sorted(TESTDATA.rglob("*")) if p.is_file() and p.suffix not in (".md", ".txt", ".tsv")
    ]
    return [p for p in files if p.name not in ("LICENSE", "DIRFILE")]


def test_scanner_matches_pydicom_on_every_real_file() -> None:
    files = _testdata_files()
    assert len(files) > 1300
    mismatches = [p for p in files if read_keys(p) != _reference(p)]
    assert mismatches == []


def test_keys_from_memory_match_keys_from_the_file() -> None:
    """Archive members are read from memory (``keys_of``), other files from disk: same answers."""
    files = _testdata_files()[::7]
    assert [header.keys_of(p.read_bytes(), p.name) for p in files] == [read_keys(p) for p in files]


ODD = ["no_meta.dcm", "ExplVR_BigEndNoMeta.dcm", "ExplVR_LitEndNoMeta.dcm", "UN_sequence.dcm"]
ODD += ["MR_truncated.dcm", "empty_charset_LEI.dcm", "JPEG2000.dcm", "CT_small.dcm", "MR_small_bigendian.dcm"]


@pytest.mark.parametrize("name", ODD)
def test_odd_encodings_read_like_pydicom(name: str) -> None:
    path = Path(str(get_testdata_file(name)))
    try:
        ref = _reference(path)
    except NotDicom:
        pytest.skip("pydicom itself cannot read it")
    if not (ref.sop_instance_uid and ref.study_instance_uid and ref.series_instance_uid):
        with pytest.raises(NotDicom):
            read_keys(path)
        with pytest.raises(NotDicom):
            header.keys_of(path.read_bytes(), name)
        return
    assert read_keys(path) == ref
    assert header.keys_of(path.read_bytes(), name) == ref


def test_keys_of_a_known_file() -> None:
    path = TESTDATA / "dcm_qa_ts" / "1.dcm"
    keys = read_keys(path)
    assert keys.modality == "MR" and keys.series_number == "1"
    assert keys.sop_class_uid == "1.2.840.10008.5.1.4.1.1.4"
    assert keys.study_instance_uid and keys.series_instance_uid and keys.sop_instance_uid


def test_header_only_pet_is_readable() -> None:
    keys = read_keys(
        TESTDATA / "xnat_test_resources" / "pet_enhanced_header_only" / "testtoenhanceddynamicpet.dcm"
    )
    assert keys.modality == "PT"


@pytest.mark.parametrize(
    "content", [b"", b"hello, this is a README\n" * 40, bytes(range(256)) * 8, b"DICM" * 100]
)
def test_non_dicom_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "README.txt"
    path.write_bytes(content)
    with pytest.raises(NotDicom):
        read_keys(path)


def test_dicomdir_index_is_refused() -> None:
    with pytest.raises(NotDicom):
        read_keys(TESTDATA / "dcm_qa_ct_philips" / "S21570" / "S1000" / "DIRFILE")


def test_truncated_header_is_refused(tmp_path: Path) -> None:
    data = (TESTDATA / "dcm_qa_ts" / "1.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:300])
    with pytest.raises(NotDicom):
        read_keys(path)


def test_a_prefix_is_never_taken_for_the_whole_header() -> None:
    """A zip-import helper scans a member's first 16 KB: cut anywhere before the last wanted
    element, even exactly between two elements, the scanner asks for more instead of answering
    with what it found so far."""
    folder = TESTDATA / "dcm_qa_nih" / "20180918GE"
    path = next(p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".txt")
    data = path.read_bytes()
    whole = header.scan_keys(data)
    assert whole is not None and whole == read_keys(path)
    answers = {cut: header.scan_keys(data[:cut], whole=False) for cut in range(200, 8000)}
    partial = [cut for cut, keys in answers.items() if keys is not None and keys != whole]
    assert partial == []
    assert any(keys == whole for keys in answers.values())  # past the last wanted element: enough
