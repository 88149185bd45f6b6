"""XNAT's display fields that the type registry does not name: computed ones and second names.

XNAT's search answers name columns after *display fields* (``schemas/xnat/display/*_display.xml``).
Most are a registry field under an upper-case ID (``search_elements`` derives those from the
registry); the ones listed here are XNAT's extras that are computed (``PROJECT_OWNERS``,
``PROJ_MR_COUNT``, ``GENDER_TEXT``) or give a registry field a second name (``SUBJECTID``,
``SESSION_ID``). pyxnat's ``repr()`` of projects, subjects and experiments reads them from search
answers, and its ``select(type)`` asks for every field the catalogue lists, so the catalogue
(``search_elements.field_rows``) lists these too. Only the registry is imported here, so both the
catalogue and the search (``search_fields``) can build on this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xnatd.domain import types
from xnatd.domain.types import DATE, FLOAT, INTEGER, STRING

PROJECT, SUBJECT, EXPERIMENT, SCAN, RECON = "project", "subject", "experiment", "scan", "reconstruction"


@dataclass(frozen=True)
class Display:
    """One searchable field: its XNAT ID, header, type, and where its value comes from."""

    id: str
    header: str
    kind: str = STRING
    path: str | None = None  # registry field path below the element
    fact: str | None = None  # a value the search service computes for each object
    derive: Callable[[object], object] | None = None  # turns the path's value into the shown one
    only: str | None = None  # offered only for this type and its subtypes
    custom: str | None = None  # name of a custom variable (``*_FIELD_MAP=name``)


def _gender_text(value: object) -> object:
    return {"male": "M", "female": "F", "m": "M", "f": "F"}.get(str(value or "").lower(), "U")


def _handedness_text(value: object) -> object:
    return {"left": "L", "right": "R", "ambidextrous": "A", "l": "L", "r": "R", "a": "A"}.get(
        str(value or "").lower()
    )


def _counts(prefix: str, modalities: tuple[tuple[str, str], ...]) -> tuple[Display, ...]:
    return tuple(
        Display(f"{prefix}{name}_COUNT", f"{name} Count", INTEGER, fact=f"count:{xsi}")
        for name, xsi in modalities
    )


_COMMON = (
    Display("INSERT_DATE", "Inserted", DATE, fact="insert_date"),
    Display("INSERT_USER", "Creator", fact="insert_user"),
    Display("URI", "uri", fact="uri"),
)
EXTRA: dict[str, tuple[Display, ...]] = {
    PROJECT: (
        *_COMMON,
        Display("NAME_CSV", "Title", path="name"),
        Display("DESCRIPTION_CSV", "Description", path="description"),
        Display("PI", "PI", fact="pi"),
        Display("PROJECT_ACCESS", "Accessibility", fact="access"),
        Display("PROJECT_USERS", "Users", fact="users"),
        Display("PROJECT_OWNERS", "Owners", fact="owners"),
        Display("PROJECT_MEMBERS", "Members", fact="members"),
        Display("PROJECT_COLLABS", "Collaborators", fact="collaborators"),
        # XNAT's PROJ_UT_COUNT counts xnat:utSessionData, a type xnatd does not have: always empty.
        *_counts(
            "PROJ_",
            (
                ("MR", "xnat:mrSessionData"),
                ("CT", "xnat:ctSessionData"),
                ("PET", "xnat:petSessionData"),
                ("UT", "xnat:utSessionData"),
            ),
        ),
        Display("PROJ_PREARCHIVE_CODE", "Prearchive Code", INTEGER, fact="prearchive_code"),
    ),
    SUBJECT: (
        Display("SUBJECT_ID", "Subject", path="ID"),
        Display("SUBJECTID", "Subject", path="ID"),
        *_COMMON,
        Display("GENDER_TEXT", "M/F", path="demographics/gender", derive=_gender_text),
        Display("HANDEDNESS_TEXT", "Hand", path="demographics/handedness", derive=_handedness_text),
        Display("EDUC", "Education", INTEGER, path="demographics/education"),
        *_counts("", (("MR", "xnat:mrSessionData"),)),
        Display("INVEST_CSV", "PI", path="investigator/lastname"),
        Display("PROJECTS", "Projects", fact="projects"),
        Display("SUB_GROUP", "Group", path="group"),
        Display("SUBJECT_LABEL", "Subject", path="label"),
        Display("ADD_IDS", "Labels", fact="add_ids"),
    ),
    EXPERIMENT: (
        Display("SESSION_ID", "Session", path="ID"),
        *_COMMON,
        Display("LAST_MODIFIED", "Modified", DATE, fact="last_modified"),
        Display("SUBJECT_LABEL", "Subject Label", fact="subject_label", only="xnat:subjectAssessorData"),
        # XNAT's AGE: the session's own age, else the subject's, else from birth date and session date.
        Display("AGE", "Age", FLOAT, fact="age", only="xnat:subjectAssessorData"),
        Display("VISIT", "Visit ID", path="visit_id"),
        Display("TYPE", "Type", path="session_type", only="xnat:imageSessionData"),
        Display("INVEST_CSV", "PI", path="investigator/lastname"),
        Display("SCANNER_CSV", "Scanner", path="scanner", only="xnat:imageSessionData"),
        Display("OPERATOR_CSV", "Operator", path="operator", only="xnat:imageSessionData"),
        Display("PROJECTS", "Projects", fact="projects"),
    ),
    SCAN: (
        Display("IMAGE_SCANDATA_ID", "imagescandata_id", fact="scan_pk"),
        Display("SESSION_ID", "image_session_id", fact="session_id"),
        Display("SESSION_LABEL", "Session Label", fact="session_label"),
        Display("SUBJECT_ID", "Subject", fact="subject_id"),
        *_COMMON,
    ),
    RECON: (
        Display("SESSION_ID", "image_session_id", fact="session_id"),
        Display("SESSION_LABEL", "Session Label", fact="session_label"),
        Display("URI", "uri", fact="uri"),
    ),
}
# Columns of a bundle without search fields: XNAT's "listing" display plus what xnatpy's query
# objects build their URIs from (``{id}``, ``{project}``, ``{subjectid}``, ``{session_id}``).
DEFAULTS: dict[str, tuple[str, ...]] = {
    PROJECT: ("ID", "NAME", "DESCRIPTION", "SECONDARY_ID", "KEYWORDS", "PROJ_MR_COUNT", "PROJ_PET_COUNT",
              "PROJ_CT_COUNT", "PROJECT_ACCESS"),
    SUBJECT: ("SUBJECT_LABEL", "GENDER", "HANDEDNESS", "DOB", "EDUCATION", "SES", "MR_COUNT", "PROJECT",
              "SUBJECTID"),
    EXPERIMENT: ("SESSION_ID", "LABEL", "DATE", "PROJECT", "SUBJECT_ID", "SUBJECT_LABEL", "AGE",
                 "INSERT_DATE"),
    SCAN: ("PROJECT", "SESSION_LABEL", "ID", "TYPE", "QUALITY", "SERIES_DESCRIPTION", "NOTE", "FRAMES",
           "SESSION_ID", "URI"),
    RECON: ("SESSION_LABEL", "ID", "TYPE", "BASESCANTYPE", "SESSION_ID", "URI"),
}  # fmt: skip


def kind_of(xsi_type: str) -> str | None:
    """Which kind of stored object a type's rows are, or None for a type that is not searched."""
    if types.is_a(xsi_type, "xnat:projectData"):
        return PROJECT
    if types.is_a(xsi_type, "xnat:subjectData"):
        return SUBJECT
    if types.is_a(xsi_type, "xnat:experimentData"):
        return EXPERIMENT
    if types.is_a(xsi_type, "xnat:imageScanData"):
        return SCAN
    if types.is_a(xsi_type, "xnat:reconstructedImageData"):
        return RECON
    return None


def extra_fields(xsi_type: str) -> list[Display]:
    """XNAT's extra display fields of a type (those applicable to it), in catalogue order."""
    kind = kind_of(xsi_type)
    if kind is None:
        return []
    out = []
    for d in EXTRA[kind]:
        if d.only is not None and not types.is_a(xsi_type, d.only):
            continue
        if d.path is not None and types.resolve_field(xsi_type, d.path) is None:
            continue
        out.append(d)
    return out
