"""SQL table for the authenticators accounts enrol (``AccountStore``), in the same ``MetaData`` as ``schema.py``.

``schema.py`` imports this module, like ``flow_schema.py``. Migration: ``0005_authenticators``.
A passkey's ``credential_id`` is unique across every account (the browser names the credential, not the
account, during a discoverable sign-in); TOTP rows leave it ``NULL``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Table, Text

from .metadata import metadata

authenticators = Table(
    "authenticators",
    metadata,
    Column("authenticator_id", String, primary_key=True),
    Column("population", String, nullable=False),
    Column("username", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("label", Text, nullable=False),
    Column("credential_id", String),
    Column("public_key", Text),
    Column("sign_count", BigInteger, nullable=False),
    Column("transports", Text, nullable=False),
    Column("backup_eligible", Boolean, nullable=False),
    Column("backup_state", Boolean, nullable=False),
    Column("user_verified", Boolean, nullable=False),
    Column("secret", Text),
    Column("last_step", BigInteger),
    Column("last_used_at", BigInteger),
    Index(None, "population", "username"),
    Index(None, "credential_id", unique=True),
)
