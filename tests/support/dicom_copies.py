"""Real DICOM studies under new identities, for tests and benchmarks that need many distinct studies.

shared/testdata holds a handful of real studies; concurrency tests and the import benchmark need more.
A copy keeps everything the scanner wrote except its UIDs (study, series, instance: new but consistent
inside the copy) and the patient's name and ID, as shared/testdata/README.md suggests.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from tests.support.testdata import DICOM

TESTDATA = DICOM


def dicom_files(folder: Path) -> list[Path]:
    """The DICOM Part-10 files under ``folder`` (READMEs, licences and DIRFILEs left out)."""
    out = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name in ("DIRFILE", "LICENSE") or p.suffix in (".md", ".txt", ".tsv"):
            continue
        out.append(p)
    return out


def copy_study(files: Iterable[Path], out: Path, tag: str, patient: str | None = None) -> list[Path]:
    """Write ``files`` (one or more series of one study) as a new study into ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    series: dict[str, str] = {}
    written = []
    for i, src in enumerate(files):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(src, force=True)
        ds.StudyInstanceUID = study
        old_series = str(ds.get("SeriesInstanceUID", ""))
        ds.SeriesInstanceUID = series.setdefault(old_series, generate_uid())
        ds.SOPInstanceUID = generate_uid()
        if getattr(ds, "file_meta", None) is not None:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = patient or tag
        ds.PatientName = f"{patient or tag}^Copy"
        dest = out / f"{tag}_{i:05d}.dcm"
        ds.save_as(dest, enforce_file_format=False)
        written.append(dest)
    return written
