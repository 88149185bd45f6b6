"""DICOM status codes (PS3.7 Annex C, PS3.4 B.2.3) and the one translation of domain errors to them."""

from __future__ import annotations

import logging

from xnatd.errors import InvalidInput, StorageFull, TooLarge, XnatdError

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Refused: out of resources (the 0xA7xx family)
OUT_OF_RESOURCES_STORE = 0xA701  # ... unable to store (an I/O error other than a full disk)
CANNOT_UNDERSTAND = 0xC210  # Error: cannot understand (the 0xCxxx family); the object is not usable
MISMATCH = 0xA900  # Error: data set does not match SOP class (UIDs disagree with the command)
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122
UNRECOGNIZED_OPERATION = 0x0211

log = logging.getLogger("xnatd.dicom")


def of_error(exc: BaseException) -> int:
    """The status a failed C-STORE answers with."""
    if isinstance(exc, StorageFull | TooLarge):
        return OUT_OF_RESOURCES
    if isinstance(exc, InvalidInput):  # NotDicom is one: the header cannot be read
        return CANNOT_UNDERSTAND
    if isinstance(exc, OSError):
        return OUT_OF_RESOURCES_STORE
    if isinstance(exc, XnatdError):
        return PROCESSING_FAILURE
    return PROCESSING_FAILURE


def comment(exc: BaseException) -> str:
    """An Error Comment (0000,0902): LO, at most 64 characters."""
    text = str(exc) if isinstance(exc, XnatdError) else type(exc).__name__
    return text.encode("ascii", "replace").decode()[:64]
