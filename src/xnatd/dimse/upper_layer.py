"""PS3.8 upper layer on an accepted TCP socket: read whole PDUs, send PDUs, split P-DATA into PDVs.

Why not pynetdicom's DUL here: its reactor threads poll with 1 ms sleeps and hand every PDU through
queues and a state machine; measured on 2 cores it keeps a receiver at ~230 files/s with 36 % of one
CPU busy (latency-bound; see docs/dicom-receiver.md). This loop blocks in ``recv_into`` on one
reused buffer and answers as soon as the last fragment is in.

Two socket options matter for speed. TCP_NODELAY: our small C-STORE responses leave at once.
TCP_QUICKACK, renewed after each read: senders that keep Nagle's algorithm on (dcmtk's default) hold
the tail of every object until its previous segment is acknowledged, and Linux delays that
acknowledgement by 40 ms unless asked not to; that stall is what caps dcmtk-based receivers at ~20
objects/s from such senders.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, P_DATA_TF = 1, 2, 3, 4
A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 5, 6, 7
MAX_PDU_HEADER_LENGTH = 64 * 1024 * 1024  # larger than any sane PDU: a garbled header, not data
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class PeerGone(Exception):
    """The peer closed the connection (or sent something that is not a PDU)."""


class Connection:
    """One association's TCP connection; ``read_pdu`` returns a view into a reused buffer, valid
    until the next call."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._quickack = _QUICKACK is not None
        self._buf = bytearray(256 * 1024)
        self.head = bytearray(6)

    def _ack(self) -> None:
        if self._quickack:
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[arg-type]
            except OSError:
                self._quickack = False

    def _fill(self, view: memoryview) -> None:
        got, want = 0, len(view)
        recv_into = self.sock.recv_into
        while got < want:
            n = recv_into(view[got:])
            if n == 0:
                raise PeerGone("connection closed by the peer")
            got += n
            self._ack()

    def read_pdu(self) -> tuple[int, memoryview]:
        """(PDU type, its body)."""
        self._fill(memoryview(self.head))
        kind, length = self.head[0], struct.unpack_from(">I", self.head, 2)[0]
        if not 1 <= kind <= 7 or length > MAX_PDU_HEADER_LENGTH:
            raise PeerGone(f"not a DICOM PDU (type {kind}, length {length})")
        if length > len(self._buf):
            self._buf = bytearray(length)
        view = memoryview(self._buf)[:length]
        self._fill(view)
        return kind, view

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def pdvs(body: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """(presentation context ID, message control header, fragment) of each PDV in a P-DATA-TF body."""
    pos, end = 0, len(body)
    while pos + 6 <= end:
        length = struct.unpack_from(">I", body, pos)[0]
        if length < 2 or pos + 4 + length > end:
            raise PeerGone(f"malformed PDV item (length {length})")
        yield body[pos + 4], body[pos + 5], body[pos + 6 : pos + 4 + length]
        pos += 4 + length
    if pos != end:
        raise PeerGone("trailing bytes after the last PDV item")


def p_data(context_id: int, command: bytes) -> bytes:
    """A P-DATA-TF holding one complete command (message control header: command, last fragment)."""
    item = struct.pack(">IBB", len(command) + 2, context_id, 0x03) + command
    return struct.pack(">BBI", P_DATA_TF, 0, len(item)) + item


def release_rp() -> bytes:
    return struct.pack(">BBIi", A_RELEASE_RP, 0, 4, 0)


def abort(source: int = 2, reason: int = 0) -> bytes:
    """A-ABORT; source 2 = service provider (A-P-ABORT), 0 = service user."""
    return struct.pack(">BBIBBBB", A_ABORT, 0, 4, 0, 0, source, reason)


def reject(result: int, source: int, reason: int) -> bytes:
    """A-ASSOCIATE-RJ (PS3.8 9.3.4): result 1 permanent / 2 transient, source, reason/diagnostic."""
    return struct.pack(">BBIBBBB", A_ASSOCIATE_RJ, 0, 4, 0, result, source, reason)
