"""Hot write statements, run straight on the sqlite3 driver when the database is SQLite.

SQLAlchemy's execute path (an execution context, parameter processing, a result object)
costs two to four times what SQLite takes to run a small INSERT, and a submission runs five
such statements on the single writer thread, where every microsecond of Python is paid for
by the whole process (bench/orders.py). A `DriverStatement` is a Core statement compiled
once per set of parameter names: on SQLite (pysqlite) its parameters go through the same
type processors SQLAlchemy applies (UTC timestamps, JSON, booleans) and then to the
driver's cursor, and a driver error is raised as SQLAlchemy's own exception class
(`IntegrityError`, …); on any other database SQLAlchemy executes it as usual.

Only writes with plain parameters belong here: no expanding IN, no Python-side column
defaults (every value is given), and results limited to a row count or one RETURNING value.
SQLAlchemy's statement log (DAIBAN_DATABASE_ECHO) does not show them.

This reaches past SQLAlchemy's public API, as does app/db.py, which sets the pysqlite
dialect's `do_begin`, `do_savepoint`, `do_release_savepoint` and `do_rollback_to_savepoint`
to ones that go straight to the driver. The internals relied upon:
- `compile(dialect=, column_keys=)` gives a `SQLCompiler` that sets only the given columns,
  whose `positiontup` lists the bind names in the order of the `?` in its `string` (qmark
  paramstyle), whose `binds` maps each such name to its `BindParameter`, and whose
  `insert_prefetch` / `update_prefetch` list the columns with a Python-side default;
- `BindParameter.expanding`, `.literal_execute`, `.callable`, `.required`, `.value`, `.type`;
- `TypeEngine.dialect_impl(dialect).bind_processor(dialect)` is all the processing that
  SQLAlchemy's own execute applies to a value (the engine's JSON serializer included);
- `Dialect.name` / `.driver`; `Connection.connection.driver_connection` is the sqlite3
  connection;
- `DBAPIError.instance(statement, params, orig, dbapi_base_err, dialect=)` maps a sqlite3
  error to SQLAlchemy's class of the same name; `StatementError(message, statement, params,
  orig)`;
- app/db.py: those four methods, set on the dialect instance, are looked up there at each
  call, as `do_begin(pool connection)` and `do_*savepoint(Connection, name)` with a plain
  identifier for a name; the aiosqlite adapter connection's `isolation_level` setter.
The `test_sqlalchemy_internals_*` tests in tests/platform/test_statements.py check each on a real
SQLite database and fail naming the internal that a SQLAlchemy release changed: the pin in
pyproject.toml admits only releases they pass on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Insert, TextClause, Update

Params = Mapping[str, Any]
# Each positional parameter: the name whose value to take and how to process it, or no
# name and the value of a literal written in the statement.
Binds = tuple[tuple[str | None, Callable[[Any], Any] | None, Any], ...]
_Prepared = tuple[str, Binds]


class DriverStatement:
    def __init__(self, statement: Insert | Update | TextClause) -> None:
        self.statement = statement
        self._prepared: dict[tuple[Dialect, tuple[str, ...]], _Prepared] = {}

    def rowcount(self, conn: Connection, params: Params) -> int:
        """Run once; how many rows it changed."""
        if not _is_pysqlite(conn):
            return int(conn.execute(self.statement, params).rowcount)
        return int(self._run(conn, params).rowcount)

    def returned(self, conn: Connection, params: Params) -> Any:
        """Run once; the one value its RETURNING clause gives, as the driver gives it (meant
        for ids and counters: no result type is applied on SQLite)."""
        if not _is_pysqlite(conn):
            return conn.execute(self.statement, params).scalar_one()
        row = self._run(conn, params).fetchone()
        assert row is not None, "RETURNING gave no row"
        return row[0]

    def many(self, conn: Connection, rows: Sequence[Params]) -> None:
        """Run once per row (executemany); every row has the same names."""
        if not rows:
            return
        if not _is_pysqlite(conn):
            conn.execute(self.statement, list(rows))
            return
        sql, binds = self._prepare(conn.dialect, rows[0])
        values = [_values(sql, binds, row) for row in rows]
        _begun(conn)
        try:
            driver(conn).executemany(sql, values)
        except sqlite3.Error as exc:
            raise _wrapped(sql, values, exc, conn.dialect) from exc

    def _run(self, conn: Connection, params: Params) -> sqlite3.Cursor:
        sql, binds = self._prepare(conn.dialect, params)
        values = _values(sql, binds, params)
        _begun(conn)
        try:
            return driver(conn).execute(sql, values)  # type: ignore[no-any-return]
        except sqlite3.Error as exc:
            raise _wrapped(sql, values, exc, conn.dialect) from exc

    def _prepare(self, dialect: Dialect, params: Params) -> _Prepared:
        keys = tuple(params)
        prepared = self._prepared.get((dialect, keys))
        if prepared is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
            assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
            if compiled.insert_prefetch or compiled.update_prefetch:
                raise ValueError(f"a column default to fill in {compiled.string}: give it")
            binds: list[tuple[str | None, Callable[[Any], Any] | None, Any]] = []
            for name in compiled.positiontup:
                bind = compiled.binds[name]
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if bind.expanding or bind.literal_execute:
                    raise ValueError(f"{name} is rendered at run time (IN) in {compiled.string}")
                if name in params:
                    binds.append((name, process, None))
                elif bind.callable is None and not bind.required:  # a literal in the SQL
                    binds.append((None, None, process(bind.value) if process else bind.value))
                else:
                    raise ValueError(f"no value given for {name} in {compiled.string}")
            prepared = self._prepared[dialect, keys] = (compiled.string, tuple(binds))
        return prepared


def _values(sql: str, binds: Binds, params: Params) -> tuple[Any, ...]:
    try:
        return tuple(
            fixed if name is None else process(params[name]) if process else params[name]
            for name, process, fixed in binds
        )
    except Exception as exc:  # as SQLAlchemy reports a value it cannot bind
        raise StatementError(f"({type(exc).__name__}) {exc}", sql, params, exc) from exc


def _begun(conn: Connection) -> None:
    """Begin as SQLAlchemy's own execute does on a connection not yet in a transaction
    (the driver, in autocommit mode, would keep each statement on its own)."""
    if not conn.in_transaction():
        conn.begin()


def _is_pysqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite" and conn.dialect.driver == "pysqlite"


def driver_sql(conn: Connection, sql: str) -> None:
    """Plain SQL without parameters (SAVEPOINT, RELEASE, …) on the driver."""
    try:
        driver(conn).execute(sql)
    except sqlite3.Error as exc:
        raise _wrapped(sql, (), exc, conn.dialect) from exc


def driver(conn: Connection) -> Any:
    """The sqlite3 connection under a SQLAlchemy one."""
    return conn.connection.driver_connection


def _wrapped(sql: str, values: Any, exc: sqlite3.Error, dialect: Dialect) -> BaseException:
    return DBAPIError.instance(sql, values, exc, sqlite3.Error, dialect=dialect)
