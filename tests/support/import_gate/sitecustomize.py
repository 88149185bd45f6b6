"""Holds an import of a test server just before its commit, so a test can change the prearchive
under it (archive or delete the session it filed into) and then let it go on.

Python imports ``sitecustomize`` at start-up from ``sys.path``: a server started with this folder on
``PYTHONPATH`` and ``XNATD_TEST_GATE`` naming a marker file wraps ``IngestBatch._make_durable`` (the
flush before the commit). A batch with a file whose name starts with ``hold-`` writes the marker
once its files are placed and flushed, and waits (up to a minute) until the test deletes it; then it
commits as usual. Any other batch goes through untouched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

GATE = os.environ.get("XNATD_TEST_GATE", "")


def _install() -> None:
    from xnatd.services.ingest.ingest import IngestBatch

    flush = IngestBatch._make_durable

    def held_flush(self: IngestBatch, slots: list[Any]) -> None:
        flush(self, slots)
        if any(path.name.startswith("hold-") for slot in slots for _v, path, _k in slot.pending):
            mark = Path(GATE)
            mark.write_text("held")
            deadline = time.monotonic() + 60
            while mark.exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    IngestBatch._make_durable = held_flush  # type: ignore[method-assign]


if GATE:
    _install()
