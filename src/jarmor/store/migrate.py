"""Schema versions: Alembic migrations (``migrations/``) and the checks stores make when they open.

* ``jarmor db upgrade`` (:func:`upgrade`) runs the migrations up to ``HEAD``. On PostgreSQL it holds a
  transaction-scoped advisory lock, so two nodes upgrading at once take turns, and the whole upgrade is one
  transaction (PostgreSQL has transactional DDL).
* A PostgreSQL store refuses to open unless the database is at ``HEAD`` (:func:`require_current`).
* An SQLite store keeps its zero-setup default (:func:`ensure_sqlite`): a fresh database is created from
  ``schema.py`` and *stamped* at ``HEAD``, exactly as if the migrations had run, so ``jarmor db upgrade`` on
  it is a no-op; an older one is migrated.

Progress (``jarmor db upgrade`` on a terminal) is per migration, "n of total": every migration so far changes
the schema only (tables, indexes) and copies no rows, so there is nothing to count inside one; a test fails
the day a migration runs DML (``op.execute``, ``bulk_insert``, ``get_bind``), so that migration adds a
per-row progress of its own.

The fast paths read ``alembic_version`` with plain SQLAlchemy and compare it with ``HEAD``; Alembic itself
(a few hundred milliseconds to import) is loaded only when there is something to migrate. ``HEAD`` must name
the newest revision in ``migrations/versions`` (a test checks it).

To add a revision: change ``schema.py``, then
``alembic.command.revision(alembic_config(url="sqlite:///scratch.db"), "what changed", autogenerate=True)``
against a scratch database at the previous head, review the generated file (name it ``NNNN_what.py``,
revision ``"NNNN"``) and set ``HEAD``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
    inspect,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from . import schema
from .base import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0005"
INITIAL = "0001"
VERSION_TABLE = "alembic_version"
SCRIPT_LOCATION = "jarmor.store:migrations"
# pg_advisory_xact_lock key shared by every ``jarmor db upgrade`` ("jarmor" in ASCII)
ADVISORY_LOCK_KEY = 0x6A61726D6F72

# Alembic's own version table, as ``alembic.runtime.migration`` defines it, for stamping without Alembic.
_version = Table(
    VERSION_TABLE,
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


class SchemaNotCurrent(StoreError):
    """The database schema is not at the revision this version of jarmor needs."""


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in the database (``None`` when it has no version table or no row)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    revisions = sorted(conn.execute(select(_version.c.version_num)).scalars())
    return ",".join(revisions) or None


class _Reader(Protocol):
    async def all(self, stmt: Any, params: Any) -> Sequence[Any]: ...


async def recorded_revision(db: _Reader) -> str | None:
    """The revision recorded in the database, read through a store's executor (readiness probes)."""
    rows = await db.all(select(_version.c.version_num), {})
    return ",".join(sorted(str(row[0]) for row in rows)) or None


def _has_jarmor_tables(conn: Connection) -> bool:
    return bool(inspect(conn).has_table(schema.clients.name))


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """An Alembic configuration for jarmor's migrations, run on ``connection`` (or a new one to ``url``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_head() -> str | None:
    """The newest revision among the migration scripts (what ``HEAD`` must say)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _migrate(conn: Connection, revision: str, progress: Callable[[int, int], None] | None = None) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = alembic_config(conn)
    try:
        if current_revision(conn) is None and _has_jarmor_tables(conn):
            # created before migrations shipped (create_all of the initial schema): adopt it
            command.stamp(config, INITIAL)
        if progress is not None:
            pending = ScriptDirectory.from_config(config).iterate_revisions(revision, current_revision(conn) or "base")
            total, applied = len(list(pending)), [0]

            def on_version_apply(**_: object) -> None:
                applied[0] += 1
                progress(applied[0], total)

            config.attributes["on_version_apply"] = on_version_apply
        command.upgrade(config, revision)
    except CommandError as exc:
        raise StoreError(f"cannot migrate the database: {exc}") from exc


def ensure_sqlite(conn: Connection) -> None:
    """Bring an SQLite database to ``HEAD``; ``conn`` is inside a ``BEGIN IMMEDIATE`` transaction."""
    revision = current_revision(conn)
    if revision == HEAD:
        return
    if revision is None and not _has_jarmor_tables(conn):
        schema.metadata.create_all(conn)
        _version.create(conn)
        conn.execute(_version.insert().values(version_num=HEAD))
        return
    _migrate(conn, "head")


def upgrade(
    engine: Engine, revision: str = "head", progress: Callable[[int, int], None] | None = None
) -> tuple[str | None, str | None]:
    """Run the migrations up to ``revision``; returns the revisions before and after. ``progress(n, total)``:
    after each migration applied, of the ``total`` pending."""
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
            before = current_revision(conn)
            if before == HEAD and revision == "head":
                return before, before  # nothing to do: do not load Alembic
            _migrate(conn, revision, progress)
            after = current_revision(conn)
            conn.commit()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the database: {exc}") from exc
    return before, after


def require_current(engine: Engine) -> None:
    """Raise ``SchemaNotCurrent`` unless the database is at ``HEAD``."""
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the database: {exc}") from exc
    if revision != HEAD:
        found = "no jarmor schema" if revision is None else f"schema revision {revision}"
        url = engine.url.render_as_string(hide_password=True)
        raise SchemaNotCurrent(
            f"the database has {found}, this version of jarmor needs revision {HEAD}: "
            f"run `jarmor db upgrade --database {url}` first"
        )
