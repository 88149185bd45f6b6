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
    Index("ix_http_sessions_last_access", "last_access"),
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
