"""``jarmor db upgrade``: bring the database schema to the revision this version of jarmor needs.

Run it once per deployment step, before (re)starting the nodes: a PostgreSQL-backed server refuses to start
on an older schema. SQLite databases are created and migrated on open as well, so there it is optional (and
a no-op on a database the server already opened).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..store import StoreError
from .common import add_state_options, config_from, ensure_database, fail, group, missing_module
from .progress import Progress


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from ..store import migrate
    from ..store.sql import SqlStore

    config = config_from(args)
    if config.database.startswith("memory:"):
        fail("the memory:// store has no schema to upgrade")
    try:
        shown = make_url(config.database).render_as_string(hide_password=True)
    except Exception:
        fail("the database URL cannot be parsed (sqlite:///path.db or postgresql+psycopg://user@host/db)")
    ensure_database(config.database, create=True)
    shown_progress = Progress("applying migrations")
    try:
        store = SqlStore.open(config.database, create_tables=False)
        try:
            before, after = migrate.upgrade(store.engine, progress=shown_progress.update)
        finally:
            shown_progress.done()
            store.engine.dispose()
    except StoreError as exc:
        fail(str(exc))
    except ModuleNotFoundError as exc:
        fail(missing_module(exc))
    if before == after:
        print(f"database {shown} is at revision {after} (nothing to do)")
    else:
        print(f"database {shown} upgraded from revision {before or '(empty)'} to {after}")
    return 0


def add_db_commands(sub: Any) -> None:
    """Register ``jarmor db ...`` on the top-level subparsers."""
    db = group(sub, "db", "manage the database schema")
    p = db.add_parser("upgrade", help="migrate the database schema to the current revision")
    add_state_options(p)
    p.set_defaults(func=cmd_db_upgrade)
