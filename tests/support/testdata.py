"""Where the shared test data lives: ``shared/testdata`` beside the checkout (as on CI), or
``XNATD_TESTDATA`` when it is elsewhere. It is read in place, never copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def testdata_root() -> Path:
    configured = os.environ.get("XNATD_TESTDATA")
    if configured:
        return Path(configured)
    for candidate in (REPO.parent / "shared" / "testdata", Path("/work/shared/testdata")):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("shared/testdata not found beside the checkout; set XNATD_TESTDATA")


TESTDATA = testdata_root()
DICOM = TESTDATA / "dicom"
