"""How the SQL stores run statements: the ``Executor`` / ``Transaction`` protocols that the SQLite
(``sqlite.SqliteDb``) and PostgreSQL (``postgres.PostgresDb``) drivers implement, statements compiled once per
dialect (``Compiled``), and the statement builders and JSON column codec every SQL store shares.

The leaf of the ``store.sql`` package: every other module of it imports this one, and it imports nothing of
jarmor's but ``store.base`` (no import cycle)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, cast

import orjson
from sqlalchemy import Executable, Table, bindparam, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from ..base import StoreError

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

Params = Mapping[str, Any]
# a result row: SQLAlchemy's ``Row`` on SQLite, a plain tuple from psycopg on PostgreSQL
AnyRow: TypeAlias = Sequence[Any]
Upsert: TypeAlias = sqlite_dialect.Insert | pg_dialect.Insert


class Transaction(Protocol):
    async def write(self, stmt: Executable, params: Params) -> int:
        """Run one DML statement inside the transaction; the number of rows it changed."""
        ...

    async def write_many(self, stmt: Executable, rows: Sequence[Params]) -> None:
        """Run one DML statement once per parameter set, inside the transaction (``executemany``)."""
        ...

    async def first(self, stmt: Executable, params: Params) -> AnyRow | None:
        """Run a statement that returns rows (``SELECT``, ``... RETURNING``) inside the transaction."""
        ...


class Executor(Protocol):
    """How the stores run their (prebuilt) statements; one implementation per database."""

    # whether stored text can contain NUL (SQLite: yes; PostgreSQL: no, so no stored id equals one with NUL)
    text_allows_nul: bool

    async def write(self, stmt: Executable, params: Params) -> int:
        """Run one DML statement in its own transaction; the number of rows it changed."""
        ...

    async def first(self, stmt: Executable, params: Params) -> AnyRow | None: ...

    async def all(self, stmt: Executable, params: Params) -> Sequence[AnyRow]: ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A multi-statement write transaction: committed on normal exit, rolled back on an exception."""
        ...

    async def close(self) -> None: ...


def upsert_for(dialect_name: str) -> Callable[[Table], Upsert]:
    """The dialect's ``INSERT`` with ``ON CONFLICT`` support."""
    if dialect_name == "sqlite":
        return sqlite_dialect.insert
    if dialect_name == "postgresql":
        return pg_dialect.insert
    raise StoreError(f"unsupported SQL dialect {dialect_name!r}")


class Compiled:
    """A statement's SQL text for the driver, compiled once, and the values of the parameters the statement
    itself carries (literals such as ``.values(removed_at=None)`` or ``.limit(5)`` become bound parameters
    with a value). Both executors run this text on the driver directly: SQLAlchemy's per-execution machinery
    (parameter processing, result objects) costs more than an SQLite statement does."""

    __slots__ = ("defaults", "sql", "stmt")

    def __init__(self, stmt: Executable, dialect: Any) -> None:
        compiled = cast(SQLCompiler, cast(ClauseElement, stmt).compile(dialect=dialect))
        self.stmt = stmt
        self.sql = str(compiled)
        self.defaults: dict[str, Any] = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                raise StoreError(f"expanding IN parameter {name!r} is not supported: {self.sql}")
            if not bind.required:
                self.defaults[name] = bind.effective_value

    def params(self, given: Params) -> Params:
        return {**self.defaults, **given} if self.defaults else given


class CompiledCache:
    """``stmt`` -> ``Compiled`` for one dialect (statements are built once per store and kept)."""

    def __init__(self, dialect: Any) -> None:
        self._dialect = dialect
        self._hits: dict[int, Compiled] = {}

    def __call__(self, stmt: Executable) -> Compiled:
        hit = self._hits.get(id(stmt))
        if hit is None or hit.stmt is not stmt:
            hit = self._hits[id(stmt)] = Compiled(stmt, self._dialect)
        return hit


def unstorable(db: Executor, identifier: str) -> bool:
    """An identifier no record can have on this database: a lookup of it finds nothing (on PostgreSQL,
    instead of failing: identifiers arrive from requests, e.g. a ``/register/{client_id}`` path)."""
    return not db.text_allows_nul and "\x00" in identifier


def insert_new(insert: Callable[[Table], Upsert], table: Table, pk: str) -> Executable:
    """``INSERT ... ON CONFLICT (pk) DO NOTHING``: rowcount 0 means the id is taken."""
    stmt: Executable = insert(table).on_conflict_do_nothing(index_elements=[table.c[pk]])
    return stmt


def update_all(table: Table, pk: str) -> Executable:
    cols: dict[str, BindParameter[Any]] = {c.name: bindparam(c.name) for c in table.c if c.name != pk}
    stmt: Executable = update(table).where(table.c[pk] == bindparam("_pk")).values(cols)
    return stmt


def json_text(value: dict[str, Any]) -> str:
    """A JSON document for a ``Text`` column (client metadata, token ``extra``)."""
    return orjson.dumps(value).decode()


def json_value(text: str) -> dict[str, Any]:
    """The JSON document a ``Text`` column holds."""
    value: dict[str, Any] = orjson.loads(text)
    return value
