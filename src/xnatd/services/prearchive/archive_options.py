"""How a prearchive session is archived, and the parameters XNAT's archive and import services share.

``POST /data/services/archive`` (and an auto-archive by the project's prearchive code) reads an
``ArchiveOptions``; the import service (``services/ingest/import_options.py``) reads the same ``dest``,
``overwrite`` and flag parameters with the helpers here, so XNAT's names and aliases are spelt once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xnatd.domain.params import Params, param
from xnatd.domain.params import maybe_flag as flag
from xnatd.errors import InvalidInput

OVERWRITE = {"none": "none", "": "none", "false": "none", "append": "append", "true": "append"}
OVERWRITE.update({"delete": "delete", "override": "delete"})
UNASSIGNED = "Unassigned"
DIRECT = "direct:"  # the intake of a Direct-Archive staging session: "direct:{overwrite}[+files]"
_DEST = re.compile(
    r"^(?:/(?:data|REST))?/(?P<root>prearchive|archive)"
    r"(?:/projects/(?P<project>[^/]+)(?:/(?P<a>[^/]+)(?:/(?P<b>[^/]+)(?:/(?P<c>[^/]+)(?:/(?P<d>[^/]+))?)?)?)?)?$"
)

_PLACE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")  # a prearchive timestamp or folder name


@dataclass(frozen=True)
class Destination:
    """Where ``dest=`` points: the prearchive (maybe one session) or the archive (maybe a session)."""

    root: str  # "prearchive" | "archive"
    project: str | None = None
    subject: str | None = None
    session: str | None = None
    timestamp: str | None = None  # prearchive only


def parse_destination(dest: str) -> Destination:
    """``/prearchive[/projects/P[/TS[/FOLDER]]]`` or ``/archive/projects/P[/subjects/S[/experiments/E]]``."""
    m = _DEST.match(dest.strip().rstrip("/"))
    if m is None:
        raise InvalidInput(f"Parameter dest format error: {dest}")
    root, project, a, b, c, d = m.group("root", "project", "a", "b", "c", "d")
    if root == "prearchive":
        if c is not None or d is not None or any(p is not None and not _PLACE.match(p) for p in (a, b)):
            raise InvalidInput(f"Parameter dest format error: {dest}")
        return Destination(root, None if project == UNASSIGNED else project, timestamp=a, session=b)
    if (a is not None and a != "subjects") or (c is not None and c != "experiments"):
        raise InvalidInput(f"Parameter dest format error: {dest}")
    return Destination(root, project, subject=b, session=d)


def overwrite_mode(params: Params) -> str:
    """``overwrite``: none, append or delete (XNAT's aliases: true, false, override)."""
    overwrite = (param(params, "overwrite") or "none").strip().lower()
    if overwrite not in OVERWRITE:
        raise InvalidInput(f"Invalid overwrite value {overwrite!r}: none, append or delete")
    return OVERWRITE[overwrite]


@dataclass(frozen=True)
class ArchiveOptions:
    """How ``/data/services/archive`` (or an auto-archive) files a prearchive session."""

    project: str | None = None
    subject: str | None = None
    label: str | None = None
    overwrite: str = "none"
    overwrite_files: bool = False


def archive_options(params: Params) -> ArchiveOptions:
    raw_dest = param(params, "dest")
    dest = parse_destination(raw_dest) if raw_dest else None
    if dest is not None and dest.root != "archive":
        raise InvalidInput(f"dest must be an archive URI, not {raw_dest}")
    return ArchiveOptions(
        project=param(params, "project", "PROJECT_ID") or (dest.project if dest else None),
        subject=param(params, "subject", "SUBJECT_ID", "xnat:subjectAssessorData/subject_ID")
        or (dest.subject if dest else None),
        label=param(params, "session", "label", "EXPT_LABEL")
        or _xpath_label(params)
        or (dest.session if dest else None),
        overwrite=overwrite_mode(params),
        overwrite_files=bool(flag(params, "overwrite_files")),
    )


def _xpath_label(params: Params) -> str | None:
    """XNAT's ``PrearcSessionArchiver`` also takes the label as an XML path of the session's type
    (``xnat:mrSessionData/label``) or of any experiment (``xnat:experimentData/label``)."""
    for key, value in params:
        if value and re.fullmatch(r"xnat:\w+/label", key, re.IGNORECASE):
            return value
    return None


def code_options(code: int | None) -> ArchiveOptions:
    """Auto-archive by the project's prearchive code (XNAT's ``FinishImageUpload``): 4 merges into an
    existing session, 5 merges too and replaces the files of the instances sent again."""
    return ArchiveOptions(overwrite="append", overwrite_files=code == 5)


def staged_options(intake: str | None) -> ArchiveOptions | None:
    """How a Direct-Archive staging session is archived (None: the session is not one)."""
    if intake is None or not intake.startswith(DIRECT):
        return None
    overwrite, _, files = intake.removeprefix(DIRECT).partition("+")
    return ArchiveOptions(overwrite=OVERWRITE.get(overwrite, "none"), overwrite_files=files == "files")
