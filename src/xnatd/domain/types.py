"""The data-type registry: every XNAT data type xnatd knows, and its fields.

This is the single source for validation of typed fields, for the XML and JSON item documents, for
listing columns addressed by XPath or shortcut, and for the XSD schemas that xnatpy downloads to
generate its classes. A field is written here once and nowhere else.

A field's ``path`` is its XNAT XPath below the element, without predicates, as XNAT's JSON
``data_fields`` keys spell it (``scanner/manufacturer``, ``parameters/voxelRes/x``). ``attr`` marks
the last segment as an XML attribute of the element named by the rest of the path (or of the root
element when the path has one segment).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from xnatd.errors import InvalidInput

STRING, INTEGER, FLOAT, DATE, TIME, BOOLEAN = "string", "integer", "float", "date", "time", "boolean"


@dataclass(frozen=True)
class Field:
    path: str
    kind: str = STRING
    attr: bool = False
    shortcut: str | None = None
    enum: tuple[str, ...] = ()
    doc: str = ""
    # The value is the element's own text rather than a child element or attribute (XSD simple
    # content with attributes): ``<xnat:field name="group">control</xnat:field>``.
    text: bool = False

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Ref:
    """A child element that holds other typed objects rather than a value (XNAT's reference fields).

    XNAT nests objects in their parent's document: one subject ``demographics`` object, a list of
    image-session ``scans/scan``. The XSD (and so xnatpy's sub-objects and listings) and the item
    documents' ``children`` follow these declarations, so they live here once.
    """

    name: str  # element below the parent: ``demographics``, ``scans``
    xsi_type: str  # declared type of the objects, often abstract: ``xnat:imageScanData``
    item: str | None = None  # repeated element inside ``name`` for a list (``scan``); None: one object
    doc: str = ""

    @property
    def many(self) -> bool:
        return self.item is not None

    @property
    def field(self) -> str:
        """The ``field`` key of this child in JSON item documents: ``demographics``, ``scans/scan``."""
        return f"{self.name}/{self.item}" if self.item else self.name


@dataclass(frozen=True)
class DataType:
    """One XNAT data type (``xsi:type``) with the fields it adds to its base."""

    xsi_type: str
    base: str | None
    element: str | None  # XML root element name for stand-alone documents, e.g. ``xnat:MRSession``
    own_fields: tuple[Field, ...] = ()
    abstract: bool = False
    modality: str | None = None
    doc: str = ""
    children: tuple[str, ...] = field(default=())  # reference fields, e.g. ``demographics``
    refs: tuple[Ref, ...] = ()  # child objects and listings this type adds (see ``Ref``)
    # Field that names an object within its parent (XNAT's ``displayIdentifiers``); xnatpy builds
    # creation URLs from it (a scan is created at ``scans/{ID}``, a subject at ``subjects/{label}``).
    display_id: str | None = None


def f(path: str, kind: str = STRING, **kw: object) -> Field:
    return Field(path, kind, **kw)  # type: ignore[arg-type]


# XNAT's investigatorData, kept inline (flattened) where subjects and experiments name one.
INVESTIGATOR = tuple(
    Field(f"investigator/{name}")
    for name in ("title", "firstname", "lastname", "institution", "department", "email", "phone")
)
GENDERS = ("male", "female", "other", "unknown", "M", "F")
_RESOURCES = Ref("resources", "xnat:abstractResource", "resource", doc="Folders of files.")
HANDEDNESS = ("right", "left", "ambidextrous", "unknown")

# Custom variables (XNAT's ``fields/field[name=X]``): the wrapper element and the item's two fields,
# its ``name`` attribute and its value, which is the ``field`` element's own text.
CUSTOM_FIELDS = "fields"
CUSTOM_NAME = Field("name", attr=True, doc="Name of the custom variable.")
CUSTOM_VALUE = Field("field", text=True, doc="Value of the custom variable.")


def _custom_fields(owner: str) -> Ref:
    """The custom variables of ``owner``: free name/value pairs under ``fields/field``.

    XNAT declares the item element inline, so its type is named after the owner
    (``xnat:subjectData_field``); the item types themselves are generated from these refs below.
    """
    return Ref(
        CUSTOM_FIELDS,
        f"{owner}_field",
        "field",
        doc="Custom variables: free name/value pairs, set as fields/field[name=X]/field.",
    )


_TYPES: list[DataType] = [
    DataType(
        "xnat:projectData",
        None,
        "xnat:Project",
        (
            f("ID", attr=True),
            f("secondary_ID", attr=True),
            f("name"),
            f("description"),
            f("keywords"),
            f("alias"),
            f("pi/firstname", shortcut="pi_firstname"),
            f("pi/lastname", shortcut="pi_lastname"),
        ),
        refs=(_RESOURCES, _custom_fields("xnat:projectData")),
        doc="A project: the unit of ownership and access.",
    ),
    DataType("xnat:abstractDemographicData", None, None, (), abstract=True),
    DataType(
        "xnat:demographicData",
        "xnat:abstractDemographicData",
        "xnat:demographicData",
        (
            f("dob", DATE),
            f("yob", INTEGER),
            f("age", INTEGER),
            f("gender", enum=GENDERS),
            f("handedness", enum=HANDEDNESS),
            f("ses", INTEGER),
            f("education", INTEGER),
            f("educationDesc"),
            f("race"),
            f("ethnicity"),
            f("weight", FLOAT),
            f("height", FLOAT),
            f("employment", INTEGER),
        ),
        doc="Subject demographics.",
    ),
    DataType(
        "xnat:subjectData",
        None,
        "xnat:Subject",
        (
            f("ID", attr=True),
            f("project", attr=True),
            f("label", attr=True),
            f("group", attr=True),
            f("src", attr=True),
            f("initials"),
            *INVESTIGATOR,
        ),
        children=("demographics",),
        refs=(
            Ref("demographics", "xnat:abstractDemographicData"),
            Ref("sharing", "xnat:projectParticipant", "share", doc="Projects this subject is shared into."),
            _RESOURCES,
            _custom_fields("xnat:subjectData"),
            Ref("experiments", "xnat:subjectAssessorData", "experiment"),
        ),
        display_id="label",
        doc="A research subject within a project.",
    ),
    DataType(
        "xnat:experimentData",
        None,
        None,
        (
            f("ID", attr=True),
            f("project", attr=True),
            f("label", attr=True),
            f("visit_id", attr=True),
            f("version", attr=True),
            f("original", attr=True),
            f("protocol", attr=True),
            f("date", DATE),
            f("time", TIME),
            f("duration"),
            f("delay", INTEGER),
            f("note"),
            *INVESTIGATOR,
            f("acquisition_site"),
        ),
        abstract=True,
        refs=(
            Ref(
                "sharing",
                "xnat:experimentData_share",
                "share",
                doc="Projects this experiment is shared into.",
            ),
            _RESOURCES,
            _custom_fields("xnat:experimentData"),
        ),
        display_id="label",
    ),
    DataType(
        "xnat:subjectAssessorData",
        "xnat:experimentData",
        None,
        (
            f("subject_ID"),
            f("age", FLOAT),
        ),
        abstract=True,
    ),
    DataType(
        "xnat:imageSessionData",
        "xnat:subjectAssessorData",
        None,
        (
            f("UID", attr=True),
            f("modality", attr=True),
            f("session_type", attr=True),
            f("scanner"),
            f("scanner/manufacturer", attr=True),
            f("scanner/model", attr=True),
            f("operator"),
            f("prearchivePath"),
            f("study_id"),
            f("dcmAccessionNumber"),
            f("dcmPatientId"),
            f("dcmPatientName"),
            f("dcmPatientBirthDate", DATE),
            f("dcmPatientWeight", FLOAT),
        ),
        abstract=True,
        refs=(
            Ref("scans", "xnat:imageScanData", "scan"),
            Ref("reconstructions", "xnat:reconstructedImageData", "reconstructedImage"),
            Ref("assessors", "xnat:imageAssessorData", "assessor"),
        ),
    ),
    DataType(
        "xnat:mrSessionData",
        "xnat:imageSessionData",
        "xnat:MRSession",
        (
            f("coil"),
            f("fieldStrength"),
            f("marker"),
            f("stabilization"),
        ),
        modality="MR",
        doc="MR imaging session.",
    ),
    DataType(
        "xnat:ctSessionData",
        "xnat:imageSessionData",
        "xnat:CTSession",
        (),
        modality="CT",
        doc="CT imaging session.",
    ),
    DataType(
        "xnat:petSessionData",
        "xnat:imageSessionData",
        "xnat:PETSession",
        (
            f("tracer/name"),
            f("tracer/dose", FLOAT),
            f("tracer/startTime"),
            f("tracer/totalMass", FLOAT),
        ),
        modality="PT",
        doc="PET imaging session.",
    ),
    DataType(
        "xnat:otherDicomSessionData",
        "xnat:imageSessionData",
        "xnat:OtherDicomSession",
        (),
        modality="OT",
        doc="Imaging session of another DICOM modality.",
    ),
    DataType("xnat:usSessionData", "xnat:imageSessionData", "xnat:USSession", (), modality="US"),
    DataType("xnat:crSessionData", "xnat:imageSessionData", "xnat:CRSession", (), modality="CR"),
    DataType("xnat:dxSessionData", "xnat:imageSessionData", "xnat:DXSession", (), modality="DX"),
    DataType("xnat:mgSessionData", "xnat:imageSessionData", "xnat:MGSession", (), modality="MG"),
    DataType("xnat:nmSessionData", "xnat:imageSessionData", "xnat:NMSession", (), modality="NM"),
    DataType("xnat:xaSessionData", "xnat:imageSessionData", "xnat:XASession", (), modality="XA"),
    DataType("xnat:srSessionData", "xnat:imageSessionData", "xnat:SRSession", (), modality="SR"),
    *(
        DataType(f"xnat:{m.lower()}SessionData", "xnat:imageSessionData", f"xnat:{m}Session", (), modality=m)
        for m in ("SM", "GM", "ES", "OP", "OPT", "RT", "XC", "ECG", "MEG", "EEG", "IO", "HD")
    ),
    DataType(
        "xnat:petmrSessionData",
        "xnat:petSessionData",
        "xnat:PETMRSession",
        (),
        doc="Simultaneous PET/MR session (kept as one session).",
    ),
    DataType("xnat:derivedData", "xnat:experimentData", None, (), abstract=True),
    DataType(
        "xnat:imageAssessorData",
        "xnat:derivedData",
        "xnat:ImageAssessor",
        (f("imageSession_ID"),),
        doc="A derived result about an image session.",
    ),
    DataType(
        "xnat:qcAssessmentData",
        "xnat:imageAssessorData",
        "xnat:QCAssessment",
        (
            f("type"),
            f("rater"),
            f("pass"),
            f("comments"),
        ),
        doc="Quality-control assessment of an image session.",
    ),
    DataType(
        "xnat:imageScanData",
        None,
        None,
        (
            f("ID", attr=True),
            f("type", attr=True),
            f("UID", attr=True),
            f("project", attr=True),
            f("image_session_ID"),
            f("note"),
            f("quality"),
            f("condition"),
            f("series_description"),
            f("documentation"),
            f("scanner"),
            f("scanner/manufacturer", attr=True),
            f("scanner/model", attr=True),
            f("modality"),
            f("frames", INTEGER),
            f("operator"),
            f("startTime", TIME),
            f("start_date", DATE),
            f("protocolName"),
            f("bodyPartExamined"),
            f("requestedProcedureDescription"),
        ),
        abstract=True,
        # Not in XNAT's own schema (its scans carry ``parameters/addParam`` instead): an xnatd
        # extension, so scans take custom variables as subjects and experiments do.
        refs=(_custom_fields("xnat:imageScanData"),),
        display_id="ID",
    ),
    DataType(
        "xnat:mrScanData",
        "xnat:imageScanData",
        "xnat:MRScan",
        (
            f("coil"),
            f("fieldStrength"),
            f("marker"),
            f("stabilization"),
            f("parameters/voxelRes/x", FLOAT, attr=True),
            f("parameters/voxelRes/y", FLOAT, attr=True),
            f("parameters/voxelRes/z", FLOAT, attr=True),
            f("parameters/orientation"),
            f("parameters/fov/x", INTEGER, attr=True),
            f("parameters/fov/y", INTEGER, attr=True),
            f("parameters/matrix/x", INTEGER, attr=True),
            f("parameters/matrix/y", INTEGER, attr=True),
            f("parameters/partitions", INTEGER),
            f("parameters/tr", FLOAT),
            f("parameters/te", FLOAT),
            f("parameters/ti", FLOAT),
            f("parameters/flip", INTEGER),
            f("parameters/sequence"),
            f("parameters/imageType"),
            f("parameters/scanSequence"),
            f("parameters/seqVariant"),
            f("parameters/scanOptions"),
            f("parameters/acqType"),
            f("parameters/pixelBandwidth", FLOAT),
        ),
        modality="MR",
        doc="MR scan.",
    ),
    DataType(
        "xnat:ctScanData",
        "xnat:imageScanData",
        "xnat:CTScan",
        (
            f("parameters/voxelRes/x", FLOAT, attr=True),
            f("parameters/voxelRes/y", FLOAT, attr=True),
            f("parameters/voxelRes/z", FLOAT, attr=True),
            f("parameters/orientation"),
            f("parameters/kvp", FLOAT),
            f("parameters/rescale/intercept", FLOAT, attr=True),
            f("parameters/rescale/slope", FLOAT, attr=True),
        ),
        modality="CT",
        doc="CT scan.",
    ),
    DataType(
        "xnat:petScanData",
        "xnat:imageScanData",
        "xnat:PETScan",
        (
            f("parameters/voxelRes/x", FLOAT, attr=True),
            f("parameters/voxelRes/y", FLOAT, attr=True),
            f("parameters/voxelRes/z", FLOAT, attr=True),
            f("parameters/orientation"),
            f("parameters/seriesType"),
            f("parameters/decayCorrection"),
            f("parameters/units"),
        ),
        modality="PT",
        doc="PET scan.",
    ),
    DataType("xnat:otherDicomScanData", "xnat:imageScanData", "xnat:OtherDicomScan", (), modality="OT"),
    DataType(
        "xnat:scScanData",
        "xnat:imageScanData",
        "xnat:SCScan",
        (),
        modality="SC",
        doc="Secondary-capture scan.",
    ),
    DataType("xnat:usScanData", "xnat:imageScanData", "xnat:USScan", (), modality="US"),
    DataType("xnat:crScanData", "xnat:imageScanData", "xnat:CRScan", (), modality="CR"),
    DataType("xnat:dxScanData", "xnat:imageScanData", "xnat:DXScan", (), modality="DX"),
    DataType("xnat:mgScanData", "xnat:imageScanData", "xnat:MGScan", (), modality="MG"),
    DataType("xnat:nmScanData", "xnat:imageScanData", "xnat:NMScan", (), modality="NM"),
    DataType("xnat:xaScanData", "xnat:imageScanData", "xnat:XAScan", (), modality="XA"),
    DataType("xnat:srScanData", "xnat:imageScanData", "xnat:SRScan", (), modality="SR"),
    DataType("xnat:segScanData", "xnat:imageScanData", "xnat:SegScan", (), modality="SEG"),
    *(
        DataType(f"xnat:{m.lower()}ScanData", "xnat:imageScanData", f"xnat:{m}Scan", (), modality=m)
        for m in ("SM", "GM", "ES", "OP", "OPT", "XC", "ECG", "MEG", "EEG", "IO", "HD")
    ),
    DataType("xnat:mrsScanData", "xnat:mrScanData", "xnat:MRSScan", (), doc="MR spectroscopy scan."),
    DataType("xnat:rtImageScanData", "xnat:imageScanData", "xnat:RTImageScan", (), modality="RTIMAGE"),
    DataType(
        "xnat:reconstructedImageData",
        None,
        "xnat:ReconstructedImage",
        (
            f("ID", attr=True),
            f("type", attr=True),
            f("baseScanType", attr=True),
            f("image_session_ID"),
        ),
        display_id="ID",
        doc="A reconstruction derived from an image session's scans.",
    ),
    DataType(
        "xnat:abstractResource",
        None,
        None,
        (
            f("label", attr=True),
            f("file_count", INTEGER, attr=True),
            f("file_size", INTEGER, attr=True),
            f("note"),
            f("tags/tag"),
        ),
        abstract=True,
        display_id="label",
    ),
    DataType(
        "xnat:resourceCatalog",
        "xnat:abstractResource",
        "xnat:resourceCatalog",
        (
            f("URI", attr=True),
            f("format", attr=True),
            f("description", attr=True),
            f("content", attr=True),
        ),
        doc="A folder of files (XNAT's catalog resource).",
    ),
    DataType(
        "xnat:projectParticipant",
        None,
        None,
        (
            f("label", attr=True),
            f("project", attr=True),
            f("subject_ID", attr=True),
            f("group", attr=True),
        ),
        display_id="project",
        doc="A subject's label in a project it is shared into (``sharing/share``).",
    ),
    DataType(
        "xnat:experimentData_share",
        None,
        None,
        (
            f("label", attr=True),
            f("project", attr=True),
            f("visit", attr=True),
            f("protocol", attr=True),
        ),
        display_id="project",
        doc="An experiment's label in a project it is shared into (``sharing/share``).",
    ),
    # Item types of repeated values that item documents carry as ``children`` (``tags/tag``,
    # ``aliases/alias``): every xsi:type the server emits must be declared in the XSD for xnatpy.
    DataType("xnat:abstractResource_tag", None, None, (f("tag"),), doc="One tag of a resource."),
    DataType("xnat:projectData_alias", None, None, (f("alias"),), doc="One alias of a project."),
]
# One item type per owner of custom variables (``xnat:subjectData_field``), from the refs above.
_TYPES += [
    DataType(
        r.xsi_type,
        None,
        None,
        (CUSTOM_NAME, CUSTOM_VALUE),
        display_id=CUSTOM_NAME.name,
        doc="One custom variable.",
    )
    for t in list(_TYPES)
    for r in t.refs
    if r.name == CUSTOM_FIELDS
]

REGISTRY: dict[str, DataType] = {t.xsi_type: t for t in _TYPES}
_BY_LOWER: dict[str, DataType] = {t.xsi_type.lower(): t for t in _TYPES}
# Element names are also accepted wherever a type name is (``xnat:MRSession`` = ``xnat:mrSessionData``).
for _t in _TYPES:
    if _t.element:
        _BY_LOWER.setdefault(_t.element.lower(), _t)


def get(xsi_type: str) -> DataType:
    """Look a type up by xsi:type or element name, case-insensitively."""
    found = _BY_LOWER.get(xsi_type.strip().lower())
    if found is None:
        raise InvalidInput(f"Unknown data type: {xsi_type}")
    return found


def lineage(xsi_type: str) -> list[DataType]:
    """The type and its bases, most basic first."""
    chain: list[DataType] = []
    t: DataType | None = get(xsi_type)
    while t is not None:
        chain.append(t)
        t = REGISTRY[t.base] if t.base else None
    return list(reversed(chain))


def is_a(xsi_type: str, base: str) -> bool:
    base_l = get(base).xsi_type
    return any(t.xsi_type == base_l for t in lineage(xsi_type))


def subtypes(base: str) -> list[str]:
    """Concrete types that are ``base`` or derive from it (for ``xsiType=`` filters on base types)."""
    return [t.xsi_type for t in _TYPES if not t.abstract and is_a(t.xsi_type, base)]


def fields_of(xsi_type: str) -> list[Field]:
    return [fl for t in lineage(xsi_type) for fl in t.own_fields]


def children_of(xsi_type: str) -> tuple[str, ...]:
    return tuple(c for t in lineage(xsi_type) for c in t.children)


def refs_of(xsi_type: str) -> tuple[Ref, ...]:
    """Child objects and listings of a type, inherited ones first."""
    return tuple(r for t in lineage(xsi_type) for r in t.refs)


def display_id_of(xsi_type: str) -> str | None:
    """The field naming an object of this type within its parent, inherited from the nearest base."""
    return next((t.display_id for t in reversed(lineage(xsi_type)) if t.display_id), None)


def concrete(base: str) -> Iterator[DataType]:
    return (REGISTRY[x] for x in subtypes(base))


def session_type_for_modality(modality: str) -> str:
    for t in concrete("xnat:imageSessionData"):
        if t.modality == modality.upper():
            return t.xsi_type
    return "xnat:otherDicomSessionData"


def scan_type_for_modality(modality: str) -> str:
    for t in concrete("xnat:imageScanData"):
        if t.modality == modality.upper():
            return t.xsi_type
    return "xnat:otherDicomScanData"


# ---------------------------------------------------------------------------------------------
# Field addressing: XPaths and shortcuts as clients send them.

_PREDICATE = re.compile(r"\[[^\]]*\]")
DEMOGRAPHICS = "demographics"


def normalize_path(key: str) -> str:
    """``xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender`` → ``demographics/gender``."""
    key = _PREDICATE.sub("", key.strip())
    head, sep, rest = key.partition("/")
    if sep and ":" in head:
        return rest
    return key


def resolve_field(xsi_type: str, key: str) -> Field | None:
    """Find the field a query key names: an XPath (with or without type prefix) or a shortcut."""
    path = normalize_path(key).lower()
    candidates = fields_of(xsi_type)
    if DEMOGRAPHICS in children_of(xsi_type):
        candidates = candidates + [
            Field(f"{DEMOGRAPHICS}/{fl.path}", fl.kind, fl.attr, fl.path, fl.enum)
            for fl in fields_of("xnat:demographicData")
        ]
    for fl in candidates:
        if fl.path.lower() == path:
            return fl
    if "/" in path:
        return None
    for fl in candidates:
        if (fl.shortcut or fl.name).lower() == path:
            return fl
    return None


# Custom variables are addressed as ``[type/]fields/field[name=X]/field`` (pyxnat, xnatpy, XNAT's docs)
# and stored under ``fields/field[name=X]``: a key no registry path can take, as registry paths carry no
# predicates, so custom names never clash with typed fields. xnatpy removes a variable by sending both
# ``.../field[name=X]/field=NULL`` and ``.../field[name=X]/X=NULL``, so ``/X`` names the same value.
_CUSTOM_XPATH = re.compile(
    r"^(?:(?P<owner>[^/\s]+:[^/\s]+)/)?fields/field"
    r"\[\s*@?name\s*=\s*(?P<quote>['\"]?)(?P<name>[^\]]*?)(?P=quote)\s*\](?:/(?P<part>[^/]*))?$",
    re.IGNORECASE,
)
_CUSTOM_KEY = f"{CUSTOM_FIELDS}/field[name="


def custom_fields_ref(xsi_type: str) -> Ref | None:
    """The ``fields/field`` reference of a type that carries custom variables, else None."""
    if xsi_type.strip().lower() not in _BY_LOWER:
        return None
    return next((r for r in refs_of(xsi_type) if r.name == CUSTOM_FIELDS), None)


def custom_key(name: str) -> str:
    """Where a custom variable's value is stored among an object's field values."""
    return f"{_CUSTOM_KEY}{name}]"


def custom_field_key(xsi_type: str, key: str) -> str | None:
    """The stored key of the custom variable an XPath names, or None when ``key`` is no custom-variable
    XPath of this type (its type prefix, if any, must be the type or one of its bases)."""
    found = _CUSTOM_XPATH.match(key.strip())
    if found is None or custom_fields_ref(xsi_type) is None:
        return None
    owner = found.group("owner")
    if owner and (owner.lower() not in _BY_LOWER or not is_a(xsi_type, owner)):
        return None
    name, part = found.group("name").strip(), found.group("part")
    if part is not None and part.lower() != CUSTOM_VALUE.name and part != name:
        return None
    if not name:
        raise InvalidInput(f"A custom variable needs a name: {key}")
    return custom_key(name)


def custom_values(values: Mapping[str, object]) -> dict[str, object]:
    """Custom variables among stored field values, by name, in stored order."""
    return {k[len(_CUSTOM_KEY) : -1]: v for k, v in values.items() if is_custom_key(k)}


def is_custom_key(key: str) -> bool:
    """Whether a stored field key holds a custom variable (see ``custom_key``)."""
    return key.startswith(_CUSTOM_KEY) and key.endswith("]")


def coerce(fl: Field, raw: str) -> object:
    """Validate a text value for a field and return its native value (None for XNAT's ``NULL``)."""
    value = raw.strip()
    if value == "" or value.upper() == "NULL":
        return None
    try:
        if fl.kind == INTEGER:
            return int(float(value))
        if fl.kind == FLOAT:
            return float(value)
        if fl.kind == DATE:
            return _parse_date(value).isoformat()
        if fl.kind == TIME:
            return _parse_time(value)
        if fl.kind == BOOLEAN:
            return value.lower() in ("1", "true", "yes", "y")
    except ValueError as exc:
        raise InvalidInput(f"Invalid value for {fl.path}: {raw!r} is not a valid {fl.kind}") from exc
    if fl.enum and value not in fl.enum:
        lowered = {e.lower(): e for e in fl.enum}
        if value.lower() not in lowered:
            raise InvalidInput(f"Invalid value for {fl.path}: {raw!r} (one of {', '.join(fl.enum)})")
        value = lowered[value.lower()]
    return value


def _parse_date(value: str) -> _dt.date:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%Y/%m/%d", "%m/%d/%y"):
        try:
            return _dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(value)


def _parse_time(value: str) -> str:
    for fmt in ("%H:%M:%S", "%H:%M", "%H%M%S", "%H:%M:%S.%f", "%H%M%S.%f"):
        try:
            return _dt.datetime.strptime(value, fmt).time().strftime("%H:%M:%S")
        except ValueError:
            continue
    raise ValueError(value)


def text(value: object) -> str:
    """How a value appears in listings, CSV and XML: always a string (XNAT's tables are all text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def all_types() -> Iterable[DataType]:
    return tuple(_TYPES)
