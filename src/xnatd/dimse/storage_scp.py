"""One association, served: the Verification SCP (C-ECHO) and the Storage SCP (C-STORE, PS3.4 B).

Each C-STORE's dataset goes, fragment by fragment as the PDVs arrive, into a sink the filing service
hands out, behind the file meta information (``part10``); nothing is decoded or re-encoded. When the
last fragment is in, the header is checked (unreadable: 0xC210), the object is queued for filing and
the response leaves at once. Errors become a status on that one response (``status.of_error``) and a
log line; the association goes on.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from xnatd.dimse import acse, dimse, part10, status
from xnatd.dimse.upper_layer import (
    A_ABORT,
    A_ASSOCIATE_RQ,
    A_RELEASE_RQ,
    P_DATA_TF,
    Connection,
    PeerGone,
    abort,
    p_data,
    pdvs,
    release_rp,
)
from xnatd.services.ingest.dicom_receivers import Receiver
from xnatd.services.ingest.receiving import Intake, Sink

log = logging.getLogger("xnatd.dicom")
PREFIX = 64 * 1024  # the first bytes of each object, kept in memory for the header check


def serve(
    sock: socket.socket,
    peer: tuple[str, int],
    lookup: Callable[[str], Receiver | None],
    intake: Intake,
    timeout: float,
) -> None:
    """Negotiate, then serve requests until release or abort; always closes the socket."""
    conn = Connection(sock, timeout)
    try:
        kind, body = conn.read_pdu()
        if kind != A_ASSOCIATE_RQ:
            conn.send(abort(2, 2))
            return
        answer = acse.negotiate(bytes(conn.head) + bytes(body), peer[0], lookup)
        conn.send(answer.answer)
        if isinstance(answer, acse.Rejected):
            log.warning("DICOM association from %s:%d rejected: %s", peer[0], peer[1], answer.reason)
            return
        _Association(conn, answer, intake).run()
    except (PeerGone, dimse.BadCommand) as exc:
        log.warning("DICOM association from %s:%d aborted: %s", peer[0], peer[1], exc)
        _try_send(conn, abort(2, 0))
    except TimeoutError:
        log.warning("DICOM association from %s:%d: no data for %.0f s, aborted", peer[0], peer[1], timeout)
        _try_send(conn, abort(2, 0))
    except OSError as exc:
        log.warning("DICOM association from %s:%d: %s", peer[0], peer[1], exc)
    finally:
        conn.close()


def _try_send(conn: Connection, data: bytes) -> None:
    try:
        conn.send(data)
    except OSError:
        pass


class _Association:
    def __init__(self, conn: Connection, accepted: acse.Accepted, intake: Intake) -> None:
        self.conn = conn
        self.acc = accepted
        self.intake = intake
        self.command = bytearray()
        self.request: dimse.Command | None = None
        self.context = 0
        self.sink: Sink | None = None
        self.failure: BaseException | None = None
        self.prefix: list[bytes] = []
        self.kept = 0
        self.stored = self.failed = 0
        self.aid = 0

    def run(self) -> None:
        acc = self.acc
        self.aid = aid = self.intake.open(acc.receiver, acc.calling_ae)
        t0 = time.perf_counter()
        log.info("DICOM association %s -> %s accepted", acc.calling_ae, acc.called_ae)
        end = "aborted"
        try:
            while True:
                kind, body = self.conn.read_pdu()
                if kind == P_DATA_TF:
                    self._p_data(body)
                elif kind == A_RELEASE_RQ:
                    self.conn.send(release_rp())
                    end = "released"
                    return
                elif kind == A_ABORT:
                    return
                else:
                    raise PeerGone(f"unexpected PDU type {kind} during the association")
        finally:
            if self.sink is not None:
                self.sink.abort()
            self.intake.end(aid)
            log.info(
                "DICOM association %s -> %s %s: %d stored, %d refused, %.1f s",
                acc.calling_ae, acc.called_ae, end, self.stored, self.failed, time.perf_counter() - t0,
            )  # fmt: skip

    def _p_data(self, body: memoryview) -> None:
        for context, control, fragment in pdvs(body):
            if control & 1:
                self.command += fragment
                if control & 2:
                    self._command(context)
            elif self.request is None or context != self.context:
                raise PeerGone("a dataset fragment without its command")
            else:
                self._data(fragment)
                if control & 2:
                    self._stored()

    def _command(self, context: int) -> None:
        request = dimse.parse(self.command)
        self.command.clear()
        if context not in self.acc.contexts:
            raise PeerGone(f"presentation context {context} was not accepted")
        self.request, self.context = request, context
        if request.field == dimse.C_STORE_RQ and request.has_dataset:
            self._open(request)
        elif not request.has_dataset:
            code = status.SUCCESS if request.field == dimse.C_ECHO_RQ else status.UNRECOGNIZED_OPERATION
            self._answer(code)
        else:  # another service with a dataset: read it, then refuse
            self.failure = NotImplementedError(f"command field 0x{request.field:04X}")

    def _open(self, request: dimse.Command) -> None:
        transfer_syntax = self.acc.contexts[self.context][1]
        head = part10.file_header(
            request.sop_class, request.sop_instance, transfer_syntax, self.acc.calling_ae
        )
        self.prefix, self.kept = [head], 0
        try:
            self.sink = self.intake.sink(self.aid)
            self.sink.write(head)
        except Exception as exc:
            self._fail(exc)

    def _data(self, fragment: memoryview) -> None:
        if self.kept < PREFIX:
            piece = bytes(fragment[: PREFIX - self.kept])
            self.prefix.append(piece)
            self.kept += len(piece)
        if self.sink is not None:
            try:
                self.sink.write(fragment)
            except Exception as exc:
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self.failure = exc
        if self.sink is not None:
            self.sink.abort()
            self.sink = None

    def _stored(self) -> None:
        sink, request = self.sink, self.request
        self.sink = None
        if sink is not None and self.failure is None:
            sink.close()
            try:
                self.intake.received(self.aid, sink, self.intake.check(sink, b"".join(self.prefix)))
            except Exception as exc:
                sink.abort()
                self.failure = exc
        if self.failure is None:
            self.stored += 1
            self._answer(status.SUCCESS)
            return
        self.failed += 1
        error, self.failure = self.failure, None
        is_store = request is not None and request.field == dimse.C_STORE_RQ
        code = status.of_error(error) if is_store else status.UNRECOGNIZED_OPERATION
        log.warning(
            "C-STORE from %s of %s refused with 0x%04X: %s",
            self.acc.calling_ae, request.sop_instance if request else "?", code, error,
        )  # fmt: skip
        self._answer(code, status.comment(error))

    def _answer(self, code: int, comment: str = "") -> None:
        request = self.request
        self.request = None
        if request is not None:
            self.conn.send(p_data(self.context, dimse.response(request, code, comment)))
