"""XNAT's default identification rules (xnat-api.md §5.1)."""

from __future__ import annotations

from xnatd.dicom.header import FileKeys
from xnatd.dicom.identify import Overrides, assignments, identify

PROJECTS = {"P1": "P1", "ALIAS1": "P1", "STUDYDESC": "P2", "ACC9": "P3"}


def known(candidate: str) -> str | None:
    return PROJECTS.get(candidate)


def test_comment_assignments_first_field_wins() -> None:
    keys = FileKeys(
        patient_comments="Project: P1 Subject: S01",
        study_comments="project:OTHER; session:S01_MR1, AA:true",
        additional_patient_history="Subject: IGNORED",
    )
    assert assignments(keys) == {"project": "P1", "subject": "S01", "session": "S01_MR1", "aa": "true"}
    ident = identify(keys, Overrides(), known)
    assert (ident.project, ident.subject, ident.session, ident.auto_archive) == ("P1", "S01", "S01_MR1", True)


def test_fallbacks_study_description_accession_then_unassigned() -> None:
    base = FileKeys(patient_name="Doe^John", patient_id="12 34", study_description="STUDYDESC")
    assert identify(base, Overrides(), known).project == "P2"
    acc = FileKeys(study_description="nope", accession_number="ACC9")
    assert identify(acc, Overrides(), known).project == "P3"
    assert identify(FileKeys(study_description="nope"), Overrides(), known).project is None


def test_unknown_comment_project_falls_through_to_the_next_rule() -> None:
    keys = FileKeys(patient_comments="Project: NOPE", study_description="STUDYDESC")
    assert identify(keys, Overrides(), known).project == "P2"


def test_labels_are_sanitised_and_defaulted() -> None:
    ident = identify(FileKeys(patient_name="Doe^John", patient_id="12 34/5"), Overrides(), known)
    assert ident.subject == "Doe_John" and ident.session == "12_34_5"
    assert identify(FileKeys(), Overrides(), known).session == "dicom_upload"


def test_parameters_override_headers_and_aliases_resolve() -> None:
    keys = FileKeys(patient_comments="Project: P1 Subject: A Session: B", patient_name="X", patient_id="Y")
    ident = identify(keys, Overrides("ALIAS1", "SUBJ", "SESS"), known)
    assert (ident.project, ident.subject, ident.session) == ("P1", "SUBJ", "SESS")
    assert identify(keys, Overrides(project="UNKNOWN"), known).project == "UNKNOWN"  # the service refuses it


def test_aa_flag_values() -> None:
    assert identify(FileKeys(patient_comments="AA: f"), Overrides(), known).auto_archive is False
    assert identify(FileKeys(patient_comments="AA:maybe"), Overrides(), known).auto_archive is None
