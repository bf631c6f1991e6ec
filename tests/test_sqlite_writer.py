"""SQLite's group-committing writer: units of work that share a transaction stay independent."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import Database
from app.sqlite_writer import GroupCommitWriter
from tests.conftest import make_settings


@pytest.fixture
def writer(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
    w = GroupCommitWriter(engine)
    yield w, engine
    w.close()
    engine.dispose()


def rows(engine) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT v FROM t ORDER BY v"))]


def put(value: int):
    def work(session: Session) -> int:
        session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        return value

    return work


async def test_a_failing_unit_in_a_group_undoes_only_itself(writer):
    w, engine = writer
    gate = threading.Event()

    def hold_the_writer(session: Session) -> str:
        gate.wait(5)  # while it waits, the next units queue up and run as one group
        return "first"

    first = asyncio.ensure_future(w.run(hold_the_writer))
    await asyncio.sleep(0.05)

    def fails(session: Session) -> None:
        session.execute(text("INSERT INTO t (v) VALUES (2)"))
        raise ValueError("rule broken")

    grouped = [
        asyncio.ensure_future(w.run(put(1))),
        asyncio.ensure_future(w.run(fails)),
        asyncio.ensure_future(w.run(put(3))),
        asyncio.ensure_future(w.run(put(1))),  # duplicate key: fails alone
    ]
    await asyncio.sleep(0.05)
    gate.set()
    assert await first == "first"
    outcomes = await asyncio.gather(*grouped, return_exceptions=True)
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], ValueError)
    assert "UNIQUE" in str(outcomes[3])
    assert rows(engine) == [1, 3]


async def test_a_unit_alone_runs_in_its_own_transaction(writer):
    w, engine = writer
    assert await w.run(put(7)) == 7

    def fails(session: Session) -> None:
        session.execute(text("INSERT INTO t (v) VALUES (8)"))
        raise ValueError("no")

    with pytest.raises(ValueError):
        await w.run(fails)
    assert rows(engine) == [7]


async def test_when_sqlite_rolls_back_the_whole_group_no_unit_is_told_it_was_kept(tmp_path: Path):
    """Some errors (a full disk, an I/O error, OR ROLLBACK) make SQLite roll back the whole
    transaction, savepoints and all: units that ran before in the group must hear it, and
    those after it run afresh in a transaction of their own."""
    db = Database(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'g.sqlite3'}"))
    await db.run_write(lambda s: s.execute(text("CREATE TABLE t (v INTEGER PRIMARY KEY)")))
    gate = threading.Event()
    first = asyncio.ensure_future(db.run_write(lambda s: gate.wait(5)))
    await asyncio.sleep(0.05)

    def rolls_everything_back(session: Session) -> None:
        session.execute(text("INSERT OR ROLLBACK INTO t (v) VALUES (1)"))

    grouped = [
        asyncio.ensure_future(db.run_write(put(1))),
        asyncio.ensure_future(db.run_write(rolls_everything_back)),
        asyncio.ensure_future(db.run_write(put(3))),
        asyncio.ensure_future(db.run_write(put(4))),
    ]
    await asyncio.sleep(0.05)
    gate.set()
    assert await first is True
    outcomes = await asyncio.gather(*grouped, return_exceptions=True)
    kept = await db.run_read(lambda s: s.execute(text("SELECT v FROM t ORDER BY v")).all())
    await db.dispose()
    assert isinstance(outcomes[0], IntegrityError) and "UNIQUE" in str(outcomes[0])
    assert isinstance(outcomes[1], IntegrityError)
    assert outcomes[2:] == [3, 4]
    assert [row[0] for row in kept] == [3, 4]
