"""PostgreSQL: reads (`run_read`, `run_long_read`) run in autocommit on a read-only pool of
their own: no BEGIN and COMMIT around them, each statement its own transaction, and a write
sent on a read by mistake is refused rather than committed."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.context import Context
from app.models import Account
from tests.conftest import ON_POSTGRES

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
