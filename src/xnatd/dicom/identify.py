"""Which project, subject and session a DICOM file belongs to: XNAT's default rules.

Import parameters win. Otherwise XNAT's ``ClassicDicomObjectIdentifier`` looks for ``Project:``,
``Subject:``, ``Session:`` and ``AA:`` assignments in PatientComments, StudyComments and
AdditionalPatientHistory; then the project falls back to StudyDescription and AccessionNumber (each
only if it names a project the sender may write to), the subject to PatientName and the session
label to PatientID. Derived labels are sanitised to XNAT's label alphabet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from xnatd.dicom.header import FileKeys
from xnatd.domain.labels import sanitize_label

DEFAULT_SESSION = "dicom_upload"
_ASSIGNMENT = re.compile(r"(?:^|[\s,;])(project|subject|session|aa)\s*:\s*([\w-]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Overrides:
    """Labels given with the import (``PROJECT_ID``, ``SUBJECT_ID``, ``EXPT_LABEL`` or ``dest``)."""

    project: str | None = None
    subject: str | None = None
    session: str | None = None


@dataclass(frozen=True)
class Identity:
    project: str | None  # None: the Unassigned prearchive
    subject: str
    session: str
    auto_archive: bool | None  # from an ``AA:`` assignment; None when the headers say nothing


def assignments(keys: FileKeys) -> dict[str, str]:
    """``key: value`` assignments from the three comment fields, the first field to give a key wins."""
    out: dict[str, str] = {}
    for text in (keys.patient_comments, keys.study_comments, keys.additional_patient_history):
        for key, value in _ASSIGNMENT.findall(text or ""):
            out.setdefault(key.lower(), value)
    return out


def identify(keys: FileKeys, given: Overrides, project_of: Callable[[str], str | None]) -> Identity:
    """Apply the rules; ``project_of(candidate)`` returns the project ID a candidate (ID or alias)
    names if the sender may import into it, else None."""
    found = assignments(keys)
    project = _project(keys, given, found, project_of)
    subject = given.subject or found.get("subject") or sanitize_label(keys.patient_name)
    session = given.session or found.get("session") or sanitize_label(keys.patient_id)
    return Identity(
        project=project,
        subject=sanitize_label(subject),
        session=sanitize_label(session, DEFAULT_SESSION),
        auto_archive=_flag(found.get("aa")),
    )


def _project(
    keys: FileKeys, given: Overrides, found: dict[str, str], project_of: Callable[[str], str | None]
) -> str | None:
    if given.project:
        return project_of(given.project) or given.project
    for candidate in (found.get("project"), keys.study_description, keys.accession_number):
        if candidate:
            resolved = project_of(candidate.strip())
            if resolved:
                return resolved
    return None


def _flag(value: str | None) -> bool | None:
    if not value:
        return None
    low = value.lower()
    if low in ("true", "t"):
        return True
    if low in ("false", "f"):
        return False
    return None
