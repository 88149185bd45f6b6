"""pynetdicom as the sending side of the tests, without the race that loses a response."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from pynetdicom.association import Association


@contextmanager
def reactor_held(assoc: Association) -> Iterator[Association]:
    """Keep pynetdicom's association reactor paused while this thread sends its requests.

    Each ``send_c_*`` pauses the reactor, so that it cannot take the response off the queue, and
    wakes it when done. On a loaded machine the woken reactor may run late: the next send then finds
    it still marked paused, sends, and the reactor, running at last, takes that request's response;
    the send waits out its DIMSE timeout while the server waits for the next request, and the server
    aborts (pynetdicom#435; at load average 5 it failed 3 of 6 runs of the fuzz module's C-STORE
    test). A requestor needs nothing from the reactor between its own requests: the DUL
    thread still reads from the socket, and an abort still wakes a waiting send, with no status.
    """
    checkpoint = assoc._reactor_checkpoint
    checkpoint.clear()
    deadline = time.monotonic() + 30
    time.sleep(0.01)  # a reactor past its checkpoint comes round to it
    while not assoc._is_paused:
        assert time.monotonic() < deadline, "pynetdicom's reactor did not pause"
        time.sleep(0.001)
    checkpoint.set = lambda: None  # type: ignore[method-assign]  # the sends' wake-ups
    try:
        yield assoc
    finally:
        del checkpoint.set
        checkpoint.set()
