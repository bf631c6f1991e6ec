"""SQLite's group-committing writer: units of work that share a transaction stay independent."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import Database, _sqlite_sync_engine
from app.sqlite_writer import GroupCommitWriter, WriterError
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


# Supervision: what the thread survives, and what happens when it does not.


class Abort(BaseException):
    """Not an Exception: what a library bug or an injected interrupt could throw."""


@pytest.fixture
def live(tmp_path: Path):
    """A writer on the production write engine (BEGIN IMMEDIATE, WAL, driver savepoints)."""
    path = tmp_path / "live.sqlite3"
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{path}")
    engine = _sqlite_sync_engine(make_url(f"sqlite+pysqlite:///{path}"), settings, immediate=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
    w = GroupCommitWriter(engine)
    yield w, path
    w.close()
    engine.dispose()


def committed(path: Path) -> list[int]:
    """What a connection of its own finds in the file."""
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")]
    finally:
        conn.close()


def held(gate: threading.Event, started: threading.Event, value: int | None = None):
    """A unit of work that keeps the writer until `gate` is set (so that what comes next
    queues behind it), then inserts `value` if given."""

    def work(session: Session) -> int | None:
        started.set()
        gate.wait(5)
        return None if value is None else put(value)(session)

    return work


class WakesBadlyOnce(asyncio.SelectorEventLoop):
    """An event loop whose first wake-up from the writer thread throws `error` into it."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error: BaseException | None = error

    def call_soon_threadsafe(self, *args, **kwargs):
        if self.error is not None and threading.current_thread().name == "db-write":
            error, self.error = self.error, None
            raise error
        return super().call_soon_threadsafe(*args, **kwargs)


def test_a_dead_writer_tells_every_waiting_caller_shows_why_and_restarts(live, caplog):
    w, path = live
    abort = Abort("thrown into the writer thread")
    gate, started = threading.Event(), threading.Event()

    async def main() -> None:
        first = asyncio.ensure_future(w.run(held(gate, started, 1)))
        await asyncio.to_thread(started.wait, 5)
        queued = [asyncio.ensure_future(w.run(put(v))) for v in (2, 3)]
        await asyncio.sleep(0.01)
        gate.set()  # `first` commits; handing its outcome over throws `abort`: the thread dies
        # Its own outcome it still had: told. The queued ones did not run: told so, at once.
        assert await asyncio.wait_for(first, 5) == 1
        for outcome in await asyncio.wait_for(asyncio.gather(*queued, return_exceptions=True), 5):
            assert isinstance(outcome, WriterError), outcome
            assert outcome.maybe_committed is False and outcome.__cause__ is abort
        assert w.failure is abort  # what readiness reports
        assert committed(path) == [1]
        # The next write starts a new thread, and commits.
        assert await asyncio.wait_for(w.run(put(4)), 5) == 4
        assert w.failure is None
        assert w.restart() is False  # nothing to restart

    with caplog.at_level(logging.WARNING, logger="app.sqlite_writer"):
        with asyncio.Runner(loop_factory=lambda: WakesBadlyOnce(abort)) as runner:
            runner.run(main())
    died = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(died) == 1 and died[0].exc_info and died[0].exc_info[1] is abort
    assert any("restarted" in r.getMessage() for r in caplog.records)
    w.close()
    assert committed(path) == [1, 4]


