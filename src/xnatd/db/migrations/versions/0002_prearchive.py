"""prearchive: sessions, series and files of DICOM imports; SOP instances of archived DICOM

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prearchive_sessions",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=255), nullable=True),
        sa.Column("timestamp", sa.String(length=32), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("xsi_type", sa.String(length=128), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("autoarchive", sa.Integer(), nullable=True),
        sa.Column("prevent_anon", sa.Boolean(), nullable=False),
        sa.Column("prevent_auto_commit", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("visit", sa.String(length=255), nullable=False),
        sa.Column("protocol", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("scan_date", sa.String(length=10), nullable=True),
        sa.Column("scan_time", sa.String(length=16), nullable=True),
        sa.Column("uploaded", sa.DateTime(), nullable=False),
        sa.Column("lastmod", sa.DateTime(), nullable=False),
        sa.Column("built", sa.DateTime(), nullable=True),
        sa.Column("directory", sa.String(length=600), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_prearchive_sessions")),
        sa.UniqueConstraint("directory", name="uq_prearchive_sessions_directory"),
    )
    with op.batch_alter_table("prearchive_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_prearchive_sessions_project_tag", ["project", "tag"], unique=False)
        batch_op.create_index("ix_prearchive_sessions_status", ["status"], unique=False)

    op.create_table(
        "prearchive_series",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_pk", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=128), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("xsi_type", sa.String(length=128), nullable=False),
        sa.Column("scan_dir", sa.String(length=255), nullable=False),
        sa.Column("scan_id", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_pk"],
            ["prearchive_sessions.pk"],
            name=op.f("fk_prearchive_series_session_pk_prearchive_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_prearchive_series")),
        sa.UniqueConstraint("session_pk", "uid", "number", name="uq_prearchive_series_session_uid_number"),
    )
    op.create_table(
        "prearchive_files",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_pk", sa.Integer(), nullable=False),
        sa.Column("series_pk", sa.Integer(), nullable=False),
        sa.Column("sop_uid", sa.String(length=128), nullable=False),
        sa.Column("sop_class", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_pk"],
            ["prearchive_series.pk"],
            name=op.f("fk_prearchive_files_series_pk_prearchive_series"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_pk"],
            ["prearchive_sessions.pk"],
            name=op.f("fk_prearchive_files_session_pk_prearchive_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_prearchive_files")),
        sa.UniqueConstraint("session_pk", "sop_uid", name="uq_prearchive_files_session_sop_uid"),
    )
    with op.batch_alter_table("prearchive_files", schema=None) as batch_op:
        batch_op.create_index("ix_prearchive_files_series", ["series_pk"], unique=False)

    op.create_table(
        "dicom_instances",
        sa.Column("file_pk", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.String(length=255), nullable=False),
        sa.Column("sop_uid", sa.String(length=128), nullable=False),
        sa.Column("series_uid", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_dicom_instances_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_pk"], ["files.pk"], name=op.f("fk_dicom_instances_file_pk_files"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("file_pk", name=op.f("pk_dicom_instances")),
        sa.UniqueConstraint("experiment_id", "sop_uid", name="uq_dicom_instances_experiment_sop_uid"),
    )


def downgrade() -> None:
    op.drop_table("dicom_instances")
    with op.batch_alter_table("prearchive_files", schema=None) as batch_op:
        batch_op.drop_index("ix_prearchive_files_series")

    op.drop_table("prearchive_files")
    op.drop_table("prearchive_series")
    with op.batch_alter_table("prearchive_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_prearchive_sessions_status")
        batch_op.drop_index("ix_prearchive_sessions_project_tag")

    op.drop_table("prearchive_sessions")
