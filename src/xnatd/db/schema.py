"""The database tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them.

Typed fields of the registry live in a JSON ``fields`` column per object; the few columns that
listings filter and sort on (labels, dates, types) are real columns.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

LABEL = 255

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(LABEL), primary_key=True),
    Column("secondary_id", String(LABEL), nullable=False, default=""),
    Column("name", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("accessibility", String(16), nullable=False, default="private"),
    Column("prearchive_code", Integer, nullable=False, default=0),
    Column("current_arc", String(64), nullable=False, default="arc001"),
    # whether the project's collaborators may share its data into other projects (XNAT's
    # project_sharing feature turned on for the collaborators' group); editors always may
    Column("collaborator_sharing", Boolean, nullable=False, default=False, server_default=false()),
    Column("fields", JSON, nullable=False, default=dict),
    Column("insert_date", DateTime, nullable=False),
    Column("insert_user", String(LABEL), nullable=False, default=""),
)

project_aliases = Table(
    "project_aliases",
    metadata,
    Column("alias", String(LABEL), primary_key=True),
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
)

project_users = Table(
    "project_users",
    metadata,
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("username", String(LABEL), primary_key=True),
    Column("role", String(16), nullable=False),
)

subjects = Table(
    "subjects",
    metadata,
    Column("id", String(LABEL), primary_key=True),
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(LABEL), nullable=False),
    Column("fields", JSON, nullable=False, default=dict),
    Column("insert_date", DateTime, nullable=False),
    Column("insert_user", String(LABEL), nullable=False, default=""),
    Column("last_modified", DateTime, nullable=True),
    UniqueConstraint("project_id", "label", name="uq_subjects_project_label"),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(LABEL), primary_key=True),
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("subject_id", String(LABEL), ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True),
    Column("session_id", String(LABEL), ForeignKey("experiments.id", ondelete="CASCADE"), nullable=True),
    Column("label", String(LABEL), nullable=False),
    Column("xsi_type", String(128), nullable=False),
    Column("date", String(10), nullable=True),
    Column("time", String(16), nullable=True),
    Column("fields", JSON, nullable=False, default=dict),
    Column("insert_date", DateTime, nullable=False),
    Column("insert_user", String(LABEL), nullable=False, default=""),
    Column("last_modified", DateTime, nullable=True),
    UniqueConstraint("project_id", "label", name="uq_experiments_project_label"),
    Index("ix_experiments_subject", "subject_id"),
    Index("ix_experiments_session", "session_id"),
    Index("ix_experiments_xsi_type", "xsi_type"),
)

# Scans and reconstructions: children of an image session, identified by a short ID in it.
scans = Table(
    "scans",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("experiment_id", String(LABEL), ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False, default="scan"),  # scan | reconstruction
    Column("scan_id", String(LABEL), nullable=False),
    Column("xsi_type", String(128), nullable=False),
    Column("type", String(LABEL), nullable=True),
    Column("fields", JSON, nullable=False, default=dict),
    Column("insert_date", DateTime, nullable=False),
    UniqueConstraint("experiment_id", "kind", "scan_id", name="uq_scans_experiment_kind_id"),
)

shares = Table(
    "shares",
    metadata,
    Column("kind", String(16), primary_key=True),  # subject | experiment
    Column("object_id", String(LABEL), primary_key=True),
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("label", String(LABEL), nullable=False),
    UniqueConstraint("project_id", "kind", "label", name="uq_shares_project_kind_label"),
)

resources = Table(
    "resources",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(300), nullable=False),  # "project:P", "subject:ID", "experiment:ID", "scan:pk"
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(LABEL), nullable=False),
    Column("format", String(LABEL), nullable=False, default=""),
    Column("content", String(LABEL), nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("tags", Text, nullable=False, default=""),
    Column("directory", Text, nullable=False),  # relative to the archive root
    Column("insert_date", DateTime, nullable=False),
    UniqueConstraint("owner", "label", name="uq_resources_owner_label"),
    UniqueConstraint("directory", name="uq_resources_directory"),
)

files = Table(
    "files",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("resource_pk", Integer, ForeignKey("resources.pk", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("md5", String(32), nullable=False),
    Column("format", String(LABEL), nullable=False, default=""),
    Column("content", String(LABEL), nullable=False, default=""),
    Column("tags", Text, nullable=False, default=""),
    Column("modified", DateTime, nullable=False),
    Column("created_by", String(LABEL), nullable=False, default=""),
    UniqueConstraint("resource_pk", "path", name="uq_files_resource_path"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(LABEL), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("email", String(LABEL), nullable=False, default=""),
    Column("first_name", String(LABEL), nullable=False, default=""),
    Column("last_name", String(LABEL), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("verified", Boolean, nullable=False, default=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created", DateTime, nullable=False),
    Column("last_modified", DateTime, nullable=False),
    Column("last_login", DateTime, nullable=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime, nullable=True),
)

http_sessions = Table(
    "http_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("username", String(LABEL), nullable=False),
    Column("created", DateTime, nullable=False),
    Column("last_access", DateTime, nullable=False),
    # the alias token the session was opened with (NULL: a password): it lives only as long as the
    # token, and, like the token, may not change the account
    Column("token_alias", String(64), nullable=True),
    Index("ix_http_sessions_last_access", "last_access"),
    Index("ix_http_sessions_username", "username"),
)

alias_tokens = Table(
    "alias_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alias", String(64), nullable=False, unique=True),
    Column("secret_hash", String(128), nullable=False),
    Column("username", String(LABEL), nullable=False),
    Column("created", DateTime, nullable=False),
    Column("expires", DateTime, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("single_use", Boolean, nullable=False, default=False),
)

# --- DICOM import: the prearchive and the SOP instances of archived DICOM files ---------------------
# A prearchive session is a folder DATA/prearchive/{directory} holding SCANS/{scan_dir}/DICOM/{file}.
# ``project`` NULL is XNAT's "Unassigned". Files and series are rows so that building, listing and
# archiving never walk the folder, and so that a SOP instance is stored once per session.
prearchive_sessions = Table(
    "prearchive_sessions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("project", String(LABEL), nullable=True),
    Column("timestamp", String(32), nullable=False),
    Column("folder", String(LABEL), nullable=False),
    Column("name", String(LABEL), nullable=False),
    Column("subject", String(LABEL), nullable=False, default=""),
    Column("tag", String(128), nullable=False, default=""),  # StudyInstanceUID
    Column("status", String(32), nullable=False),
    Column("xsi_type", String(128), nullable=False, default=""),
    Column("fields", JSON, nullable=False, default=dict),  # session values from the headers
    Column("autoarchive", Integer, nullable=True),  # 0, 4, 5; NULL = decide at build time
    Column("prevent_anon", Boolean, nullable=False, default=False),
    Column("prevent_auto_commit", Boolean, nullable=False, default=False),
    Column("source", String(LABEL), nullable=False, default=""),
    Column("visit", String(LABEL), nullable=False, default=""),
    Column("protocol", String(LABEL), nullable=False, default=""),
    Column("timezone", String(64), nullable=False, default=""),
    Column("scan_date", String(10), nullable=True),
    Column("scan_time", String(16), nullable=True),
    Column("uploaded", DateTime, nullable=False),
    Column("lastmod", DateTime, nullable=False),
    Column("built", DateTime, nullable=True),
    Column("directory", String(600), nullable=False),  # relative to DATA/prearchive
    Column("log", Text, nullable=False, default=""),
    # NULL: any import of the study files into it (XNAT's prearchive); "request": one import request's
    # own, archived by that request; "direct:{overwrite}[+files]": the staging session of the study's
    # Direct-Archive imports, archived with those options once no file has come for a while
    Column("intake", String(32), nullable=True),
    UniqueConstraint("directory", name="uq_prearchive_sessions_directory"),
    Index("ix_prearchive_sessions_project_tag", "project", "tag"),
    Index("ix_prearchive_sessions_status", "status"),
)

prearchive_series = Table(
    "prearchive_series",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("session_pk", Integer, ForeignKey("prearchive_sessions.pk", ondelete="CASCADE"), nullable=False),
    Column("uid", String(128), nullable=False),
    Column("number", String(64), nullable=False, default=""),
    Column("modality", String(16), nullable=False, default=""),
    Column("xsi_type", String(128), nullable=False),
    Column("scan_dir", String(LABEL), nullable=False),  # folder under SCANS/ (shared by colliding numbers)
    Column("scan_id", String(LABEL), nullable=True),  # assigned when the session is built
    Column("description", Text, nullable=False, default=""),
    Column("fields", JSON, nullable=False, default=dict),
    UniqueConstraint("session_pk", "uid", "number", name="uq_prearchive_series_session_uid_number"),
)

prearchive_files = Table(
    "prearchive_files",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("session_pk", Integer, ForeignKey("prearchive_sessions.pk", ondelete="CASCADE"), nullable=False),
    Column("series_pk", Integer, ForeignKey("prearchive_series.pk", ondelete="CASCADE"), nullable=False),
    Column("sop_uid", String(128), nullable=False),
    Column("sop_class", String(128), nullable=False, default=""),
    Column("name", String(LABEL), nullable=False),  # in SCANS/{scan_dir}/DICOM/
    Column("size", BigInteger, nullable=False),
    Column("md5", String(32), nullable=False),
    UniqueConstraint("session_pk", "sop_uid", name="uq_prearchive_files_session_sop_uid"),
    Index("ix_prearchive_files_series", "series_pk"),
)

# The SOP instance behind each archived DICOM file, so that appending to a session never stores an
# instance twice. Rows go with their file (and experiment).
dicom_instances = Table(
    "dicom_instances",
    metadata,
    Column("file_pk", Integer, ForeignKey("files.pk", ondelete="CASCADE"), primary_key=True),
    Column("experiment_id", String(LABEL), ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False),
    Column("sop_uid", String(128), nullable=False),
    Column("series_uid", String(128), nullable=False, default=""),
    UniqueConstraint("experiment_id", "sop_uid", name="uq_dicom_instances_experiment_sop_uid"),
)

# --- processing jobs (see domain/jobs.py for the state machine) -------------------------------------
# One row per (command, scan). ``spec`` is the command definition as it was when the job was queued,
# so editing or deleting a definition never changes a job already asked for. ``run_dir`` (relative to
# DATA/jobs) names the folder of the current run; a result for any other run is stale and dropped.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("experiment_id", String(LABEL), ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False),
    Column("scan_pk", Integer, ForeignKey("scans.pk", ondelete="CASCADE"), nullable=True),
    Column("target", Text, nullable=False),
    Column("spec", JSON, nullable=False, default=dict),
    Column("username", String(LABEL), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=3),
    Column("exit_code", Integer, nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("log", Text, nullable=False, default=""),
    Column("worker", String(LABEL), nullable=False, default=""),
    Column("run_dir", String(LABEL), nullable=False, default=""),
    Column("output_resource_pk", Integer, ForeignKey("resources.pk", ondelete="SET NULL"), nullable=True),
    Column("created", DateTime, nullable=False),
    Column("started", DateTime, nullable=True),
    Column("finished", DateTime, nullable=True),
    Column("heartbeat", DateTime, nullable=True),
    Index("ix_jobs_status", "status"),
    Index("ix_jobs_project_status", "project_id", "status"),
    Index("ix_jobs_scan", "scan_pk"),
)

# Commands a site administrator registered (the built-in dcm2niix is in code, not here).
job_commands = Table(
    "job_commands",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("created_by", String(LABEL), nullable=False, default=""),
    Column("modified", DateTime, nullable=False),
)

# Commands a project runs on every scan of a session when the session is archived.
job_automations = Table(
    "job_automations",
    metadata,
    Column("project_id", String(LABEL), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("command", String(64), primary_key=True),
)
