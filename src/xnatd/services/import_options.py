"""The parameters of an import, as XNAT's import service reads them, in one typed value.

REST imports (``POST /data/services/import``), ``xnatd import`` and the DICOM receiver all describe
what they want with an ``ImportOptions``; only this module knows XNAT's parameter names and aliases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from xnatd.dicom.identify import Overrides
from xnatd.domain.labels import check_length
from xnatd.errors import InvalidInput, NotFound

Params = Sequence[tuple[str, str]]
DICOM_ZIP, GRADUAL, SI = "DICOM-zip", "gradual-DICOM", "SI"
HANDLERS = {"dicom-zip": DICOM_ZIP, "gradual-dicom": GRADUAL, "si": SI}
OVERWRITE = {"none": "none", "": "none", "false": "none", "append": "append", "true": "append"}
OVERWRITE.update({"delete": "delete", "override": "delete"})
UNASSIGNED = "Unassigned"
REQUEST = "request"  # the intake of a session one import request files into, and archives itself
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


@dataclass(frozen=True)
class ImportOptions:
    handler: str = DICOM_ZIP
    handler_given: bool = False  # ``import-handler`` named it (else: the request's content decided)
    labels: Overrides = field(default_factory=Overrides)
    dest: Destination | None = None
    overwrite: str = "none"  # none | append | delete
    overwrite_files: bool = False
    rename: bool = False
    auto_archive: bool | None = None  # AA / auto-archive; None: the project's prearchive code decides
    direct_archive: bool = False
    commit: bool = False
    ignore_unparsable: bool | None = None  # ``Ignore-Unparsable``; None: not given
    source: str = ""
    visit: str = ""
    protocol: str = ""
    timezone: str = ""

    @property
    def to_archive(self) -> bool:
        """Archive at once: ``dest=/archive/...``, ``Direct-Archive=true``."""
        return self.direct_archive or (self.dest is not None and self.dest.root == "archive")

    @property
    def dicom_zip(self) -> bool:
        """XNAT's ``DicomZipImporter`` asked for by name (``import-handler=DICOM-zip``): it refuses an
        upload with a file that is not DICOM, archives only when told to (``dest=/archive``, ``AA``),
        never by the project's prearchive code, and keeps a prearchive session to one study. An
        upload that names no handler is imported as XNAT's session importer does (files that are not
        DICOM skipped, archived by the project's code), which is what xnatpy's tests expect."""
        return self.handler == DICOM_ZIP and self.handler_given

    @property
    def refuses_unparsable(self) -> bool:
        """XNAT: ``Ignore-Unparsable`` defaults to false, or to true with ``action=commit``."""
        ignore = self.commit if self.ignore_unparsable is None else self.ignore_unparsable
        return self.dicom_zip and not ignore

    @property
    def prearchive_place(self) -> tuple[str, str | None] | None:
        """The (timestamp, folder) a ``dest=/prearchive/projects/P/TS[/FOLDER]`` names, if any."""
        dest = self.dest
        if dest is None or dest.root != "prearchive" or dest.timestamp is None or self.direct_archive:
            return None  # (a Direct-Archive import files into its study's staging session)
        return dest.timestamp, dest.session


def _get(params: Params, *names: str) -> str | None:
    wanted = {n.lower() for n in names}
    for key, value in params:
        if key.lower() in wanted:
            return value
    return None


def _flag(params: Params, *names: str) -> bool | None:
    value = _get(params, *names)
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in ("true", "1", "yes", "t")


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


def media_type(content_type: str | None) -> str:
    """A Content-Type's media type, lower case, without its parameters (``; charset=...``)."""
    return (content_type or "").split(";")[0].strip().lower()


def parse(params: Params, content_type: str | None) -> ImportOptions:
    """The options of a ``POST /data/services/import`` request."""
    raw_handler = _get(params, "import-handler")
    if raw_handler:
        handler = HANDLERS.get(raw_handler.strip().lower())
        if handler is None:
            raise NotFound(f"No import handler named {raw_handler} (DICOM-zip, gradual-DICOM or SI)")
    elif media_type(content_type) == "application/dicom":
        handler = GRADUAL
    else:
        handler = DICOM_ZIP
    raw_dest = _get(params, "dest")
    dest = parse_destination(raw_dest) if raw_dest else None
    labels = Overrides(
        project=check_length(
            _get(params, "PROJECT_ID", "project") or (dest.project if dest else None), "project"
        ),
        subject=check_length(
            _get(params, "SUBJECT_ID", "subject") or (dest.subject if dest else None), "subject"
        ),
        session=check_length(
            _get(params, "EXPT_LABEL", "session", "label")
            or (dest.session if dest and dest.root == "archive" else None),
            "session",
        ),
    )
    overwrite = (_get(params, "overwrite") or "none").strip().lower()
    if overwrite not in OVERWRITE:
        raise InvalidInput(f"Invalid overwrite value {overwrite!r}: none, append or delete")
    return ImportOptions(
        handler=handler,
        handler_given=bool(raw_handler),
        labels=labels,
        dest=dest,
        overwrite=OVERWRITE[overwrite],
        overwrite_files=bool(_flag(params, "overwrite_files")),
        rename=bool(_flag(params, "rename")),
        auto_archive=_flag(params, "AA", "auto-archive"),
        direct_archive=bool(_flag(params, "Direct-Archive")),
        commit=(_get(params, "action") or "").strip().lower() == "commit",
        ignore_unparsable=_flag(params, "Ignore-Unparsable"),
        source=_get(params, "SOURCE") or "",
        visit=_get(params, "VISIT") or "",
        protocol=_get(params, "PROTOCOL") or "",
        timezone=_get(params, "TIMEZONE") or "",
    )


