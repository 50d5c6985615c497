"""Schema versions: the Alembic migrations match ``schema.py``; stores check or ensure the revision on open;
``jarmor db upgrade``."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from jarmor.cli.main import main
from jarmor.store import SqlStore, migrate, schema

from . import services


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), schema.metadata))


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return migrate.current_revision(conn)


def test_head_names_the_newest_migration() -> None:
    assert migrate.script_head() == migrate.HEAD


def test_migrations_on_sqlite_match_schema_py(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    assert migrate.upgrade(engine) == (None, migrate.HEAD)
    assert _diff(engine) == []
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert migrate.upgrade(engine) == (None, migrate.HEAD)
    assert _diff(engine) == []


@pytest.mark.postgres
def test_migrations_on_postgres_match_schema_py() -> None:
    with services.postgres_schema(migrate=False) as url:
        store = SqlStore.open(url, create_tables=False)
        try:
            assert migrate.upgrade(store.engine) == (None, migrate.HEAD)
            assert _diff(store.engine) == []
            assert migrate.upgrade(store.engine) == (migrate.HEAD, migrate.HEAD)
        finally:
            store.engine.dispose()


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgres_take_turns() -> None:
    with services.postgres_schema(migrate=False) as url:
        results: list[tuple[str | None, str | None]] = []
        errors: list[BaseException] = []

        def run() -> None:
            store = SqlStore.open(url, create_tables=False)
            try:
                results.append(migrate.upgrade(store.engine))
            except BaseException as exc:
                errors.append(exc)
            finally:
                store.engine.dispose()

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert sorted(results, key=str) == sorted(
            [(None, migrate.HEAD), (migrate.HEAD, migrate.HEAD), (migrate.HEAD, migrate.HEAD)], key=str
        )


async def test_fresh_sqlite_is_created_and_stamped(tmp_path: Path) -> None:
    """create_all on open gives exactly what the migrations give, stamped at HEAD: upgrading is a no-op."""
    store = SqlStore.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert _revision(store.engine) == migrate.HEAD
        assert _diff(store.engine) == []
        assert migrate.upgrade(store.engine) == (migrate.HEAD, migrate.HEAD)
    finally:
        await store.close()
    migrated = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    migrate.upgrade(migrated)
    stamped = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    for engine in (migrated, stamped):
        insp = inspect(engine)
        assert insp.get_pk_constraint("alembic_version")["name"] == "alembic_version_pkc"
    assert [c["type"].length for c in inspect(stamped).get_columns("alembic_version")] == [32]


async def test_sqlite_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    legacy = create_engine(url)
    # the tables of the initial release only (later revisions add theirs on adoption)
    initial = ("clients", "users", "server_keys", "tokens", "grants", "ephemeral")
    schema.metadata.create_all(legacy, tables=[schema.metadata.tables[name] for name in initial])
    with legacy.begin() as conn:
        conn.exec_driver_sql("INSERT INTO users VALUES ('alice', 'h', 1, 0)")
    store = SqlStore.open(url)
    try:
        assert _revision(store.engine) == migrate.HEAD
        assert await store.users.get("alice") is not None
    finally:
        await store.close()


def test_db_upgrade_command_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sub" / "cli.db"
    url = f"sqlite:///{path}"
    assert main(["db", "upgrade", "--database", url]) == 0
    assert f"upgraded from revision (empty) to {migrate.HEAD}" in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert main(["db", "upgrade", "--database", url]) == 0
    assert "nothing to do" in capsys.readouterr().out

    opened_first = tmp_path / "opened.db"
    SqlStore.open(f"sqlite:///{opened_first}").engine.dispose()
    assert main(["db", "upgrade", "--database", f"sqlite:///{opened_first}"]) == 0
    assert "nothing to do" in capsys.readouterr().out, "a database the server created needs no upgrade"

    assert main(["db", "upgrade", "--database", "memory://"]) == 2


@pytest.mark.postgres
def test_db_upgrade_command_then_serve_on_postgres(capsys: pytest.CaptureFixture[str]) -> None:
    with services.postgres_schema(migrate=False) as url:
        with socket.socket() as probe:  # a free port: the schema check must be what stops serve
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        assert main(["serve", "--database", url, "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert "needs revision" in err and "jarmor db upgrade --database" in err

        assert main(["db", "upgrade", "--database", url]) == 0
        assert f"to {migrate.HEAD}" in capsys.readouterr().out
        assert main(["db", "upgrade", "--database", url]) == 0
        assert "nothing to do" in capsys.readouterr().out
