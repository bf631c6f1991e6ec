"""Hot writes straight on sqlite3 (app/statements.py) store exactly what SQLAlchemy stores,
raise SQLAlchemy's own errors, refuse what they cannot do, and leave other drivers to
SQLAlchemy (the whole suite runs them on PostgreSQL too)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import json_text
from app.models.base import UTCDateTime
from app.statements import DriverStatement

METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False, unique=True),
    Column("at", UTCDateTime),
    Column("day", Date),
    Column("data", JSON),
    Column("flag", Boolean),
    Column("kind", String(10)),
)
WITH_DEFAULT = Table(
    "with_default",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("n", Integer, default=7),
)
BEIJING = timezone(timedelta(hours=8))


def values(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "at": datetime(2026, 10, 8, 9, 30, 15, 123456, tzinfo=BEIJING),
        "day": date(2026, 10, 8),
        "data": {"rule": "A岗", "ids": [1, 2], "nested": {"ok": True}},
        "flag": True,
        "kind": "pool",
    }


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'statements.sqlite3'}", json_serializer=json_text
    )
    METADATA.create_all(engine)
    return engine


def test_driver_insert_stores_what_sqlalchemy_stores(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(THINGS), values("by-sqlalchemy"))
        DriverStatement(insert(THINGS)).many(conn, [values("by-driver")])
        stored = conn.exec_driver_sql(
            "SELECT at, typeof(at), day, typeof(day), data, flag, typeof(flag), kind "
            "FROM things ORDER BY id"
        ).all()
        read = conn.execute(select(THINGS).order_by(THINGS.c.id)).all()
    assert stored[0] == stored[1]
    assert stored[0][0] == "2026-10-08 01:30:15.123456"  # UTC, as every timestamp
    assert read[0][2:] == read[1][2:]  # all but the id and the name
    assert read[1].at == datetime(2026, 10, 8, 1, 30, 15, 123456, tzinfo=UTC)
    assert read[1].data == values("x")["data"]


def test_returning_gives_the_value_and_rowcount_counts_only_matching_rows(engine: Engine) -> None:
    returning = DriverStatement(insert(THINGS).returning(THINGS.c.id))
    # "pool" is a literal written into the statement, not a parameter given at run time.
    retag = DriverStatement(
        update(THINGS)
        .where(THINGS.c.id == bindparam("target"), THINGS.c.kind == "pool")
        .values(kind=bindparam("new_kind"))
    )
    with engine.begin() as conn:
        first = returning.returned(conn, values("one"))
        second = returning.returned(conn, values("two") | {"kind": "other"})
        assert (first, second) == (1, 2)
        assert retag.rowcount(conn, {"target": first, "new_kind": "done"}) == 1
        assert retag.rowcount(conn, {"target": second, "new_kind": "done"}) == 0
        assert retag.rowcount(conn, {"target": first, "new_kind": "again"}) == 0
        kinds = conn.execute(select(THINGS.c.kind).order_by(THINGS.c.id)).scalars().all()
    assert kinds == ["done", "other"]


def test_text_statement_with_typed_parameters(engine: Engine) -> None:
    upsert = DriverStatement(
        text(
            "INSERT INTO things (name, day, data) VALUES (:name, :day, :data) "
            "ON CONFLICT (name) DO UPDATE SET day = excluded.day RETURNING id"
        ).bindparams(bindparam("day", type_=Date), bindparam("data", type_=JSON))
    )
    with engine.begin() as conn:
        one = upsert.returned(conn, {"name": "n", "day": date(2026, 1, 1), "data": ["甲"]})
        again = upsert.returned(conn, {"name": "n", "day": date(2026, 1, 2), "data": None})
        row = conn.execute(select(THINGS.c.day, THINGS.c.data)).one()
    assert one == again
    assert row == (date(2026, 1, 2), ["甲"])


def test_driver_error_is_sqlalchemys_and_the_transaction_goes_on(engine: Engine) -> None:
    add = DriverStatement(insert(THINGS))
    with engine.begin() as conn:
        add.many(conn, [values("same")])
        savepoint = conn.begin_nested()
        with pytest.raises(IntegrityError) as raised:
            add.many(conn, [values("other"), values("same")])
        savepoint.rollback()
        assert "UNIQUE" in str(raised.value.orig)
        add.many(conn, [values("third")])
        names = conn.execute(select(THINGS.c.name).order_by(THINGS.c.id)).scalars().all()
    assert names == ["same", "third"]


def test_what_it_cannot_do_is_refused_before_anything_is_written(engine: Engine) -> None:
    expanding = DriverStatement(
        update(THINGS).where(THINGS.c.id.in_(bindparam("ids", expanding=True))).values(kind="x")
    )
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="column default"):
            DriverStatement(insert(WITH_DEFAULT)).many(conn, [{"id": 1}])
        with pytest.raises(ValueError, match="rendered at run time"):
            expanding.rowcount(conn, {"ids": [1, 2]})
        with pytest.raises(ValueError, match="no value given for new_kind"):
            DriverStatement(update(THINGS).values(kind=bindparam("new_kind"))).rowcount(conn, {})
        assert conn.exec_driver_sql("SELECT count(*) FROM with_default").scalar() == 0


async def test_other_drivers_run_it_through_sqlalchemy(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.sqlite3'}")
    returning = DriverStatement(insert(THINGS).returning(THINGS.c.id))
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
        new_id = await conn.run_sync(lambda c: returning.returned(c, values("async")))
        name = (await conn.execute(select(THINGS.c.name).where(THINGS.c.id == new_id))).scalar()
    await engine.dispose()
    assert name == "async"


def test_it_begins_a_transaction_as_sqlalchemy_would(engine: Engine) -> None:
    with engine.connect() as conn:  # no transaction begun yet
        DriverStatement(insert(THINGS)).many(conn, [values("rolled-back")])
        assert conn.in_transaction()
        conn.rollback()
        assert conn.execute(select(THINGS.c.name)).all() == []


def test_each_engine_gets_its_own_type_processors(engine: Engine, tmp_path: Path) -> None:
    add = DriverStatement(insert(THINGS))
    standard = create_engine(f"sqlite:///{tmp_path / 'standard.sqlite3'}")  # json.dumps
    METADATA.create_all(standard)
    for each in (engine, standard):
        with each.begin() as conn:
            add.many(conn, [values("driver")])
            conn.execute(insert(THINGS), values("sqlalchemy"))
            texts = conn.exec_driver_sql("SELECT data FROM things ORDER BY id").scalars().all()
        assert texts[0] == texts[1]
    standard.dispose()


def test_a_value_it_cannot_bind_is_a_statement_error(engine: Engine) -> None:
    naive = values("naive") | {"at": datetime(2026, 10, 8, 9, 30)}
    with engine.begin() as conn, pytest.raises(StatementError, match="naive datetime"):
        DriverStatement(insert(THINGS)).many(conn, [naive])
