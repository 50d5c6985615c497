"""SQL tables for the durable and ephemeral stores (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Portability rules, so the same tables serve SQLite now and PostgreSQL (with Alembic migrations) later:

* times are integer epoch seconds (``BigInteger``);
* JSON documents (client metadata, token ``extra``) are ``Text`` holding JSON, encoded and decoded by the
  store, so neither backend's JSON type semantics (key order, number handling) leak into round trips;
* identifiers are unbounded ``String`` / ``Text`` (a ``client_id`` may be a URL);
* no foreign keys between clients, grants and tokens: the in-memory reference store has none, and records
  such as tokens and grants outlive a deleted client for audit (revocation is explicit).

Naming convention is fixed so that Alembic migrations get stable constraint and index names.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

# flow integrity records and authenticators live in their own modules (leaves over ``metadata``, like this
# one); importing them here
# registers their tables in ``metadata`` wherever the schema is used (``create_all``, Alembic's comparison)
from . import account_schema as account_schema
from . import flow_schema as flow_schema
from .metadata import metadata

clients = Table(
    "clients",
    metadata,
    Column("client_id", String, primary_key=True),
    Column("metadata", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("secret_hash", Text),
    Column("registration_token_hash", Text),
    Column("disabled_at", BigInteger),
    Column("disabled_reason", Text),
    Column("disabled_by", Text),
    Column("last_used_at", BigInteger),
)

users = Table(
    "users",
    metadata,
    Column("username", String, primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

server_keys = Table(
    "server_keys",
    metadata,
    Column("kid", String, primary_key=True),
    Column("alg", String, nullable=False),
    Column("use", String, nullable=False),
    Column("private_jwk", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("active_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger),
    Column("state", String, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("subject", Text),
    Column("scope", Text, nullable=False),
    Column("grant_id", String),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("rotated_to", String),
    Column("extra", Text, nullable=False),
    Index(None, "grant_id"),
    Index(None, "client_id"),
)

grants = Table(
    "grants",
    metadata,
    Column("grant_id", String, primary_key=True),
    Column("client_id", String, nullable=False),
    Column("subject", Text),
    Column("scope", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("granted_by", Text),
    Column("revoked_at", BigInteger),
    Column("revoked_reason", Text),
    Index(None, "client_id"),
    Index(None, "subject"),  # the account page lists the grants one user gave (migration 0006)
)

admin_users = Table(
    "admin_users",
    metadata,
    Column("username", String, primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

# append-only audit log of administrative actions (offboarding, grant revocation, registration changes)
admin_events = Table(
    "admin_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String, nullable=False),
    Column("target", String),
    Column("reason", Text),
    Column("details", Text, nullable=False),
    Index(None, "target"),
)

# when each public key a client registered was first seen (its age), keyed by RFC 7638 thumbprint
client_keys = Table(
    "client_keys",
    metadata,
    Column("client_id", String, primary_key=True),
    Column("thumbprint", String, primary_key=True),
    Column("kid", Text, nullable=False),
    Column("first_seen_at", BigInteger, nullable=False),
    Column("removed_at", BigInteger),
)

ephemeral = Table(
    "ephemeral",
    metadata,
    Column("namespace", String, primary_key=True),
    Column("key", String, primary_key=True),
    Column("value", LargeBinary, nullable=False),
    # epoch seconds, rounded up: a row is live while ``expires_at > now``
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

__all__ = [
    "admin_events",
    "admin_users",
    "client_keys",
    "clients",
    "ephemeral",
    "grants",
    "metadata",
    "server_keys",
    "tokens",
    "users",
]
