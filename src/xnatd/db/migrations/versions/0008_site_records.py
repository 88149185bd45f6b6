"""site_records: site configuration values, the configuration service, workflows, stored searches and
status messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_config",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("modified", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_site_config")),
    )
    op.create_table(
        "config_entries",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tool", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("entity", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("unversioned", sa.Boolean(), nullable=False),
        sa.Column("contents", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_config_entries_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_config_entries")),
        sa.UniqueConstraint(
            "entity", "tool", "path", "version", name="uq_config_entries_entity_tool_path_version"
        ),
    )
    op.create_index("ix_config_entries_project", "config_entries", ["project_id"])
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("data_type", sa.String(length=128), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("scan_id", sa.String(length=255), nullable=True),
        sa.Column("pipeline_name", sa.Text(), nullable=False),
        sa.Column("launch_time", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("insert_user", sa.String(length=255), nullable=False),
        sa.Column("insert_date", sa.DateTime(), nullable=False),
        sa.Column("last_modified", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_workflows_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_workflows_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
    )
    op.create_index("ix_workflows_object", "workflows", ["object_id"])
    op.create_index("ix_workflows_project", "workflows", ["project_id"])
    op.create_table(
        "stored_searches",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("root_element_name", sa.String(length=128), nullable=False),
        sa.Column("brief_description", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=True),
        sa.Column("secure", sa.Boolean(), nullable=False),
        sa.Column("bundle", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("modified", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_searches")),
    )
    op.create_table(
        "stored_search_users",
        sa.Column("search_id", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["stored_searches.id"],
            name=op.f("fk_stored_search_users_search_id_stored_searches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("search_id", "username", name=op.f("pk_stored_search_users")),
    )

    op.create_table(
        "status_messages",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("transaction_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_status_messages")),
    )
    op.create_index("ix_status_messages_user_transaction", "status_messages", ["username", "transaction_id"])


def downgrade() -> None:
    op.drop_index("ix_status_messages_user_transaction", table_name="status_messages")
    op.drop_table("status_messages")
    op.drop_table("stored_search_users")
    op.drop_table("stored_searches")
    op.drop_index("ix_workflows_project", table_name="workflows")
    op.drop_index("ix_workflows_object", table_name="workflows")
    op.drop_table("workflows")
    op.drop_index("ix_config_entries_project", table_name="config_entries")
    op.drop_table("config_entries")
    op.drop_table("site_config")
