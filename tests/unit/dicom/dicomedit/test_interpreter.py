"""Statements applied to a real Siemens MR object: assignment, deletion, conditionals, blocks,
sequences, private tags, echo, reject; and XNAT's default site script."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import FileDataset
from pydicom.tag import Tag

from xnatd.dicom.dicomedit import XNAT_DEFAULT_SCRIPT, Rejected, apply, parse
from xnatd.dicom.dicomedit.uids import hash_uid
from xnatd.errors import ScriptError

XNAT = {"project": "PROJ1", "subject": "SUBJ1", "session": "SESS1", "modality": "MR"}


def _private(ds: FileDataset, group: int, creator: str, offset: int) -> object:
    return ds.private_block(group, creator)[offset].value


def test_xnat_default_script_sets_exactly_its_three_attributes(siemens: FileDataset) -> None:
    original = pydicom.dcmread(siemens.filename)
    outcome = apply(parse(XNAT_DEFAULT_SCRIPT), siemens, XNAT)
    assert not isinstance(outcome, Rejected)
    assert siemens.StudyDescription == "PROJ1"
    assert siemens.PatientName == "SUBJ1"
    assert siemens.PatientID == "SESS1"
    assert [(c.keyword, c.before, c.after) for c in outcome.changes] == [
        ("StudyDescription", "FMRIF^QA", "PROJ1"),
        ("PatientName", "Test^Regression", "SUBJ1"),
        ("PatientID", "DEV", "SESS1"),
    ]
    changed = {Tag(0x0008, 0x1030), Tag(0x0010, 0x0010), Tag(0x0010, 0x0020)}
    untouched = [el.tag for el in original if el.tag not in changed and siemens[el.tag].value != el.value]
    assert untouched == []


def test_xnat_default_script_keeps_study_description_for_unassigned(siemens: FileDataset) -> None:
    apply(parse(XNAT_DEFAULT_SCRIPT), siemens, {**XNAT, "project": "Unassigned"})
    assert siemens.StudyDescription == "FMRIF^QA"
    assert siemens.PatientName == "SUBJ1"


def test_assignment_creates_and_deletion_removes(siemens: FileDataset) -> None:
    assert "PatientComments" not in siemens
    outcome = apply(parse('(0010,4000) := "none"\n- (0010,0030)\n- (0010,2160)\n'), siemens)
    assert siemens.PatientComments == "none"
    assert "PatientBirthDate" not in siemens
    assert [(c.tag, c.before, c.after) for c in outcome.changes] == [
        ("(0010,4000)", None, "none"),
        ("(0010,0030)", "19700101", None),
    ]


def test_assign_if_exists_leaves_absent_attributes_absent(siemens: FileDataset) -> None:
    apply(parse('(0010,4000) ?= "x"\n(0010,1010) ?= "050Y"\n'), siemens)
    assert "PatientComments" not in siemens
    assert siemens.PatientAge == "050Y"


def test_sequence_item_and_all_items(siemens: FileDataset) -> None:
    refs = [item.ReferencedSOPInstanceUID for item in siemens.SourceImageSequence]
    apply(parse('(0008,2112)[1]/(0008,1155) := "1.2.3"\n(0008,1140)[%]/(0008,1150) := "1.2.4"\n'), siemens)
    assert [i.ReferencedSOPInstanceUID for i in siemens.SourceImageSequence] == [refs[0], "1.2.3", *refs[2:]]
    assert {i.ReferencedSOPClassUID for i in siemens.ReferencedImageSequence} == {"1.2.4"}


def test_depth_wildcards(siemens: FileDataset) -> None:
    top = siemens.SOPInstanceUID
    outcome = apply(parse("- +/(0008,1155)\n"), siemens)
    assert all("ReferencedSOPInstanceUID" not in i for i in siemens.SourceImageSequence)
    assert all("ReferencedSOPInstanceUID" not in i for i in siemens.ReferencedImageSequence)
    assert len(outcome.changes) == 3 + 5
    apply(parse('*/(0008,0018) := "1.9"\n./(0008,1150) := "1.8"\n'), siemens)
    assert siemens.SOPInstanceUID == "1.9" != top
    assert {i.ReferencedSOPClassUID for i in siemens.SourceImageSequence} == {"1.8"}


def test_hex_digit_wildcards(siemens: FileDataset) -> None:
    # X any digit, # an odd one, @ an even one.
    apply(parse('(0008,103X) := "w"\n(0008,10#0) := "odd"\n- (0008,10@0)\n'), siemens)
    assert siemens.SeriesDescription == "w"
    assert siemens.StudyDescription == siemens.StationName == siemens.ManufacturerModelName == "odd"
    assert "InstitutionalDepartmentName" not in siemens  # (0008,1040)
    assert siemens.PatientName == "Test^Regression"


def test_private_creator_resolution(siemens: FileDataset) -> None:
    before = _private(siemens, 0x0019, "SIEMENS MR HEADER", 0x08)
    outcome = apply(
        parse('(0019,{SIEMENS MR HEADER}08) := "IMAGE NUM 9"\n(0021,{XNATD TEST}10) := "hello"\n'), siemens
    )
    assert _private(siemens, 0x0019, "SIEMENS MR HEADER", 0x08) == "IMAGE NUM 9" != before
    assert _private(siemens, 0x0021, "XNATD TEST", 0x10) == "hello"
    assert [c.path for c in outcome.changes] == [
        "(0019,{SIEMENS MR HEADER}08)",
        "(0021,0010)",
        "(0021,{XNATD TEST}10)",
    ]


def test_remove_all_private_tags_at_every_level(siemens: FileDataset) -> None:
    assert any(el.tag.is_private for el in siemens)
    apply(parse("removeAllPrivateTags\n"), siemens)
    assert not any(el.tag.is_private for el in siemens)
    assert not any(el.tag.is_private for item in siemens.SourceImageSequence for el in item)
    assert siemens.PatientName == "Test^Regression"


def test_retain_private_tags_keeps_listed_ones_and_their_creators(siemens: FileDataset) -> None:
    kept = _private(siemens, 0x0019, "SIEMENS MR HEADER", 0x08)
    csa = siemens.private_block(0x0029, "SIEMENS CSA HEADER")
    csa_1x = {
        el.tag for el in siemens if el.tag.group == 0x0029 and el.tag.element >> 4 == csa.block_start >> 4 | 1
    }
    assert csa_1x
    apply(
        parse('retainPrivateTags["(0019,{SIEMENS MR HEADER}08)", (0029,{SIEMENS CSA HEADER}1X)]\n'), siemens
    )
    private = {el.tag for el in siemens if el.tag.is_private}
    assert _private(siemens, 0x0019, "SIEMENS MR HEADER", 0x08) == kept
    creators = {
        Tag(0x0019, siemens.private_block(0x0019, "SIEMENS MR HEADER").block_start >> 8),
        Tag(0x0029, csa.block_start >> 8),
    }
    mr_08 = Tag(0x0019, siemens.private_block(0x0019, "SIEMENS MR HEADER").block_start | 0x08)
    assert private == csa_1x | creators | {mr_08}
    with pytest.raises(KeyError):
        siemens.private_block(0x0029, "SIEMENS MEDCOM HEADER2")


CONDITIONALS = """\
version "6.1"
(0008,0060) = "CT" ? (0008,103E) := "ct" : (0008,103E) := "not ct"
(0010,0010) ~ "Test\\^.*" ? (0010,4000) := "matched"
(0010,0010) !~ "Test.*" ? - (0010,0020)
!isPresent[(0010,2160)] ? (0010,2160) := "none"
if modality = "CT" {
  (0008,1030) := "ct"
} elseif (0020,0011) != "4" {
  (0008,1030) := "series"
}
else {
  removeAllPrivateTags
}
"""


def test_conditionals_and_blocks(siemens: FileDataset) -> None:
    apply(parse(CONDITIONALS), siemens, {"modality": "MR"})
    assert siemens.SeriesDescription == "not ct"
    assert siemens.PatientComments == "matched"
    assert siemens.PatientID == "DEV"
    assert siemens.EthnicGroup == "none"
    assert siemens.StudyDescription == "series"
    assert any(el.tag.is_private for el in siemens)  # the else branch did not run


def test_else_branch_runs_when_no_condition_holds(siemens: FileDataset) -> None:
    apply(parse(CONDITIONALS.replace('!= "4"', '= "4"')), siemens, {"modality": "MR"})
    assert siemens.StudyDescription == "FMRIF^QA"
    assert not any(el.tag.is_private for el in siemens)


def test_user_variables_echo_and_reject(siemens: FileDataset) -> None:
    script = parse(
        'label := format["{0}_{1}", project, (0020,0011)]\necho "label:", label\n(0010,0020) := label\n'
    )
    outcome = apply(script, siemens, {"project": "P"})
    assert siemens.PatientID == "P_3"
    assert outcome.echoes == ["label:P_3"]
    rejected = apply(parse('(0008,0060) = "MR" ? reject["no MR here"]\n(0010,0010) := "late"\n'), siemens)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "no MR here"
    assert siemens.PatientName == "Test^Regression"  # statements after reject did not run


def test_a_statement_the_dataset_cannot_take_fails_at_its_line(siemens: FileDataset) -> None:
    with pytest.raises(ScriptError) as caught:
        apply(parse('version "6.1"\n(0028,0010) := "many"\n'), siemens)  # Rows is US
    assert (caught.value.line, caught.value.column) == (2, 1)
    assert "(0028,0010)" in caught.value.reason


def test_hash_uid_of_an_attribute_is_stable_across_objects(siemens: FileDataset, read) -> None:  # type: ignore[no-untyped-def]
    study = siemens.StudyInstanceUID
    script = parse("(0020,000D) := hashUID[(0020,000D)]\n")
    apply(script, siemens)
    other = read()
    apply(script, other)
    assert siemens.StudyInstanceUID == other.StudyInstanceUID == hash_uid(study) != study
