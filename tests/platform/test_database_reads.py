"""PostgreSQL: reads (`run_read`, `run_long_read`) run in autocommit on a read-only pool of
their own: no BEGIN and COMMIT around them, each statement its own transaction, and a write
sent on a read by mistake is refused rather than committed. The reads that may lag go to
the replica when DAIBAN_DATABASE_REPLICA_URL names one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.context import Context
from app.db import Database
from app.models import Account
from tests.conftest import ON_POSTGRES, empty_database, make_settings

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's read pool")

NOW = text("SELECT now()")  # the start of the current transaction


def _two_transaction_times(session: Session) -> tuple[object, object]:
    first = session.scalar(NOW)
    time.sleep(0.02)
    return first, session.scalar(NOW)


async def test_each_statement_of_a_read_is_its_own_transaction(ctx: Context) -> None:
    first, second = await ctx.db.run_read(_two_transaction_times)
    assert first != second
    first, second = await ctx.db.run_long_read(_two_transaction_times)
    assert first != second
    # a write's statements share one transaction, as before
    first, second = await ctx.db.run_write(_two_transaction_times)
    assert first == second


@pytest.mark.parametrize("entry", ["run_read", "run_long_read"])
async def test_a_write_sent_on_a_read_is_refused_and_changes_nothing(
    ctx: Context, demo: object, entry: str
) -> None:
    def names(session: Session) -> list[str]:
        return list(session.scalars(select(Account.name).order_by(Account.id)))

    before = await ctx.db.run_write(names)

    def rename(session: Session) -> None:
        session.execute(update(Account).values(name="x"))

    with pytest.raises(DBAPIError, match="read-only transaction"):
        await getattr(ctx.db, entry)(rename)
    assert await ctx.db.run_write(names) == before
    # the read pool goes on serving reads
    assert await getattr(ctx.db, entry)(lambda s: s.scalar(select(func.count(Account.id))))


async def test_only_the_reads_that_may_lag_go_to_the_replica(
    database_url: str, tmp_path: Path
) -> None:
    """Another database stands in for the replica here: what is checked is which reads
    the service sends to it (replication itself is PostgreSQL's)."""

    def where(session: Session) -> str:
        return str(session.scalar(text("SELECT current_database()")))

    primary = make_url(database_url).database
    async with empty_database(tmp_path, "replica") as replica_url:
        db = Database(
            make_settings(tmp_path / "r", database_url, DAIBAN_DATABASE_REPLICA_URL=replica_url)
        )
        try:
            assert await db.run_long_read(where, may_lag=True) == make_url(replica_url).database
            assert await db.run_long_read(where) == primary
            assert await db.run_read(where) == primary
            assert await db.run_write(where) == primary
        finally:
            await db.dispose()
    # without a replica the reads that may lag stay on the primary
    db = Database(make_settings(tmp_path / "n", database_url))
    try:
        assert await db.run_long_read(where, may_lag=True) == primary
    finally:
        await db.dispose()
