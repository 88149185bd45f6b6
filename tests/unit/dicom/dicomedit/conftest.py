"""Real DICOM for the DicomEdit tests, read fresh for each test (scripts edit in place)."""

from __future__ import annotations

from collections.abc import Callable

import pydicom
import pytest
from pydicom.dataset import FileDataset

from tests.support.testdata import DICOM

# A Siemens Skyra EPI: two sequences (Referenced Image, Source Image), private blocks of three
# creators (SIEMENS MR HEADER in 0019 and 0051, SIEMENS CSA HEADER and SIEMENS MEDCOM HEADER2 in 0029).
SIEMENS = DICOM / "dcm_qa_nih" / "20180918Si" / "mr_0003" / "epi_pe_ap-00001.dcm"
NATIVE = DICOM / "dcm_qa_ts" / "1.dcm"  # Explicit VR Little Endian mosaic
JPEG2000 = DICOM / "dcm_qa_ts" / "9.dcm"


@pytest.fixture
def siemens() -> FileDataset:
    return pydicom.dcmread(SIEMENS)


@pytest.fixture
def read() -> Callable[..., FileDataset]:
    return lambda path=SIEMENS: pydicom.dcmread(path)
