"""prearchive_sessions.intake: who files into a session (any import of its study, one request that
archives it itself, or the Direct-Archive imports of its study, archived once they are quiet)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prearchive_sessions") as batch:
        batch.add_column(sa.Column("intake", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prearchive_sessions") as batch:
        batch.drop_column("intake")
