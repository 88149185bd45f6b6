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


# ---------------------------------------------------------------------------------------------
# XNAT's listing shortcuts (``XMLPathShortcuts``): the plain column names a REST listing takes, each
# standing for an XPath. A listing heads an XPath column with the shortcut whose XPath it is
# (``xnat:subjectData/label`` on an experiment listing comes back as ``subject_label``), any other with
# the lowercased XPath. Most are a registry field under its own name (``_named`` finds the type that
# declares it); the others are listed with their XPath: fields of another object (the subject, the
# session), XNAT's ``meta`` fields and the data type.
_META = "meta/insert_date", "meta/insert_user/login", "meta/last_modified"
META_KEYS = {"insert_date": _META[0], "insert_user": _META[1], "last_modified": _META[2]}
TYPE_PATH = "extension_item/element_name"  # XNAT's column of an object's data type: ``xsiType``


def _named(where: tuple[str, ...], names: str) -> dict[str, str]:
    out = {}
    for name in names.split():
        for xsi_type in where:
            owner = next(
                (t for t in types.lineage(xsi_type) if any(f.path == name for f in t.own_fields)), None
            )
            if owner is not None:
                out[name] = f"{owner.xsi_type}/{name}"
                break
    return out


def _meta(owner: str, *names: str) -> dict[str, str]:
    """XNAT's ``meta`` shortcuts of a type, and ``xsiType`` (its ``extension_item/element_name``)."""
    out = {name: f"{owner}/{META_KEYS[name]}" for name in names}
    out["xsiType"] = f"{owner}/{TYPE_PATH}"
    return out


def _investigator(owner: str, element: str = "investigator") -> dict[str, str]:
    return {f"pi_{n}": f"{owner}/{element}/{n}" for n in ("firstname", "lastname")}


_DEMOGRAPHICS = "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]"
_SESSION = {
    p: f"xnat:imageSessionData/{p.split('_')[1]}" for p in ("session_ID", "session_label", "session_project")
}
_EXPERIMENT_META = _meta("xnat:experimentData", *META_KEYS)
LISTING_SHORTCUTS: dict[str, dict[str, str]] = {
    "xnat:projectData": {
        **_named(("xnat:projectData",), "ID secondary_ID name description keywords"),
        "alias": "xnat:projectData/aliases/alias/alias",
        **_investigator("xnat:projectData", "PI"),
    },
    "xnat:subjectData": {
        **_named(("xnat:subjectData",), "project label ID group src"),
        **_investigator("xnat:subjectData"),
        **{f.path: f"{_DEMOGRAPHICS}/{f.path}" for f in types.fields_of("xnat:demographicData")},
        **{k: v for k, v in _meta("xnat:subjectData", *META_KEYS).items() if k != "xsiType"},
    },
    "xnat:experimentData": {
        **_named(
            ("xnat:mrSessionData",),
            "ID visit_id date time note project label scanner operator dcmAccessionNumber dcmPatientId "
            "dcmPatientName session_type modality UID coil fieldStrength marker stabilization subject_ID",
        ),
        **_investigator("xnat:experimentData"),
        "studyInstanceUID": "xnat:imageSessionData/UID",
        **{f"tracer_{n.lower() if n == 'totalMass' else n}": f"xnat:petSessionData/tracer/{n}"
           for n in ("name", "startTime", "dose", "totalMass")},
        "subject_label": "xnat:subjectData/label",
        "subject_project": "xnat:subjectData/project",
        **_SESSION,
        **_EXPERIMENT_META,
    },
    # XNAT's DERIVED_DATA: the assessors of a session.
    "xnat:imageAssessorData": {
        **_named(("xnat:experimentData",), "ID visit_id date time note project label"),
        **_investigator("xnat:experimentData"),
        **_SESSION,
        **_EXPERIMENT_META,
    },
    "xnat:imageScanData": {
        **_named(
            ("xnat:mrScanData",),
            "ID type UID note quality condition series_description documentation scanner modality frames "
            "coil fieldStrength marker stabilization",
        ),
        "orientation": "xnat:petScanData/parameters/orientation",
        "scanTime": "xnat:imageScanData/startTime",
        "xnat_imagescandata_id": "xnat:imageScanData/xnat_imagescandata_id",
        **_meta("xnat:imageScanData", *META_KEYS),
    },
    "xnat:reconstructedImageData": {
        **_named(("xnat:reconstructedImageData",), "ID type baseScanType"),
        "xnat_reconstructedimagedata_id": "xnat:reconstructedImageData/xnat_reconstructedimagedata_id",
        "xsiType": f"xnat:reconstructedImageData/{TYPE_PATH}",
    },
}  # fmt: skip
# A project's (or subject's) experiments: XNAT lists them as subject assessors, with the same shortcuts.
LISTING_SHORTCUTS["xnat:subjectAssessorData"] = LISTING_SHORTCUTS["xnat:experimentData"]
