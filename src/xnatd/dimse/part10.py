"""The PS3.10 file header of a received object: preamble, ``DICM`` and the file meta information.

The dataset itself is written exactly as it arrived; only this header is made here, from the
C-STORE command (SOP class and instance), the presentation context (transfer syntax) and the calling
AE title, in Explicit VR Little Endian as PS3.10 requires.
"""

from __future__ import annotations

import struct

from pydicom.uid import generate_uid

from xnatd import __version__

IMPLEMENTATION_UID = generate_uid(entropy_srcs=["xnatd DICOM receiver"])
IMPLEMENTATION_VERSION = f"XNATD_{__version__}"[:16]
_PREAMBLE = bytes(128) + b"DICM"


def _element(elem: int, vr: bytes, value: bytes) -> bytes:
    pad = b"\x00" if vr == b"UI" else b" "
    if len(value) % 2:
        value += pad
    if vr == b"OB":
        return struct.pack("<HH2sHI", 0x0002, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, elem, vr, len(value)) + value


def file_header(sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str) -> bytes:
    """Everything a Part-10 file holds before its dataset."""
    body = b"".join(
        (
            _element(0x0001, b"OB", b"\x00\x01"),
            _element(0x0002, b"UI", sop_class.encode("ascii")),
            _element(0x0003, b"UI", sop_instance.encode("ascii")),
            _element(0x0010, b"UI", transfer_syntax.encode("ascii")),
            _element(0x0012, b"UI", IMPLEMENTATION_UID.encode("ascii")),
            _element(0x0013, b"SH", IMPLEMENTATION_VERSION.encode("ascii")),
            _element(0x0016, b"AE", source_ae.strip().encode("ascii", "replace")),
        )
    )
    return _PREAMBLE + struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(body)) + body
