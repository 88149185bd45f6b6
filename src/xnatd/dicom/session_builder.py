"""From DICOM headers to an XNAT image session: its type, its fields, its scans and their IDs.

The rules are XNAT's (dicom-xnat's session and scan builders, see xnat-api.md §5.2); the fields are
the type registry's (``xnatd.domain.types``): a mapping below names a registry path and a DICOM
keyword, and a value is kept only if the final data type has that field and the value passes the
registry's own validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from xnatd.dicom.header import text_of
from xnatd.domain import types
from xnatd.errors import InvalidInput

# SOP class UID prefix (under 1.2.840.10008.5.1.4.1.1.) -> scan data type.
_SOP_PREFIX = "1.2.840.10008.5.1.4.1.1."
_SOP_SCANS: dict[str, str] = {
    "4": "xnat:mrScanData",
    "2": "xnat:ctScanData",
    "128": "xnat:petScanData",
    "130": "xnat:petScanData",
    "7": "xnat:scScanData",
    "6": "xnat:usScanData",
    "3.1": "xnat:usScanData",
    "481.1": "xnat:rtImageScanData",
    "481.2": "xnat:rtImageScanData",
    "88": "xnat:srScanData",
    "66.4": "xnat:segScanData",
    "1.1": "xnat:dxScanData",
    "1.2": "xnat:mgScanData",
    "1": "xnat:crScanData",
    "20": "xnat:nmScanData",
    "12": "xnat:xaScanData",
}
# Lead modalities, strongest first: a PET/MR study is a PET session, MR beats secondary captures.
LEAD = ("PT", "MR", "CT", "NM", "US", "XA", "MG", "DX", "CR", "SR")

SESSION_MAP: tuple[tuple[str, str], ...] = (
    ("date", "StudyDate"),
    ("time", "StudyTime"),
    ("acquisition_site", "InstitutionName"),
    ("UID", "StudyInstanceUID"),
    ("session_type", "StudyDescription"),
    ("scanner", "StationName"),
    ("scanner/manufacturer", "Manufacturer"),
    ("scanner/model", "ManufacturerModelName"),
    ("operator", "OperatorsName"),
    ("dcmAccessionNumber", "AccessionNumber"),
    ("study_id", "StudyID"),
    ("dcmPatientId", "PatientID"),
    ("dcmPatientName", "PatientName"),
    ("dcmPatientBirthDate", "PatientBirthDate"),
    ("dcmPatientWeight", "PatientWeight"),
    ("fieldStrength", "MagneticFieldStrength"),
)
SCAN_MAP: tuple[tuple[str, str], ...] = (
    ("UID", "SeriesInstanceUID"),
    ("series_description", "SeriesDescription"),
    ("modality", "Modality"),
    ("scanner", "StationName"),
    ("scanner/manufacturer", "Manufacturer"),
    ("scanner/model", "ManufacturerModelName"),
    ("operator", "OperatorsName"),
    ("startTime", "SeriesTime"),
    ("start_date", "SeriesDate"),
    ("protocolName", "ProtocolName"),
    ("bodyPartExamined", "BodyPartExamined"),
    ("requestedProcedureDescription", "RequestedProcedureDescription"),
    ("coil", "ReceiveCoilName"),
    ("fieldStrength", "MagneticFieldStrength"),
    ("parameters/voxelRes/z", "SliceThickness"),
    ("parameters/matrix/x", "Columns"),
    ("parameters/matrix/y", "Rows"),
    ("parameters/tr", "RepetitionTime"),
    ("parameters/te", "EchoTime"),
    ("parameters/ti", "InversionTime"),
    ("parameters/flip", "FlipAngle"),
    ("parameters/sequence", "SequenceName"),
    ("parameters/imageType", "ImageType"),
    ("parameters/scanSequence", "ScanningSequence"),
    ("parameters/seqVariant", "SequenceVariant"),
    ("parameters/scanOptions", "ScanOptions"),
    ("parameters/acqType", "MRAcquisitionType"),
    ("parameters/pixelBandwidth", "PixelBandwidth"),
    ("parameters/kvp", "KVP"),
    ("parameters/rescale/intercept", "RescaleIntercept"),
    ("parameters/rescale/slope", "RescaleSlope"),
    ("parameters/seriesType", "SeriesType"),
    ("parameters/decayCorrection", "DecayCorrection"),
    ("parameters/units", "Units"),
)


@dataclass(frozen=True)
class SeriesInfo:
    """One series as the builder needs it: the grouping key and what decides its scan ID and type."""

    uid: str
    number: str
    modality: str
    xsi_type: str


def scan_type(sop_class_uid: str, modality: str) -> str:
    """Scan data type from the SOP class first (secondary captures stay ``scScanData``), else modality."""
    if sop_class_uid.startswith(_SOP_PREFIX):
        rest = sop_class_uid[len(_SOP_PREFIX) :]
        parts = rest.split(".")
        for n in (3, 2, 1):
            found = _SOP_SCANS.get(".".join(parts[:n]))
            if found:
                return found
    return types.scan_type_for_modality(modality or "OT")


def session_type(modalities: Iterable[str]) -> str:
    """Session data type from the lead modality of its series; ``otherDicomSessionData`` if none maps."""
    present = {m.upper() for m in modalities if m}
    for modality in LEAD:
        if modality in present:
            found = types.session_type_for_modality(modality)
            if found != "xnat:otherDicomSessionData":
                return found
    return "xnat:otherDicomSessionData"


def lead_modality(modalities: Iterable[str]) -> str:
    present = [m.upper() for m in modalities if m]
    return next((m for m in LEAD if m in present), present[0] if present else "")


def scan_ids(series: Sequence[SeriesInfo]) -> dict[tuple[str, str], str]:
    """XNAT's scan IDs, keyed by (series UID, series number).

    The ID is the SeriesNumber (a leading ``+`` becomes ``_``), or the SeriesInstanceUID with non-word
    characters replaced when there is no number; series that share a number are told apart as
    ``{number}-{modality}{n}`` (``3-MR1``, ``3-MR2``, ``3-OT1``).
    """
    by_base: dict[str, list[SeriesInfo]] = {}
    for s in series:
        base = re.sub(r"^\+", "_", s.number.strip()) if s.number.strip() else re.sub(r"\W", "_", s.uid)
        by_base.setdefault(base, []).append(s)
    out: dict[tuple[str, str], str] = {}
    for base, group in by_base.items():
        if len(group) == 1:
            out[(group[0].uid, group[0].number)] = base
            continue
        counters: dict[str, int] = {}
        for s in sorted(group, key=lambda x: x.uid):
            mod = (s.modality or "OT").upper()
            counters[mod] = counters.get(mod, 0) + 1
            out[(s.uid, s.number)] = f"{base}-{mod}{counters[mod]}"
    return out


def modality_code(scan_xsi_type: str) -> str:
    """XNAT's modality code of a scan type for new scan IDs: the two letters after ``xnat:``
    (``MR``, ``CT``, ``OT``), ``PT`` for PET; none for other namespaces."""
    if not scan_xsi_type.startswith("xnat:"):
        return ""
    code = scan_xsi_type[5:7].upper()
    return "PT" if code == "PE" else code


def next_scan_id(scan_id: str, code: str, used: set[str]) -> str:
    """The first ``{number}-{code}{n}`` (n from 1) not in ``used``, for a series whose number an
    archived scan of another series holds (XNAT: ``1`` becomes ``1-MR1``, ``1-MR1`` becomes
    ``1-MR2``)."""
    m = re.fullmatch(rf"(.+)-{re.escape(code)}\d+", scan_id) if code else None
    stub = m.group(1) if m else scan_id
    n = 1
    while f"{stub}-{code}{n}" in used:
        n += 1
    return f"{stub}-{code}{n}"


def session_values(ds: Dataset) -> dict[str, Any]:
    """Every session-level value the headers give, keyed by registry path (type-checked later)."""
    return _values(ds, SESSION_MAP)


def scan_values(ds: Dataset, xsi_type: str) -> dict[str, Any]:
    """The scan fields of a series' first file, for a scan of ``xsi_type``."""
    raw = _values(ds, SCAN_MAP)
    spacing = _multi(ds, "PixelSpacing")
    if len(spacing) == 2:
        raw["parameters/voxelRes/x"], raw["parameters/voxelRes/y"] = spacing[1], spacing[0]
    orientation = _orientation(_multi(ds, "ImageOrientationPatient"))
    if orientation:
        raw["parameters/orientation"] = orientation
    return fit(xsi_type, raw)


