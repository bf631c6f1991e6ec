"""PostgreSQL: a unit of work that waits for a connection past DAIBAN_DATABASE_WAIT_SECONDS
is answered 503 `database_busy` (never a 500), and long reads take turns, as many at once as
half the read pool, on connections of their own, so that many at once (a district's figures
over a year, seconds each) cannot leave the short reads (a list, an order) without one."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app import errors
from app.db import Database
from app.models import Account
from tests.conftest import ON_POSTGRES, Clock, demo_service, empty_database, make_settings

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's pools")

SMALL_POOLS = {"DAIBAN_DATABASE_POOL_SIZE": "2", "DAIBAN_DATABASE_WAIT_SECONDS": "1"}


def _sleep(seconds: float) -> Any:
    return lambda session: session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})


def _one(session: Session) -> int:
    return int(session.scalar(text("SELECT 1")) or 0)


async def test_long_reads_take_turns_and_leave_the_read_pool_to_short_reads(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(make_settings(tmp_path / "v", database_url, **SMALL_POOLS))
    try:
        first = asyncio.create_task(db.run_long_read(_sleep(3.0)))
        await asyncio.sleep(0.3)
        second = asyncio.create_task(db.run_long_read(_sleep(3.0)))
        await asyncio.sleep(0.1)
        # the short reads' pool is free for a short read at once
        started = time.monotonic()
        assert await db.run_read(_one) == 1
        assert time.monotonic() - started < 0.5
        # the second long read waited for its turn past the limit
        with pytest.raises(errors.DatabaseBusy):
            await second
        await first
        # and the turns are given back: a long read runs again
        assert await db.run_long_read(_one) == 1
    finally:
        await db.dispose()


async def test_long_reads_on_a_replica_share_its_whole_pool(
    database_url: str, tmp_path: Path
) -> None:
    """The replica serves long reads alone: nothing there to keep half the pool for."""
    async with empty_database(tmp_path, "busy_replica") as replica_url:
        db = Database(
            make_settings(
                tmp_path / "v", database_url, DAIBAN_DATABASE_REPLICA_URL=replica_url, **SMALL_POOLS
            )
        )
        try:
            started = time.monotonic()
            await asyncio.gather(*(db.run_long_read(_sleep(1.0), may_lag=True) for _ in range(2)))
            assert time.monotonic() - started < 1.8  # side by side, not one after the other
        finally:
            await db.dispose()


async def test_a_request_that_waits_too_long_for_a_connection_answers_503(
    database_url: str, tmp_path: Path, clock: Clock
) -> None:
    settings = make_settings(
        tmp_path / "var",
        database_url,
        DAIBAN_DATABASE_POOL_SIZE="1",
        DAIBAN_DATABASE_WAIT_SECONDS="1",
    )
    async with demo_service(settings, clock) as (ctx, client, _):
        accounts = await ctx.db.run_write(lambda s: s.scalar(select(func.count(Account.id))))

        # the one write connection held: a login (which writes) waits, then gives up
        held = asyncio.create_task(ctx.db.run_write(_sleep(3.0)))
        await asyncio.sleep(0.2)
        response = await client.post("/mp/v1/auth/login", json={"code": "dev:newcomer"})
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "database_busy"
        assert response.json()["title"] == "系统繁忙,请稍后再试"
        await held
        # nothing of the refused login was written
        assert await ctx.db.run_write(lambda s: s.scalar(select(func.count(Account.id)))) == (
            accounts
        )

        # the one read connection held: a read waits, then gives up, and is served once
        # the connection is back
        held = asyncio.create_task(ctx.db.run_read(_sleep(3.0)))
        await asyncio.sleep(0.2)
        response = await client.get("/mp/v1/catalogue/items")
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_busy"
        await held
        assert (await client.get("/mp/v1/catalogue/items")).status_code == 200
