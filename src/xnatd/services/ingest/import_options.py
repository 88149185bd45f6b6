"""The parameters of an import, as XNAT's import service reads them, in one typed value.

REST imports (``POST /data/services/import``), ``xnatd import`` and the DICOM receiver all describe
what they want with an ``ImportOptions``; only this module knows XNAT's parameter names and aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from xnatd.dicom.identify import Overrides
from xnatd.domain.labels import check_length
from xnatd.domain.params import Params, param
from xnatd.domain.params import maybe_flag as flag
from xnatd.errors import NotFound
from xnatd.services.prearchive.archive_options import (
    DIRECT,
    OVERWRITE,
    Destination,
    overwrite_mode,
    parse_destination,
)

DICOM_ZIP, GRADUAL, SI = "DICOM-zip", "gradual-DICOM", "SI"
HANDLERS = {"dicom-zip": DICOM_ZIP, "gradual-dicom": GRADUAL, "si": SI}
REQUEST = "request"  # the intake of a session one import request files into, and archives itself


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


def media_type(content_type: str | None) -> str:
    """A Content-Type's media type, lower case, without its parameters (``; charset=...``)."""
    return (content_type or "").split(";")[0].strip().lower()


def parse(params: Params, content_type: str | None) -> ImportOptions:
    """The options of a ``POST /data/services/import`` request."""
    raw_handler = param(params, "import-handler")
    if raw_handler:
        handler = HANDLERS.get(raw_handler.strip().lower())
        if handler is None:
            raise NotFound(f"No import handler named {raw_handler} (DICOM-zip, gradual-DICOM or SI)")
    elif media_type(content_type) == "application/dicom":
        handler = GRADUAL
    else:
        handler = DICOM_ZIP
    raw_dest = param(params, "dest")
    dest = parse_destination(raw_dest) if raw_dest else None
    labels = Overrides(
        project=check_length(
            param(params, "PROJECT_ID", "project") or (dest.project if dest else None), "project"
        ),
        subject=check_length(
            param(params, "SUBJECT_ID", "subject") or (dest.subject if dest else None), "subject"
        ),
        session=check_length(
            param(params, "EXPT_LABEL", "session", "label")
            or (dest.session if dest and dest.root == "archive" else None),
            "session",
        ),
    )
    return ImportOptions(
        handler=handler,
        handler_given=bool(raw_handler),
        labels=labels,
        dest=dest,
        overwrite=overwrite_mode(params),
        overwrite_files=bool(flag(params, "overwrite_files")),
        rename=bool(flag(params, "rename")),
        auto_archive=flag(params, "AA", "auto-archive"),
        direct_archive=bool(flag(params, "Direct-Archive")),
        commit=(param(params, "action") or "").strip().lower() == "commit",
        ignore_unparsable=flag(params, "Ignore-Unparsable"),
        source=param(params, "SOURCE") or "",
        visit=param(params, "VISIT") or "",
        protocol=param(params, "PROTOCOL") or "",
        timezone=param(params, "TIMEZONE") or "",
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
