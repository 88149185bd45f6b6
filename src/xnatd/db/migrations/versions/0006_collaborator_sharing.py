"""projects.collaborator_sharing: whether a project's collaborators may share its data out

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (no table copy): on SQLite, copying ``projects`` would cascade-delete
    # every row that refers to it
    op.add_column(
        "projects",
        sa.Column("collaborator_sharing", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("projects", "collaborator_sharing")
