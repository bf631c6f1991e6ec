"""PostgreSQL: pooled connections idle for DAIBAN_DATABASE_PING_IDLE_SECONDS are pinged
before use, and a dead one replaced; connections in steady use are not pinged (a round trip
saved in every unit of work). A connection is killed here as a server restart would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.context import Context
from app.db import Database
from tests.conftest import ON_POSTGRES, make_settings

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's pooled connections")

PID = text("SELECT pg_backend_pid()")


async def _kill(ctx: Context, pid: int) -> None:
    await ctx.db.run_write(lambda s: s.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}))


async def test_a_connection_killed_while_idle_is_replaced_before_use(
    ctx: Context, database_url: str, tmp_path: Path
) -> None:
    db = Database(
        make_settings(tmp_path / "p", database_url, DAIBAN_DATABASE_PING_IDLE_SECONDS="1")
    )
    try:
        first = await db.run_read(lambda s: s.scalar(PID))
        await _kill(ctx, first)
        await asyncio.sleep(1.3)  # idle past the setting: the next use pings first
        second = await db.run_read(lambda s: s.scalar(PID))
        assert second != first
    finally:
        await db.dispose()


async def test_a_connection_in_steady_use_is_not_pinged_so_its_death_fails_one_unit(
    ctx: Context, database_url: str, tmp_path: Path
) -> None:
    """What the ping is for: without it (not idle long enough) the dead connection is used,
    that unit of work fails, and the pool replaces its connections for the next."""
    db = Database(
        make_settings(tmp_path / "q", database_url, DAIBAN_DATABASE_PING_IDLE_SECONDS="3600")
    )
    try:
        first = await db.run_read(lambda s: s.scalar(PID))
        await _kill(ctx, first)
        with pytest.raises(DBAPIError):
            await db.run_read(lambda s: s.scalar(PID))
        assert await db.run_read(lambda s: s.scalar(PID)) != first
    finally:
        await db.dispose()