def for_local_import(
    project: str | None, subject: str | None, session: str | None, archive: bool
) -> ImportOptions:
    """The options ``xnatd import`` uses: a zip of a folder, committed; archived before the command
    returns with ``--archive`` (as ``dest=/archive``: its own sessions, archived at once)."""
    opts = ImportOptions(labels=Overrides(project, subject, session), commit=True, source="xnatd import")
    if archive:
        return replace(opts, dest=Destination("archive", project, subject, session))
    return replace(opts, dest=Destination("prearchive", project))


def replace_overwrite(opts: ImportOptions, overwrite: str) -> ImportOptions:
    return replace(opts, overwrite=OVERWRITE[overwrite])


@dataclass(frozen=True)
class ArchiveOptions:
    """How ``/data/services/archive`` (or an auto-archive) files a prearchive session."""

    project: str | None = None
    subject: str | None = None
    label: str | None = None
    overwrite: str = "none"
    overwrite_files: bool = False


def archive_options(params: Params) -> ArchiveOptions:
    raw_dest = _get(params, "dest")
    dest = parse_destination(raw_dest) if raw_dest else None
    if dest is not None and dest.root != "archive":
        raise InvalidInput(f"dest must be an archive URI, not {raw_dest}")
    overwrite = (_get(params, "overwrite") or "none").strip().lower()
    if overwrite not in OVERWRITE:
        raise InvalidInput(f"Invalid overwrite value {overwrite!r}: none, append or delete")
    return ArchiveOptions(
        project=_get(params, "project", "PROJECT_ID") or (dest.project if dest else None),
        subject=_get(params, "subject", "SUBJECT_ID", "xnat:subjectAssessorData/subject_ID")
        or (dest.subject if dest else None),
        label=_get(params, "session", "label", "EXPT_LABEL")
        or _xpath_label(params)
        or (dest.session if dest else None),
        overwrite=OVERWRITE[overwrite],
        overwrite_files=bool(_flag(params, "overwrite_files")),
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


# --- who files into a prearchive session (``prearchive_sessions.intake``) -----------------------------


def archives_itself(opts: ImportOptions, autoarchive: int | None) -> bool:
    """Whether an import archives the sessions it files at once, before it answers: ``dest=/archive``,
    or an auto-archive session (``autoarchive`` 4 or 5) filed by a whole upload (a zip, SI) or a
    committed one, unless ``dest`` names the prearchive (``importer._settle`` follows the same rule)."""
    if opts.to_archive and not opts.direct_archive:
        return True
    if autoarchive is None or autoarchive < 4 or (opts.dest is not None and opts.dest.root == "prearchive"):
        return False
    if opts.dicom_zip and opts.auto_archive is not True:
        return False  # XNAT's DicomZipImporter archives when told to, never by the project's code
    return opts.handler != GRADUAL or opts.commit


def intake(opts: ImportOptions, project: str | None, autoarchive: int | None) -> str | None:
    """Which session an import's files of a study join: the study's shared prearchive session (None,
    as in XNAT), the Direct-Archive staging session for these options, or a session of the request's
    own (``REQUEST``) when it archives them itself, so no other import's files are archived with
    them or half-way through. Unassigned files always join the shared session: nothing archives it."""
    if project is None:
        return None
    if opts.direct_archive:
        return f"{DIRECT}{opts.overwrite}{'+files' if opts.overwrite_files else ''}"
    return REQUEST if archives_itself(opts, autoarchive) else None


def staged_options(intake: str | None) -> ArchiveOptions | None:
    """How a Direct-Archive staging session is archived (None: the session is not one)."""
    if intake is None or not intake.startswith(DIRECT):
        return None
    overwrite, _, files = intake.removeprefix(DIRECT).partition("+")
    return ArchiveOptions(overwrite=OVERWRITE.get(overwrite, "none"), overwrite_files=files == "files")
