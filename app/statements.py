"""Hot statements, run straight on the driver: SQLite's for writes, asyncpg's for writes and reads.

SQLAlchemy's execute path (an execution context, parameter processing, a result object)
costs two to four times what SQLite takes to run a small INSERT, and a submission runs five
such statements on the single writer thread, where every microsecond of Python is paid for
by the whole process (bench/orders.py). On PostgreSQL the same path cost 100–200 µs of the
service's CPU a statement beside asyncpg's own, and an order's detail runs three. A
`DriverStatement` is a Core statement compiled once per dialect and set of parameter names,
whose parameters go through the same type processors SQLAlchemy applies (UTC timestamps,
JSON, booleans) and then to the driver:
- SQLite (pysqlite): the sqlite3 cursor; a driver error is raised as SQLAlchemy's own
  exception class (`IntegrityError`, …). Writes only.
- PostgreSQL (asyncpg): the cursor of SQLAlchemy's asyncpg adapter, which begins the
  transaction when its first statement runs (none on the read pool's autocommit
  connections), prepares each statement once per connection and translates asyncpg's
  errors; the connection's own handler then raises SQLAlchemy's class and drops a
  connection the server closed, as its execute does. Reads too: `rows`, `one`,
  `one_or_none` give named tuples of the values SQLAlchemy's result would give (its result
  processors, looked up by the column types the server described).
- Any other driver (aiosqlite's reads): SQLAlchemy executes it as usual.

Only statements with plain parameters belong here: no expanding IN (write a fixed IN list
inline), no Python-side column defaults (every value is given); a write's result is limited
to a row count or one RETURNING value. SQLAlchemy's statement log (DAIBAN_DATABASE_ECHO) and
its cursor events do not see them.

This reaches past SQLAlchemy's public API, as does app/db.py, which sets the pysqlite
dialect's `do_begin`, `do_savepoint`, `do_release_savepoint` and `do_rollback_to_savepoint`
to ones that go straight to the driver. The internals relied upon:
- `compile(dialect=, column_keys=)` gives a `SQLCompiler` that sets only the given columns,
  whose `positiontup` lists the bind names in the order of the parameters in its `string`
  (`?` on SQLite, `$1`, `$2`, … on asyncpg), whose `binds` maps each such name to its
  `BindParameter`, whose `insert_prefetch` / `update_prefetch` list the columns with a
  Python-side default, and whose `_result_columns` give each selected column's key and type
  in order;
- `BindParameter.expanding`, `.literal_execute`, `.callable`, `.required`, `.value`, `.type`;
- `TypeEngine.dialect_impl(dialect).bind_processor(dialect)` is all the processing that
  SQLAlchemy's own execute applies to a value (the engine's JSON serializer included), and
  `TypeEngine._cached_result_processor(dialect, coltype)` all it applies to a value read,
  `coltype` being the type code in the cursor's description;
- `Dialect.name` / `.driver`; `Connection.connection.driver_connection` is the sqlite3
  connection, `.dbapi_connection` asyncpg's adapter, whose `cursor()` runs a statement with
  `execute` / `executemany` and gives `description`, `rowcount`, `fetchone`, `fetchall`;
- `DBAPIError.instance(statement, params, orig, dbapi_base_err, dialect=)` maps a sqlite3
  error to SQLAlchemy's class of the same name; `StatementError(message, statement, params,
  orig)`; `Connection._handle_dbapi_exception(e, statement, params, cursor, context)` raises
  SQLAlchemy's exception for an adapter's error and invalidates the connection if the
  server went away;
- app/db.py: those four methods, set on the dialect instance, are looked up there at each
  call, as `do_begin(pool connection)` and `do_*savepoint(Connection, name)` with a plain
  identifier for a name; the aiosqlite adapter connection's `isolation_level` setter.
The `test_sqlalchemy_internals_*` tests in tests/platform/test_statements.py check each on a
real database (asyncpg's where PostgreSQL answers) and fail naming the internal that a
SQLAlchemy release changed: the pin in pyproject.toml admits only releases they pass on.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Insert, Select, TextClause, Update

Params = Mapping[str, Any]
# Each positional parameter: the name whose value to take and how to process it, or no
# name and the value of a literal written in the statement.
Binds = tuple[tuple[str | None, Callable[[Any], Any] | None, Any], ...]
_Prepared = tuple[str, Binds]
# Session.info's key for the connection a read's session was made on (app/db.py: `run_read`).
READ_CONNECTION = "daiban.read_connection"
_NONE = "No row was found when one was required"
_MANY = "Multiple rows were found when exactly one was required"


def connection_of(session: Session) -> Connection:
    """The connection for a session's statements: a read's own, as `run_read` made the
    session on it (app/db.py), else the session's transaction's, begun if need be.

    A read's connection is in autocommit on PostgreSQL and already in its transaction on
    SQLite, so `Session.connection()` there would only add the bookkeeping of a session
    transaction and a connection transaction around nothing: 5-8 % of the service's CPU
    in a list read (docs/benchmarks.md)."""
    connection: Connection | None = session.info.get(READ_CONNECTION)
    return connection if connection is not None else session.connection()


class DriverStatement:
    def __init__(self, statement: Insert | Update | TextClause | Select[Any]) -> None:
        self.statement = statement
        self._prepared: dict[tuple[Dialect, tuple[str, ...]], _Prepared] = {}
        self._makers: dict[Dialect, Callable[[Sequence[Any]], Any]] = {}

    def rowcount(self, conn: Connection, params: Params) -> int:
        """Run once; how many rows it changed."""
        if _is_pysqlite(conn):
            return int(self._run(conn, params).rowcount)
        if _is_asyncpg(conn):
            return int(self._on_adapter(conn, params).rowcount)
        return int(conn.execute(self.statement, params).rowcount)

    def returned(self, conn: Connection, params: Params) -> Any:
        """Run once; the one value its RETURNING clause gives, as the driver gives it (meant
        for ids and counters: no result type is applied)."""
        if _is_pysqlite(conn):
            row = self._run(conn, params).fetchone()
        elif _is_asyncpg(conn):
            row = self._on_adapter(conn, params).fetchone()
        else:
            return conn.execute(self.statement, params).scalar_one()
        assert row is not None, "RETURNING gave no row"
        return row[0]

    def many(self, conn: Connection, rows: Sequence[Params]) -> None:
        """Run once per row (executemany); every row has the same names."""
        if not rows:
            return
        if not _is_pysqlite(conn) and not _is_asyncpg(conn):
            conn.execute(self.statement, list(rows))
            return
        sql, binds = self._prepare(conn.dialect, rows[0])
        values = [_values(sql, binds, row) for row in rows]
        if _is_asyncpg(conn):
            self._adapter_call(conn, sql, values, many=True)
            return
        _begun(conn)
        try:
            driver(conn).executemany(sql, values)
        except sqlite3.Error as exc:
            raise _wrapped(sql, values, exc, conn.dialect) from exc

    def rows(self, conn: Connection, params: Params) -> list[Any]:
        """Every row a SELECT gives: named tuples on asyncpg, SQLAlchemy's rows elsewhere."""
        if not _is_asyncpg(conn):
            return list(conn.execute(self.statement, params).all())
        cursor = self._on_adapter(conn, params)
        make = self._makers.get(conn.dialect)
        if make is None:
            make = self._makers[conn.dialect] = self._maker(conn.dialect, cursor.description)
        return [make(record) for record in cursor.fetchall()]

    def one(self, conn: Connection, params: Params) -> Any:
        """The one row a SELECT gives (NoResultFound, MultipleResultsFound as SQLAlchemy's)."""
        rows = self.rows(conn, params)
        if len(rows) != 1:
            raise NoResultFound(_NONE) if not rows else MultipleResultsFound(_MANY)
        return rows[0]

    def one_or_none(self, conn: Connection, params: Params) -> Any:
        rows = self.rows(conn, params)
        if len(rows) > 1:
            raise MultipleResultsFound(_MANY)
        return rows[0] if rows else None

    def _run(self, conn: Connection, params: Params) -> sqlite3.Cursor:
        sql, binds = self._prepare(conn.dialect, params)
        values = _values(sql, binds, params)
        _begun(conn)
        try:
            return driver(conn).execute(sql, values)  # type: ignore[no-any-return]
        except sqlite3.Error as exc:
            raise _wrapped(sql, values, exc, conn.dialect) from exc

    def _on_adapter(self, conn: Connection, params: Params) -> Any:
        sql, binds = self._prepare(conn.dialect, params)
        return self._adapter_call(conn, sql, _values(sql, binds, params), many=False)

    @staticmethod
    def _adapter_call(conn: Connection, sql: str, values: Any, *, many: bool) -> Any:
        _begun(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(sql, values)
            else:
                cursor.execute(sql, values)
        except BaseException as exc:  # as SQLAlchemy's execute: its class, and a connection
            # cut off mid-statement (the server gone, the task cancelled) is not pooled again
            conn._handle_dbapi_exception(exc, sql, values, cursor, None)
        return cursor

    def _maker(self, dialect: Dialect, description: Any) -> Callable[[Sequence[Any]], Any]:
        """How to turn the driver's row into the values SQLAlchemy's row would hold."""
        compiled = self.statement.compile(dialect=dialect)
        columns = compiled._result_columns
        assert description is not None, f"no rows come out of {compiled.string}"
        if columns:
            assert len(columns) == len(description), compiled.string
            names = [column[0] for column in columns]
            processors = [
                column[3]._cached_result_processor(dialect, described[1])
                for column, described in zip(columns, description, strict=True)
            ]
        else:  # text(): the names the server gave, and no types to apply
            names, processors = [described[0] for described in description], []
        row = namedtuple("Row", names)  # type: ignore[misc]
        if not any(processors):
            return row._make
        steps = list(enumerate(processors))

        def make(values: Sequence[Any]) -> Any:
            return row._make([p(values[i]) if p else values[i] for i, p in steps])

        return make

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


def _is_asyncpg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg"


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
