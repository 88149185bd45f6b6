"""http_sessions.token_alias: how a login session was opened (a password, or which alias token), and
an index to end every session of a user (password change, account disabled)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("http_sessions") as batch:
        batch.add_column(sa.Column("token_alias", sa.String(length=64), nullable=True))
        batch.create_index("ix_http_sessions_username", ["username"])


def downgrade() -> None:
    with op.batch_alter_table("http_sessions") as batch:
        batch.drop_index("ix_http_sessions_username")
        batch.drop_column("token_alias")
