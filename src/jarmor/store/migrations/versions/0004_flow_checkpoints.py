"""Signed checkpoints of the flow record chain head (``flow_checkpoints``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

A frozen copy of the table in ``flow_schema.py`` as first released.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "flow_checkpoints",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_flow_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("flow_checkpoints")
