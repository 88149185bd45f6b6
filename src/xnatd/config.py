"""The one place settings are read.

Every setting has a default, an environment variable ``XNATD_<NAME>`` and (for the ones a person
types) a ``xnatd serve`` option; docs/settings.md lists them all and a test checks that the list and
this module agree.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Site settings. Field metadata ``doc`` is the one-line description published in docs/settings.md."""

    data: Path = field(
        default=Path("./data"), metadata={"doc": "Data folder: database, archive, prearchive, tmp."}
    )
    host: str = field(default="127.0.0.1", metadata={"doc": "Address the HTTP server listens on."})
    port: int = field(default=8080, metadata={"doc": "HTTP port."})
    dicom_port: int = field(default=8104, metadata={"doc": "DICOM C-STORE receiver port."})
    dicom_ae_title: str = field(default="XNAT", metadata={"doc": "AE title of the default DICOM receiver."})
    no_dicom: bool = field(default=False, metadata={"doc": "Do not start the DICOM receiver."})
    dicom_receivers: str = field(
        default="",
        metadata={
            "doc": "More DICOM receivers, a JSON list in the `/xapi/dicomscp` shape, e.g. "
            '`[{"aeTitle": "CT1", "port": 8105, "project": "P1"}]` (see docs/dicom-receiver.md).'
        },
    )
    dicom_processes: int = field(
        default=0,
        metadata={"doc": "DICOM receiver processes serving associations; 0 means one per core (at most 4)."},
    )
    dicom_timeout: int = field(
        default=60, metadata={"doc": "Seconds a DICOM association may stay silent before it is aborted."}
    )
    dicom_fsync: bool = field(
        default=False,
        metadata={
            "doc": "Flush each received DICOM object to disk before answering Success, so a power cut "
            "loses none (a process crash never does); costs a filesystem sync per object."
        },
    )
    dicom_filing_interval: float = field(
        default=0.5,
        metadata={
            "doc": "Seconds between the DICOM receiver's filing batches: objects acknowledged meanwhile wait "
            "in its flushed spool, then are indexed together in one transaction (larger batches, fewer "
            "transactions; a session's files appear in the prearchive that much later)."
        },
    )
    database_url: str = field(
        default="", metadata={"doc": "SQLAlchemy URL; empty means SQLite at DATA/xnatd.db (WAL mode)."}
    )
    workers: int = field(default=1, metadata={"doc": "Number of HTTP server processes."})
    admin_password: str = field(
        default="admin", metadata={"doc": "Password of the `admin` user created on first start."}
    )
    site_id: str = field(
        default="XNAT", metadata={"doc": "Site ID: prefix of accession IDs and Basic realm."}
    )
    site_url: str = field(
        default="", metadata={"doc": "Public base URL used in absolute links; empty means the request's own."}
    )
    session_timeout: int = field(default=900, metadata={"doc": "Idle timeout of login sessions, seconds."})
    allow_project_creation: bool = field(
        default=True, metadata={"doc": "Whether users who are not site administrators may create projects."}
    )
    guest_access: bool = field(
        default=False,
        metadata={"doc": "Let requests without credentials read public projects (as `guest`), nothing more."},
    )
    login_max_failures: int = field(
        default=10, metadata={"doc": "Failed logins in a row after which an account is locked for a while."}
    )
    login_lockout: int = field(
        default=300, metadata={"doc": "Seconds an account stays locked after too many failed logins."}
    )
    password_min_length: int = field(
        default=8, metadata={"doc": "Fewest characters of a new password (creating a user or changing one)."}
    )
    token_timeout: int = field(default=172800, metadata={"doc": "Lifetime of alias tokens, seconds (48 h)."})
    max_upload_bytes: int = field(
        default=0, metadata={"doc": "Largest accepted request body in bytes; 0 means unlimited."}
    )
    max_extract_bytes: int = field(
        default=64 * 1024**3,
        metadata={"doc": "Largest total uncompressed size of one uploaded zip/tar (zip-bomb guard)."},
    )
    max_extract_ratio: int = field(
        default=200, metadata={"doc": "Largest compression ratio of one archive member (zip-bomb guard)."}
    )
    max_extract_members: int = field(
        default=1_000_000, metadata={"doc": "Largest number of members in one uploaded zip/tar."}
    )
    import_processes: int = field(
        default=2,
        metadata={
            "doc": "Helper processes that unpack a zip import of 64 or more files side by side (header "
            "scans, MD5s and file writes; the server decides where each file goes); 0 = unpack in the "
            "server process. Each takes about 20 MB; they start with the first such import."
        },
    )
    zip_compression: int = field(
        default=0,
        metadata={"doc": "Default deflate level of zip downloads (0 = stored; DICOM barely compresses)."},
    )
    default_prearchive_code: int = field(
        default=4,
        metadata={
            "doc": "Prearchive code of a new project: 4 (XNAT's default: whole uploads and idle sessions "
            "are archived, merging into an existing session), 5 (the same, replacing the files of the "
            "instances sent again) or 0 (everything waits in the prearchive)."
        },
    )
    prearchive_idle_build: int = field(
        default=300,
        metadata={
            "doc": "Seconds without new files after which a RECEIVING prearchive session is built "
            "(and auto-archived if its project says so); XNAT waits 5 minutes."
        },
    )
    job_workers: int = field(
        default=2,
        metadata={
            "doc": "Jobs (dcm2niix conversions...) `xnatd serve` runs at once; 0 = none here "
            "(run `xnatd worker` elsewhere)."
        },
    )
    job_executor: str = field(
        default="local",
        metadata={
            "doc": "Where jobs run: `local` (processes on this machine) or `dask://HOST:PORT` (a Dask "
            "scheduler whose workers see DATA at the same path)."
        },
    )
    job_max_attempts: int = field(
        default=3,
        metadata={"doc": "Runs a job gets when runs are lost (server killed while it ran); then it fails."},
    )
    job_lost_after: int = field(
        default=60,
        metadata={"doc": "Seconds without a heartbeat after which a running job's dispatcher is gone."},
    )
    recover_after: int = field(
        default=3600,
        metadata={
            "doc": "Seconds after which start-up recovery deletes a temporary file or resets a prearchive "
            "session stuck in a transient status (younger ones may belong to a live process)."
        },
    )
    log_level: str = field(default="info", metadata={"doc": "Log level: debug, info, warning, error."})

    @property
    def database(self) -> str:
        """The effective database URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data / 'xnatd.db').resolve()}"

    @property
    def archive_dir(self) -> Path:
        return self.data / "archive"

    @property
    def prearchive_dir(self) -> Path:
        return self.data / "prearchive"

    @property
    def tmp_dir(self) -> Path:
        return self.data / "tmp"

    @property
    def jobs_dir(self) -> Path:
        return self.data / "jobs"

    def ensure_dirs(self) -> None:
        for d in (self.data, self.archive_dir, self.prearchive_dir, self.tmp_dir, self.jobs_dir):
            d.mkdir(parents=True, exist_ok=True)


def env_name(name: str) -> str:
    return f"XNATD_{name.upper()}"


def _convert(value: str, kind: Any) -> Any:
    if kind in (bool, "bool"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if kind in (int, "int"):
        return int(value)
    if kind in (float, "float"):
        return float(value)
    if kind in (Path, "Path"):
        return Path(value)
    return value


def load(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then ``XNATD_*`` environment variables, then explicit overrides (CLI options)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(env_name(f.name))
        if raw is not None and raw != "":
            values[f.name] = _convert(raw, f.type)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    settings = Settings(**values)
    if isinstance(settings.data, str):
        settings = dataclasses.replace(settings, data=Path(settings.data))
    if settings.default_prearchive_code not in (0, 4, 5):
        raise ValueError(f"default_prearchive_code is 0, 4 or 5, not {settings.default_prearchive_code}")
    return settings


def describe() -> list[tuple[str, str, str, str]]:
    """(name, environment variable, default, description) for every setting, for docs and `xnatd settings`."""
    rows = []
    for f in fields(Settings):
        default = f.default if f.default is not dataclasses.MISSING else ""
        rows.append((f.name, env_name(f.name), str(default), f.metadata.get("doc", "")))
    return rows


def export(settings: Settings, environ: dict[str, str] | None = None) -> None:
    """Write settings to ``XNATD_*`` variables so worker processes started by uvicorn read the same."""
    env = os.environ if environ is None else environ
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, Path):
            value = value.resolve()
        env[env_name(f.name)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
