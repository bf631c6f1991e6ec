"""app/statements.py on asyncpg: the adapter's cursor instead of SQLAlchemy's execute, with the
same values, transactions, errors and rows (PostgreSQL only: on SQLite the reads are
SQLAlchemy's own, and tests/platform/test_statements.py holds the writes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    Integer,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeEngine

from app.db import json_text
from app.statements import DriverStatement
from tests.conftest import ON_POSTGRES, empty_database
from tests.platform.test_statements import METADATA, THINGS, relied_on, values

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="asyncpg's path: PostgreSQL only")

OWNERS = Table(
    "owners",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("thing_id", Integer, ForeignKey(THINGS.c.id)),
    Column("label", String(20)),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with empty_database(tmp_path, "statements") as url:
        engine = create_async_engine(url, json_serializer=json_text)
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)
        yield engine
        await engine.dispose()


async def run(engine: AsyncEngine, work: Callable[[Connection], Any]) -> Any:
    async with engine.begin() as conn:
        return await conn.run_sync(work)


def same_rows(conn: Connection, statement: DriverStatement, params: dict[str, Any]) -> list[Any]:
    """The driver's rows of `statement`, checked to be SQLAlchemy's: the same values, of the
    same types, under the same names."""
    mine = statement.rows(conn, params)
    theirs = conn.execute(statement.statement, params).all()
    assert [tuple(row) for row in mine] == [tuple(row) for row in theirs]
    for one, other in zip(mine, theirs, strict=True):
        assert one._fields == other._fields
        assert [type(v) for v in one] == [type(v) for v in other], one
    return mine


async def test_writes_store_what_sqlalchemy_stores(engine: AsyncEngine) -> None:
    returning = DriverStatement(insert(THINGS).returning(THINGS.c.id))

    def write(conn: Connection) -> tuple[int, int]:
        conn.execute(insert(THINGS), values("by-sqlalchemy"))
        DriverStatement(insert(THINGS)).many(conn, [values("by-driver"), values("by-driver-2")])
        new_id = returning.returned(conn, values("returned"))
        retagged = DriverStatement(
            update(THINGS)
            .where(THINGS.c.name.like("by-driver%"), THINGS.c.kind == "pool")
            .values(kind=bindparam("new_kind"))
        ).rowcount(conn, {"new_kind": "held"})
        return new_id, retagged

    new_id, retagged = await run(engine, write)
    stored = await run(engine, lambda c: c.execute(select(THINGS).order_by(THINGS.c.id)).all())
    assert [r.name for r in stored] == ["by-sqlalchemy", "by-driver", "by-driver-2", "returned"]
    assert (new_id, retagged) == (stored[-1].id, 2)
    assert stored[0][2:6] == stored[1][2:6] == stored[3][2:6]  # at, day, data, flag
    assert stored[1].at == datetime(2026, 10, 8, 1, 30, 15, 123456, tzinfo=UTC)
    assert [r.kind for r in stored] == ["pool", "held", "held", "pool"]


async def test_reads_give_the_rows_sqlalchemy_gives(engine: AsyncEngine) -> None:
    def fill(conn: Connection) -> None:
        conn.execute(insert(THINGS), [values("a"), values("b")])
        conn.execute(insert(THINGS), {"name": "empty"})  # every other column NULL
        conn.execute(
            insert(OWNERS), [{"thing_id": 1, "label": "张三"}, {"thing_id": None, "label": None}]
        )

    await run(engine, fill)
    other = THINGS.alias("other")
    label = select(other.c.name).where(other.c.id == OWNERS.c.thing_id).scalar_subquery()
    statements: list[tuple[Any, dict[str, Any]]] = [
        (select(THINGS).order_by(THINGS.c.id), {}),
        (select(THINGS).where(THINGS.c.id == bindparam("id")), {"id": 3}),
        (
            select(
                OWNERS.c.id,
                THINGS.c.at.label("thing_at"),
                THINGS.c.at.is_not(None).label("dated"),
                label.label("thing_name"),
                func.count().over().label("total"),
            )
            .select_from(OWNERS.outerjoin(THINGS, THINGS.c.id == OWNERS.c.thing_id))
            .where(OWNERS.c.label.is_(None) | OWNERS.c.label.in_([literal_column("'张三'")]))
            .order_by(OWNERS.c.id)
            .limit(bindparam("limit")),
            {"limit": 10, "unused": "ignored as SQLAlchemy ignores it"},
        ),
        (text("SELECT count(*) AS n, max(at) AS latest FROM things"), {}),
    ]

    def compare(conn: Connection) -> list[list[Any]]:
        return [same_rows(conn, DriverStatement(s), params) for s, params in statements]

    for read in (run, read_only):
        assert all(await read(engine, compare))  # every statement gave rows
    driver = (await run(engine, compare))[0]
    assert driver[0].at.tzinfo is UTC and driver[0].data == values("x")["data"]
    assert driver[2].at is None and driver[2].data is None


async def read_only(engine: AsyncEngine, work: Callable[[Connection], Any]) -> Any:
    """As the service's read pool: autocommit, read only."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT", postgresql_readonly=True)
        return await conn.run_sync(work)


