"""UTC timestamps (app/models/base.py): stored on SQLite as SQLAlchemy writes them, always
read back aware and in UTC, whatever text an older row or a hand-written statement left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import create_async_engine

from app.models.base import UTCDateTime
from tests.conftest import ON_POSTGRES

METADATA = MetaData()
STAMPS = Table(
    "stamps", METADATA, Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
)
PLAIN = Table("stamps", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime))


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'stamps.sqlite3'}")
    METADATA.create_all(engine)
    yield engine
    engine.dispose()


def test_stored_as_sqlalchemys_own_text_in_utc(engine) -> None:
    beijing = datetime(2026, 10, 1, 8, 0, 0, 5, tzinfo=timezone(timedelta(hours=8)))
    with engine.begin() as conn:
        conn.execute(insert(STAMPS), [{"at": beijing}, {"at": None}])
        # SQLAlchemy's plain DateTime reads the same text as the same (naive UTC) moment.
        plain = conn.execute(select(PLAIN.c.at).order_by(PLAIN.c.id)).scalars().all()
        text = conn.exec_driver_sql("SELECT at FROM stamps ORDER BY id").scalars().all()
        read = conn.execute(select(STAMPS.c.at).order_by(STAMPS.c.id)).scalars().all()
    assert text == ["2026-10-01 00:00:00.000005", None]
    assert plain == [datetime(2026, 10, 1, 0, 0, 0, 5), None]
    assert read == [beijing, None] and read[0].tzinfo == UTC


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-10-01 00:00:00", datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026-10-01", datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026-10-01T08:00:00+08:00", datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026-10-01 00:00:00Z", datetime(2026, 10, 1, tzinfo=UTC)),
    ],
)
def test_other_stored_text_reads_as_the_same_utc_moment(engine, stored, expected) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO stamps (at) VALUES (?)", (stored,))
        read = conn.execute(select(STAMPS.c.at)).scalar_one()
    assert read == expected and read.tzinfo == UTC


def test_a_naive_datetime_is_refused(engine) -> None:
    with engine.begin() as conn, pytest.raises(StatementError, match="naive datetime"):
        conn.execute(insert(STAMPS), {"at": datetime(2026, 10, 1, 8, 0)})


@pytest.mark.skipif(not ON_POSTGRES, reason="asyncpg's own timestamps")
async def test_on_postgresql_asyncpgs_values_come_back_as_they_are_aware_and_in_utc(
    database_url: str,
) -> None:
    """UTCDateTime leaves asyncpg's values alone (no call per value): asyncpg gives every
    timestamptz aware and in UTC, whatever the session's time zone."""
    table = Table(
        "stamps_pg",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime),
        prefixes=["TEMPORARY"],
    )
    engine = create_async_engine(database_url)
    beijing = datetime(2026, 10, 1, 8, 0, 0, 5, tzinfo=timezone(timedelta(hours=8)))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL TIME ZONE 'Asia/Shanghai'"))
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table), [{"at": beijing}, {"at": None}])
            read = (await conn.execute(select(table.c.at).order_by(table.c.id))).scalars().all()
    finally:
        await engine.dispose()
    assert read == [beijing, None] and read[0].tzinfo is UTC
    assert UTCDateTime().result_processor(engine.dialect, None) is None
