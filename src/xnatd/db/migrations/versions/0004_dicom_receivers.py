"""dicom_receivers: DICOM C-STORE receivers (AE title + port) defined through /xapi/dicomscp

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dicom_receivers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ae_title", sa.String(length=16), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("direct_archive", sa.Boolean(), nullable=False),
        sa.Column("whitelist_enabled", sa.Boolean(), nullable=False),
        sa.Column("whitelist", sa.JSON(), nullable=False),
        sa.Column("routing_enabled", sa.Boolean(), nullable=False),
        sa.Column("project_routing", sa.Text(), nullable=False),
        sa.Column("subject_routing", sa.Text(), nullable=False),
        sa.Column("session_routing", sa.Text(), nullable=False),
        sa.Column("modified", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dicom_receivers")),
        sa.UniqueConstraint("ae_title", "port", name="uq_dicom_receivers_ae_title_port"),
    )


def downgrade() -> None:
    op.drop_table("dicom_receivers")
