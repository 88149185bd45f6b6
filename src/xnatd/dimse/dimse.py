"""PS3.7 DIMSE command sets: read a request's command, write a response's, in Implicit VR Little
Endian (the only encoding commands have). Only the few elements C-ECHO and C-STORE use are read."""

from __future__ import annotations

import struct
from dataclasses import dataclass

C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
NO_DATASET = 0x0101
_UI_TAGS = {0x00000002: "sop_class", 0x00001000: "sop_instance"}


class BadCommand(Exception):
    """A command set that cannot be read: the association is aborted."""


@dataclass
class Command:
    field: int = 0
    message_id: int = 0
    has_dataset: bool = False
    sop_class: str = ""
    sop_instance: str = ""


def parse(data: bytes | bytearray) -> Command:
    cmd = Command()
    pos, end = 0, len(data)
    unpack = struct.unpack_from
    try:
        while pos + 8 <= end:
            group, elem, length = unpack("<HHI", data, pos)
            pos += 8
            value = data[pos : pos + length]
            pos += length
            tag = group << 16 | elem
            if tag == 0x00000100:
                cmd.field = unpack("<H", value)[0]
            elif tag == 0x00000110:
                cmd.message_id = unpack("<H", value)[0]
            elif tag == 0x00000800:
                cmd.has_dataset = unpack("<H", value)[0] != NO_DATASET
            elif tag in _UI_TAGS:
                setattr(cmd, _UI_TAGS[tag], bytes(value).decode("ascii", "replace").rstrip("\x00 "))
    except struct.error as exc:
        raise BadCommand(f"malformed command set: {exc}") from None
    if pos != end or cmd.field == 0:
        raise BadCommand("malformed command set")
    return cmd


def _ui(elem: int, value: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) % 2:
        raw += b"\x00"
    return struct.pack("<HHI", 0, elem, len(raw)) + raw


def _us(elem: int, value: int) -> bytes:
    return struct.pack("<HHIH", 0, elem, 2, value)


def response(request: Command, status: int, error_comment: str = "") -> bytes:
    """The C-STORE-RSP or C-ECHO-RSP command set answering ``request``."""
    parts = []
    if request.sop_class:
        parts.append(_ui(0x0002, request.sop_class))
    parts += [
        _us(0x0100, request.field | 0x8000),
        _us(0x0120, request.message_id),
        _us(0x0800, NO_DATASET),
        _us(0x0900, status),
    ]
    if error_comment:
        raw = error_comment.encode("ascii", "replace")
        raw += b" " * (len(raw) % 2)
        parts.append(struct.pack("<HHI", 0, 0x0902, len(raw)) + raw)
    if request.sop_instance:
        parts.append(_ui(0x1000, request.sop_instance))
    body = b"".join(parts)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body
