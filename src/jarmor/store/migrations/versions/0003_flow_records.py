"""Flow integrity records: the hash-chained ``flow_records`` and their chain head ``flow_chain``.

Revision ID: 0003
Revises: 0002
Create Date: 2025-02-15

A frozen copy of ``flow_schema.py`` as first released. The chain head row is created by the first append.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "flow_records",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_flow_records"),
    )
    op.create_index("ix_flow_records_flow_id", "flow_records", ["flow_id"])
    op.create_index("ix_flow_records_client_id_at", "flow_records", ["client_id", "at"])
    op.create_index("ix_flow_records_at", "flow_records", ["at"])
    op.create_table(
        "flow_chain",
        sa.Column("chain", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("chain", name="pk_flow_chain"),
    )


def downgrade() -> None:
    op.drop_table("flow_chain")
    op.drop_index("ix_flow_records_at", table_name="flow_records")
    op.drop_index("ix_flow_records_client_id_at", table_name="flow_records")
    op.drop_index("ix_flow_records_flow_id", table_name="flow_records")
    op.drop_table("flow_records")