def fit(xsi_type: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Keep the values ``xsi_type`` has a field for, converted and validated by the registry."""
    known = {fl.path: fl for fl in types.fields_of(xsi_type)}
    out: dict[str, Any] = {}
    for path, value in raw.items():
        fl = known.get(path)
        if fl is None or value in (None, ""):
            continue
        try:
            coerced = types.coerce(fl, str(value))
        except InvalidInput:
            continue  # a header value the schema cannot hold is left out, as XNAT's builder does
        if coerced is not None:
            out[path] = coerced
    return out


def _values(ds: Dataset, mapping: Iterable[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, keyword in mapping:
        try:
            value = ds.get(keyword)
        except Exception:  # an unconvertible value is as good as absent
            continue
        if value is None or value == "":
            continue
        text = ",".join(str(v) for v in value) if keyword == "StationName" and _is_multi(value) else None
        out[path] = text if text is not None else text_of(value)
    return out


def _is_multi(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def _multi(ds: Dataset, keyword: str) -> list[float]:
    try:
        value = ds.get(keyword)
        return [float(v) for v in value] if value is not None and _is_multi(value) else []
    except (TypeError, ValueError):
        return []


def _orientation(cosines: list[float]) -> str | None:
    """Tra/Sag/Cor from ImageOrientationPatient: the axis the slice normal points along."""
    if len(cosines) != 6:
        return None
    r, c = cosines[:3], cosines[3:]
    normal = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]]
    axis = max(range(3), key=lambda i: abs(normal[i]))
    return ("Sag", "Cor", "Tra")[axis]
