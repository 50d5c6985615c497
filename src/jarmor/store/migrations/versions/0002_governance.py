"""Governance: dashboard administrators, the administrative audit log, client key first-seen times.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_admin_users"),
    )
    op.create_table(
        "admin_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_admin_events"),
    )
    op.create_index("ix_admin_events_target", "admin_events", ["target"])
    op.create_table(
        "client_keys",
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("thumbprint", sa.String(), nullable=False),
        sa.Column("kid", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("client_id", "thumbprint", name="pk_client_keys"),
    )


def downgrade() -> None:
    op.drop_table("client_keys")
    op.drop_index("ix_admin_events_target", table_name="admin_events")
    op.drop_table("admin_events")
    op.drop_table("admin_users")
