"""Authenticators: passkeys (WebAuthn credentials) and TOTP second factors (``authenticators``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A frozen copy of the table in ``account_schema.py`` as first released.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "authenticators",
        sa.Column("authenticator_id", sa.String(), nullable=False),
        sa.Column("population", sa.String(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("credential_id", sa.String(), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.Text(), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backup_state", sa.Boolean(), nullable=False),
        sa.Column("user_verified", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("authenticator_id", name="pk_authenticators"),
    )
    op.create_index(
        "ix_authenticators_population_username", "authenticators", ["population", "username"], unique=False
    )
    op.create_index("ix_authenticators_credential_id", "authenticators", ["credential_id"], unique=True)
    # if_not_exists: a database created before migrations shipped is adopted with today's tables
    op.create_index("ix_grants_subject", "grants", ["subject"], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_grants_subject", table_name="grants")
    op.drop_index("ix_authenticators_credential_id", table_name="authenticators")
    op.drop_index("ix_authenticators_population_username", table_name="authenticators")
    op.drop_table("authenticators")
