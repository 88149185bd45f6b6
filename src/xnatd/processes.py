"""Processes of this host, as the parts that outlive a crash see them (job dispatchers, DICOM
receivers): whether the process a record names still runs."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether a process with this PID exists (one owned by another user counts: it is running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
