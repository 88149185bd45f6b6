"""File names: the original when it is safe, XNAT's template otherwise."""

from __future__ import annotations

from xnatd.dicom import naming
from xnatd.dicom.header import FileKeys

KEYS = FileKeys(
    sop_class_uid="1.2.840.10008.5.1.4.1.1.4", sop_instance_uid="1.2.3.4.5", study_instance_uid="1.2.3",
    series_number="4", instance_number="17",
)  # fmt: skip


def test_original_names_are_kept_when_safe() -> None:
    assert naming.choose("study/series/I10", KEYS, rename=False) == "I10"
    assert naming.choose("a\\b\\IM_0001.dcm", KEYS, rename=False) == "IM_0001.dcm"


def test_unsafe_or_renamed_files_get_the_template() -> None:
    template = naming.template_name(KEYS)
    assert template.startswith("1.2.3-4-17-") and template.endswith(".dcm")
    for bad in ("../x.dcm/..", "", None, ".hidden", "name with space.dcm", "a" * 300):
        assert naming.choose(bad, KEYS, rename=False) == template
    assert naming.choose("I10", KEYS, rename=True) == template


def test_template_differs_per_instance_and_is_one_segment() -> None:
    other = FileKeys(**{**KEYS.__dict__, "sop_instance_uid": "1.2.3.4.6"})
    assert naming.template_name(other) != naming.template_name(KEYS)
    hostile = FileKeys(study_instance_uid="../../etc", series_number="../x", instance_number="/")
    assert "/" not in naming.template_name(hostile)


def test_scan_folder() -> None:
    assert naming.scan_folder(KEYS) == "4"
    assert naming.scan_folder(FileKeys(series_number="+3")) == "_3"
    assert naming.scan_folder(FileKeys(series_instance_uid="1.2.3")) == "1_2_3"