class ThrowsOnWarning(logging.Handler):
    """Logging that throws `error` at the writer's first warning (the lost group's)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(logging.WARNING)
        self.error: BaseException | None = error

    def emit(self, record: logging.LogRecord) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise error


@pytest.mark.parametrize("error", [RuntimeError("a bug"), Abort("thrown in")], ids=repr)
async def test_a_failure_in_the_writers_own_code_mid_group_leaves_no_caller_waiting(live, error):
    """Mid-group, the writer does not know what was kept: its callers hear that. An
    Exception the thread survives; a BaseException ends it, and the next write restarts it."""
    w, path = live
    gate, started = threading.Event(), threading.Event()
    first = asyncio.ensure_future(w.run(held(gate, started)))
    await asyncio.to_thread(started.wait, 5)

    def rolls_everything_back(session: Session) -> None:
        session.execute(text("INSERT OR ROLLBACK INTO t (v) VALUES (1)"))

    grouped = [asyncio.ensure_future(w.run(work)) for work in (put(1), rolls_everything_back)]
    grouped.append(asyncio.ensure_future(w.run(put(3))))
    await asyncio.sleep(0.01)
    handler = ThrowsOnWarning(error)
    logger = logging.getLogger("app.sqlite_writer")
    logger.addHandler(handler)
    try:
        gate.set()
        assert await asyncio.wait_for(first, 5) is None
        outcomes = await asyncio.wait_for(asyncio.gather(*grouped, return_exceptions=True), 5)
    finally:
        logger.removeHandler(handler)
    for outcome in outcomes:
        assert isinstance(outcome, WriterError), outcome
        assert outcome.maybe_committed is True and outcome.__cause__ is error
    assert w.failure is (error if isinstance(error, Abort) else None)
    assert await asyncio.wait_for(w.run(put(5)), 5) == 5
    assert w.failure is None
    assert committed(path) == [5]


def test_a_caller_whose_event_loop_closed_does_not_take_the_writer_down(live):
    w, path = live
    gate, started = threading.Event(), threading.Event()

    async def leave() -> None:
        task = asyncio.ensure_future(w.run(held(gate, started, 1)))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()  # the caller goes away; its unit of work goes on

    asyncio.run(leave())  # and its event loop is closed
    gate.set()

    async def later() -> int:
        return await asyncio.wait_for(w.run(put(2)), 5)

    assert asyncio.run(later()) == 2
    assert w.failure is None
    assert committed(path) == [1, 2]


async def test_a_units_base_exception_is_its_callers_alone(live):
    w, path = live
    gate, started = threading.Event(), threading.Event()
    first = asyncio.ensure_future(w.run(held(gate, started)))
    await asyncio.to_thread(started.wait, 5)

    def aborts(session: Session) -> None:
        session.execute(text("INSERT INTO t (v) VALUES (2)"))
        raise Abort("from the unit")

    grouped = [asyncio.ensure_future(w.run(work)) for work in (put(1), aborts, put(3))]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.wait_for(first, 5)
    outcomes = await asyncio.wait_for(asyncio.gather(*grouped, return_exceptions=True), 5)
    assert outcomes[0] == 1 and isinstance(outcomes[1], Abort) and outcomes[2] == 3

    def exits(session: Session) -> None:  # alone, in its own transaction
        session.execute(text("INSERT INTO t (v) VALUES (4)"))
        raise SystemExit(3)

    async def caught() -> BaseException | None:
        # Caught in the caller's own coroutine: asyncio lets a SystemExit that leaves a task
        # stop the event loop (as it would were the work run right there on the loop).
        try:
            await w.run(exits)
        except SystemExit as exc:
            return exc
        return None

    assert isinstance(await asyncio.wait_for(caught(), 5), SystemExit)
    assert await asyncio.wait_for(w.run(put(5)), 5) == 5
    assert w.failure is None
    assert committed(path) == [1, 3, 5]


async def test_close_runs_what_is_queued_then_refuses_work_at_once(live):
    w, path = live
    queued = [asyncio.ensure_future(w.run(put(v))) for v in (1, 2)]
    await asyncio.sleep(0)  # both are queued
    w.close()
    w.close()
    assert await asyncio.wait_for(asyncio.gather(*queued), 5) == [1, 2]
    with pytest.raises(WriterError, match="closed") as refused:
        await asyncio.wait_for(w.run(put(3)), 5)
    assert refused.value.maybe_committed is False
    with pytest.raises(WriterError, match="closed"):
        w.restart()
    assert committed(path) == [1, 2]


def test_readiness_reports_a_dead_writer_once_and_writes_go_on(tmp_path: Path):
    """The writer dies (a caller left and the warning about it throws); /readyz answers 503
    for it once, having started a new writer, then 200; and writes commit again."""
    from app import migrate
    from app.asgi import create_app
    from app.context import Context
    from app.models import Region
    from tests.conftest import serve

    path = tmp_path / "ready.sqlite3"
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{path}")
    ctx = Context.build(settings)
    asyncio.run(migrate.upgrade(ctx.db))
    gate, started = threading.Event(), threading.Event()
    handler = ThrowsOnWarning(Abort("thrown into the writer thread"))
    logger = logging.getLogger("app.sqlite_writer")
    logger.addHandler(handler)
    try:

        async def leave() -> None:
            task = asyncio.ensure_future(ctx.db.run_write(held(gate, started)))
            await asyncio.to_thread(started.wait, 5)
            task.cancel()  # its loop closes before the writer can answer: a warning

        asyncio.run(leave())
        gate.set()
        for _ in range(500):
            if ctx.db._writer.failure is not None:
                break
            threading.Event().wait(0.01)
        assert isinstance(ctx.db._writer.failure, Abort)
    finally:
        logger.removeHandler(handler)

    async def check() -> None:
        async with serve(create_app(settings, ctx=ctx)) as client:
            first = await client.get("/readyz")
            assert first.status_code == 503, first.text
            assert first.json()["code"] == "database_unreachable"
            assert (await client.get("/readyz")).status_code == 200
            added = Region(code="990000000000", name="测试区", level="district")
            await ctx.db.run_write(lambda s: s.add(added))
        await ctx.aclose()

    asyncio.run(check())
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM regions").fetchall() == [("测试区",)]