async def test_one_and_one_or_none_are_sqlalchemys(engine: AsyncEngine) -> None:
    await run(engine, lambda c: c.execute(insert(THINGS), [values("a"), values("b")]))
    by_name = DriverStatement(select(THINGS.c.id).where(THINGS.c.name == bindparam("name")))
    every = DriverStatement(select(THINGS.c.id))

    def check(conn: Connection) -> None:
        assert by_name.one(conn, {"name": "b"}) == (2,)
        assert by_name.one_or_none(conn, {"name": "b"}).id == 2
        assert by_name.one_or_none(conn, {"name": "none"}) is None
        with pytest.raises(NoResultFound):
            by_name.one(conn, {"name": "none"})
        with pytest.raises(MultipleResultsFound):
            every.one(conn, {})
        with pytest.raises(MultipleResultsFound):
            every.one_or_none(conn, {})

    await run(engine, check)


async def test_a_write_belongs_to_its_transaction(engine: AsyncEngine) -> None:
    """The adapter begins a transaction when its first statement runs: rolled back, the
    driver's insert is gone, as SQLAlchemy's would be (in autocommit it would stay)."""
    adds = DriverStatement(insert(THINGS))
    async with engine.connect() as conn:
        await conn.run_sync(lambda c: adds.many(c, [values("gone")]))
        await conn.rollback()
        await conn.run_sync(lambda c: adds.many(c, [values("kept")]))
        await conn.commit()
    names = await run(engine, lambda c: c.execute(select(THINGS.c.name)).scalars().all())
    assert names == ["kept"]


async def test_a_driver_error_is_sqlalchemys_and_rolls_back_cleanly(engine: AsyncEngine) -> None:
    adds = DriverStatement(insert(THINGS))
    async with engine.connect() as conn:
        await conn.run_sync(lambda c: adds.many(c, [values("twice")]))
        with pytest.raises(IntegrityError) as raised:
            await conn.run_sync(lambda c: adds.rowcount(c, values("twice")))
        await conn.rollback()
        assert "uq_things_name" in str(raised.value) or "unique" in str(raised.value).lower()
        assert raised.value.statement is not None and "INSERT INTO things" in raised.value.statement
        await conn.run_sync(lambda c: adds.many(c, [values("after")]))
        await conn.commit()
    names = await run(engine, lambda c: c.execute(select(THINGS.c.name)).scalars().all())
    assert names == ["after"]


async def test_a_connection_the_server_closed_is_dropped(engine: AsyncEngine) -> None:
    every = DriverStatement(select(THINGS.c.id))
    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await conn.rollback()
        await run(engine, lambda c: c.execute(text(f"SELECT pg_terminate_backend({pid})")))
        with pytest.raises(DBAPIError) as raised:
            await conn.run_sync(lambda c: every.rows(c, {}))
        assert raised.value.connection_invalidated
    # The pool made a new connection rather than hand the dead one out again.
    assert await run(engine, lambda c: every.rows(c, {})) == []


async def test_a_statement_cut_off_by_cancellation_drops_its_connection(
    engine: AsyncEngine,
) -> None:
    """As SQLAlchemy's execute: a connection whose statement was cancelled midway is not
    handed out again (the server may still be running it)."""
    sleep = DriverStatement(text("SELECT pg_sleep(5)"))
    conn = await engine.connect()
    task = asyncio.create_task(conn.run_sync(lambda c: sleep.rows(c, {})))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.invalidated
    await conn.close()


async def test_sqlalchemy_internals_asyncpg_adapter_and_result_columns(
    engine: AsyncEngine,
) -> None:
    statement = select(THINGS.c.id, THINGS.c.at.label("when")).where(THINGS.c.id > 0)

    def look(conn: Connection) -> None:
        dialect = conn.dialect
        relied_on(
            (dialect.name, dialect.driver) == ("postgresql", "asyncpg"),
            "Dialect.name / Dialect.driver of postgresql+asyncpg:// (statements._is_asyncpg)",
            (dialect.name, dialect.driver),
        )
        compiled = statement.compile(dialect=dialect)
        columns = getattr(compiled, "_result_columns", None)
        relied_on(
            columns is not None
            and [(c[0], type(c[3]).__name__) for c in columns]
            == [("id", "Integer"), ("when", "UTCDateTime")],
            "SQLCompiler._result_columns: (key, name, objects, type) of each selected column",
            columns,
        )
        relied_on(
            compiled.positiontup == ["id_1"] and "$1" in compiled.string,
            "SQLCompiler.positiontup naming the $1, $2, … of asyncpg's SQL in order",
            (compiled.positiontup, compiled.string),
        )
        adapter = conn.connection.dbapi_connection
        cursor = adapter.cursor()  # type: ignore[union-attr]
        cursor.execute(compiled.string, (0,))
        relied_on(
            cursor.rowcount == 0 and [d[0] for d in cursor.description] == ["id", "when"],
            "the asyncpg adapter's cursor(): execute(sql, values), rowcount, description",
            (cursor.rowcount, cursor.description),
        )
        relied_on(
            callable(getattr(TypeEngine, "_cached_result_processor", None)),
            "TypeEngine._cached_result_processor(dialect, coltype)",
        )
        relied_on(
            callable(getattr(Connection, "_handle_dbapi_exception", None)),
            "Connection._handle_dbapi_exception(e, statement, params, cursor, context)",
            sqlalchemy.__version__,
        )

    await run(engine, look)
