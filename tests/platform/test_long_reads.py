"""Long reads (`Database.run_long_read`: figures, ledgers, exports) run on an event loop and
thread of their own: however long their Python computes, the service's loop keeps serving,
and closing the database ends that thread."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import Database
from tests.conftest import make_settings


def _computes_for(seconds: float):
    """A read whose rows then take `seconds` of pure Python, as a district's year of orders
    turned into figures does."""

    def work(session: Session) -> int:
        session.execute(text("SELECT 1"))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return int(session.scalar(text("SELECT 2")) or 0)

    return work


def _long_read_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "daiban-long-reads"}


async def test_a_long_reads_python_does_not_hold_up_the_event_loop(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(make_settings(tmp_path / "var", database_url))
    before = _long_read_threads()
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        assert await db.run_long_read(_computes_for(1.5)) == 2
        short = time.monotonic()
        assert await db.run_read(lambda s: s.scalar(text("SELECT 3"))) == 3
        assert time.monotonic() - short < 0.5
    finally:
        ticker.cancel()
        started = _long_read_threads() - before
        await db.dispose()
    assert len(gaps) > 50 and max(gaps) < 0.3  # the loop ran all along (it stalled 1.5 s)
    assert len(started) == 1 and not any(t.is_alive() for t in started)
