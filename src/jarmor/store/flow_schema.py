"""SQL tables for flow integrity records (``FlowRecordStore``), in the same ``MetaData`` as ``schema.py``.

``schema.py`` imports this module, so the tables exist wherever the metadata is used (``create_all``
for a fresh SQLite database, Alembic's comparison with the migrations). Migration: ``0003_flow_records``.

* ``flow_records`` — one row per chained record. ``seq`` is assigned by the appender (not autoincrement): it is
  part of the hashed body, so it must be known before the row is written. ``body`` is the canonical JSON that
  the hash covers; the other columns are copies of body members, kept for indexed queries (``jarmor flows
  verify`` checks that they agree with the body).
* ``flow_chain`` — the chain head: the last ``seq`` and its hash. Appenders lock this row for the duration of
  their transaction (that is what serializes concurrent appenders across processes and nodes), and it is what
  reveals a truncated tail (records deleted from the end would otherwise leave a valid shorter chain).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from .metadata import metadata

flow_records = Table(
    "flow_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("flow_id", String, nullable=False),
    Column("stage", String, nullable=False),
    Column("outcome", String, nullable=False),
    Column("client_id", String),
    Column("body", Text, nullable=False),
    Column("prev_hash", String, nullable=False),
    Column("hash", String, nullable=False),
    Index(None, "flow_id"),
    Index(None, "client_id", "at"),
    Index(None, "at"),
)

flow_chain = Table(
    "flow_chain",
    metadata,
    Column("chain", String, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String, nullable=False),
)

# signed checkpoints of the chain head (``governance/checkpoints.py``); migration ``0004_flow_checkpoints``
flow_checkpoints = Table(
    "flow_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("jws", Text, nullable=False),
)

__all__ = ["flow_chain", "flow_checkpoints", "flow_records"]
