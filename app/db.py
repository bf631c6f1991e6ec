"""Database engines and the three ways into them: SQLite (WAL, one writer thread) or PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction

from app import errors
from app.settings import Settings
from app.sqlite_writer import GroupCommitWriter
from app.statements import READ_CONNECTION, driver, driver_sql

SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL: connections of each process for statements committed apart from the caller's
# transaction (`Database.apart`: the start of a day's order numbers, once a day), beside the
# pool of DAIBAN_DATABASE_POOL_SIZE.
APART_POOL_SIZE = 1
T = TypeVar("T")
log = logging.getLogger("daiban.db")
_AFTER_COMMIT = "daiban.after_commit"


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """PostgreSQL: a connection taken from the pool is pinged first only when it has been
    idle in the pool for `idle_seconds` (DAIBAN_DATABASE_PING_IDLE_SECONDS). A dead one
    (the server restarted, a firewall dropped it) is then replaced before any statement is
    sent on it; one busy a moment ago is not asked again. SQLAlchemy's own pre-ping asks on
    every checkout: one more round trip in every unit of work, a fifth to a quarter of the
    throughput (docs/benchmarks.md). A connection that died while in use fails that unit
    of work, and SQLAlchemy then drops every connection the pool held before it."""
    pool_events = engine.sync_engine.pool

    @event.listens_for(pool_events, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool_events, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:  # whatever the ping met, the connection is not to be trusted
            alive = False
        if not alive:
            # the pool discards it and checks out another (a new connection if need be)
            raise DisconnectionError()


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (never if it rolls back):
    for signals to other processes that must not arrive before the data they announce."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


@event.listens_for(Session, "after_transaction_end")
def _drop_after_commit(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (a savepoint's end is not this).
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


def json_text(value: Any) -> str:
    """JSON columns as compact UTF-8 text, by msgspec: several times faster than the
    standard library's encoder, which every order, event and message row goes through."""
    return msgspec.json.encode(value).decode()


def json_value(text: str | bytes) -> Any:
    """JSON columns read, by msgspec: four times faster than the standard library's decoder,
    which every order, event and message row read went through (PostgreSQL decodes each
    JSON value as it arrives). What msgspec refuses and the standard library reads (a lone
    surrogate in a string, NaN, a number beyond a float) goes to the standard library, so
    every value reads as it did before."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


class Database:
    """The way into the database: plain synchronous use cases on a `Session`, run by one of
    three entry points, each with its own job (docs/architecture.md, "Database access"):

    - `run_write(work)`: one write transaction. On SQLite every write of the process goes
      through one writer thread (app/sqlite_writer.py), which commits in groups.
    - `run_read(work)`: a short read (a few indexed statements, one page of a list). On
      SQLite it runs right on the event loop, on one kept connection.
    - `run_long_read(work)`: a read that may take long (exports, ledgers, reports, figures
      over a period). It runs on an event loop of its own, in a thread of its own
      (`_LongReads`), so that its Python does not hold up the service's loop; on SQLite
      on aiosqlite's async engine.

    On PostgreSQL all three run on asyncpg through SQLAlchemy's greenlet bridge
    (`AsyncSession.run_sync`). SQLite readers BEGIN DEFERRED and never wait (WAL); the writer
    BEGINs IMMEDIATE, so it takes the lock before it reads rather than failing at once with
    "database is locked" when it comes to write.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = make_url(settings.database_url)
        self._wait_seconds = settings.database.wait_seconds
        # PostgreSQL: long reads on the primary take turns, as many at once as half the read
        # pool, on a pool of their own (`run_long_read`).
        turns = max(1, settings.database.pool_size // 2)
        self._long_read_turns = asyncio.Semaphore(turns)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        engine: AsyncEngine
        self._apart_engine: AsyncEngine | None = None  # PostgreSQL only: see `apart`
        if self.is_sqlite:
            database = self.url.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = _sqlite_long_read_engine(settings)
            sync_url = self.url.set(drivername="sqlite+pysqlite")
            self._sync_writer = _sqlite_sync_engine(sync_url, settings, immediate=True)
            self._sync_reader = _sqlite_sync_engine(sync_url, settings, immediate=False)
            self._read_connection: Connection | None = None
            self._writer = GroupCommitWriter(self._sync_writer)
        else:
            # Writes: up to DAIBAN_DATABASE_POOL_SIZE connections.
            engine = _postgres_engine(settings, self.url, settings.database.pool_size)
            # A pool of its own, so that a unit of work holding a connection of the main
            # pool never waits for a second one from it (with every connection so held,
            # none would come back); autocommit, so each statement is its own transaction;
            # synchronous_commit off, so that its row locks go as soon as it has run rather
            # than after its commit reached the disk. That is safe for what it writes: a
            # caller commits after the statement has run, and PostgreSQL's commit flushes
            # the log up to the caller's commit record, which comes after the statement's.
            self._apart_engine = _postgres_engine(
                settings,
                self.url,
                APART_POOL_SIZE,
                isolation_level="AUTOCOMMIT",
                connect_args={"server_settings": {"synchronous_commit": "off"}},
            )
        # PostgreSQL: every write. SQLite: the long reads' (aiosqlite), used on their loop.
        self.async_engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._read_engine = (
            engine if self.is_sqlite else _postgres_read_engine(settings, settings.database_url)
        )
        # Long reads: engines used only on the long reads' own loop (`_LongReads`). On the
        # primary, a pool of as many connections as long reads may run at once (their turns).
        self._long_reads = _LongReads()
        self._long_engine = (
            engine
            if self.is_sqlite
            else _postgres_read_engine(settings, settings.database_url, turns)
        )
        self._long_sessions = async_sessionmaker(self._long_engine, expire_on_commit=False)
        # PostgreSQL with DAIBAN_DATABASE_REPLICA_URL: the reads that may lag behind
        self._replica_engine: AsyncEngine | None = None
        if settings.database.replica_url:
            self._replica_engine = _postgres_read_engine(settings, settings.database.replica_url)

    async def run_write(self, work: Callable[[Session], T]) -> T:
        """Run `work` (plain, synchronous code) in one write transaction: committed when it
        returns, rolled back when it raises.

        On SQLite the whole unit of work runs in one hop to the single writer thread (see
        app/sqlite_writer.py), so the write lock is held for the statements alone, not for
        every await between them. Elsewhere it runs on the async session through
        SQLAlchemy's greenlet bridge.
        """
        if self.is_sqlite:
            return await self._writer.run(work)
        return await self._run("write", _in_session(self._sessions, work))

    async def run_read(self, work: Callable[[Session], T]) -> T:
        """Run `work`, a short read (a few indexed statements), in one read transaction.

        On SQLite it runs right here on the event loop. Such a read is CPU work of a few
        hundred microseconds on pages the OS has cached, and WAL readers never wait for a
        lock; a hop to a thread costs more than the read and makes the threads contend for
        the GIL across cores (bench/orders.py: list reads ~1,800/s through a thread pool,
        ~2,500/s inline, unpinned). Long reads use `run_long_read` instead.
        Elsewhere it runs on the async session through SQLAlchemy's greenlet bridge.
        """
        if self.is_sqlite:
            # Reads run one at a time here, so one connection is kept for them (checking one
            # out of a pool and a Session's own transaction cost a third of a list read).
            if self._read_connection is None:
                self._read_connection = self._sync_reader.connect()
            connection = self._read_connection
            try:
                with connection.begin():
                    return work(_read_session(connection))
            except DBAPIError:
                self._read_connection = None  # start afresh with a new connection next time
                connection.close()
                raise
        return await self._run("read", _on_connection(self._read_engine, work))

    async def run_long_read(self, work: Callable[[Session], T], *, may_lag: bool = False) -> T:
        """Run `work`, a read that may take long (exports, reports), in one read
        transaction without holding up the event loop: it runs on the long reads' own loop
        and thread (`_LongReads`), on SQLite through aiosqlite, on PostgreSQL on asyncpg
        (see `_postgres_read_engine`).

        `may_lag`: the read may see the data as it was a moment ago (figures over a period,
        ledger exports), so it goes to the read replica when there is one
        (DAIBAN_DATABASE_REPLICA_URL). A read whose answer the caller acts on, or which
        must show what was just written (readiness after a fix, a ledger's draft, the
        catalogue's export after an edit), stays on the primary.

        On PostgreSQL's primary, long reads take turns, as many at once as half the read
        pool (a district's figures over a year hold a connection for seconds), on a pool of
        that size of their own: the short reads' pool is theirs alone. A replica's pool
        serves long reads alone, so they share all of it. A read that waits past
        DAIBAN_DATABASE_WAIT_SECONDS, for its turn or for a connection, raises
        `errors.DatabaseBusy` (503)."""
        run = self._long_reads.run
        if self.is_sqlite:
            return await self._run("long read", run(lambda: _in_session(self._long_sessions, work)))
        replica = self._replica_engine
        if may_lag and replica is not None:
            return await self._run("long read", run(lambda: _on_connection(replica, work)))
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._long_read_turns.acquire()
        except TimeoutError:
            log.warning("a long read waited too long for its turn")
            raise errors.DatabaseBusy() from None
        try:
            return await self._run(
                "long read", run(lambda: _on_connection(self._long_engine, work))
            )
        finally:
            self._long_read_turns.release()

    async def _run(self, what: str, unit: Coroutine[Any, Any, T]) -> T:
        """Await `unit`, one unit of work on a pool. A wait for a connection past
        DAIBAN_DATABASE_WAIT_SECONDS (every one of the pool in use all that time) becomes
        `errors.DatabaseBusy`: the request answers 503 and the client tries again, where
        SQLAlchemy's TimeoutError would be a 500."""
        try:
            return await unit
        except PoolTimeout:
            log.warning("a %s waited too long for a database connection", what)
            raise errors.DatabaseBusy() from None

    @contextmanager
    def apart(self, session: Session) -> Iterator[Connection]:
        """A connection for a short write, inside a unit of work, that must not keep its row
        locks to the end of the unit's transaction: the row where a day's order numbers
        start, which the day's first submissions would otherwise wait on behind the one that
        wrote it (app/orders/submission.py, `next_number`).

        On PostgreSQL it is a connection of a small pool of its own in autocommit: each
        statement commits as it runs, so another transaction waits for the statement alone,
        never for the caller's transaction; the caller sees what it wrote, and a rollback of
        the caller does not undo it. On SQLite it is the caller's own connection: with one
        writer nothing runs beside the caller, so nothing waits behind it, and what the
        statement wrote rolls back with the caller.
        """
        if self._apart_engine is None:
            yield session.connection()
            return
        with self._apart_engine.sync_engine.connect() as connection:
            yield connection

    def revive_writer(self) -> BaseException | None:
        """SQLite: if the writer thread died, start it again and say why it died (for
        readiness: the next check, and the next write, find it running). None when it runs."""
        if not self.is_sqlite:
            return None
        failure = self._writer.failure
        if failure is not None:
            self._writer.restart()
        return failure

    def lock_row(self, session: Session, key: Any, value: Any) -> bool:
        """PostgreSQL: take the row `key == value` FOR UPDATE, so that transactions about
        the same thing (one person's upload forms, one account's logins) take turns; True
        when a lock was taken. SQLite's single writer already orders every write."""
        if self.is_sqlite:
            return False
        session.execute(select(key).where(key == value).with_for_update())
        return True

    async def dispose(self) -> None:
        await self._long_reads.close(
            [self._long_engine, *([self._replica_engine] if self._replica_engine else [])]
        )
        if not self.is_sqlite:  # on SQLite the async engine is the long reads', closed above
            await self.async_engine.dispose()
            await self._read_engine.dispose()
        if self._apart_engine is not None:
            await self._apart_engine.dispose()
        if self.is_sqlite:
            self._writer.close()
            if self._read_connection is not None:
                self._read_connection.close()
            self._sync_writer.dispose()
            self._sync_reader.dispose()


class _LongReads:
    """An event loop in a thread of its own, started at the first long read, where long
    reads run. A long read's rows become figures, sheets or exports in Python, seconds of
    CPU for a district's year (ledger/figures.py); run on the service's loop, that held up
    every other request of the worker, up to 1.2 s at a time (docs/scaling.md). Here the
    service's loop gets the interpreter back within its switch interval (5 ms) however
    long the read computes. Its engines are used on this loop alone: a connection belongs
    to the loop it was opened on."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._starting:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="daiban-long-reads", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def run(self, unit: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """`unit()` awaited on the long reads' loop; cancelling the caller cancels it."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(unit(), self._started()))

    async def close(self, engines: list[AsyncEngine]) -> None:
        """Dispose of `engines` on the loop their connections belong to, then end it."""

        async def dispose() -> None:
            for engine in engines:
                await engine.dispose()

        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            await dispose()  # never used: nothing opened on another loop
            return
        await self.run(dispose)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
        self._loop = self._thread = None


async def _in_session(
    sessions: async_sessionmaker[AsyncSession], work: Callable[[Session], T]
) -> T:
    """`work` in one transaction of a session of `sessions`: committed when it returns."""
    async with sessions() as session, session.begin():
        return await session.run_sync(work)


def _read_session(connection: Connection) -> Session:
    """A read's session on `connection`, which it names for `connection_of`
    (app/statements.py) to run Core statements on without a session transaction."""
    return Session(bind=connection, expire_on_commit=False, info={READ_CONNECTION: connection})


async def _on_connection(engine: AsyncEngine, work: Callable[[Session], T]) -> T:
    """PostgreSQL's reads: `work` on a connection of a read pool (autocommit, read only:
    `_postgres_read_engine`), through a plain `Session` bound to it. There is nothing to
    commit: an `AsyncSession` and its transaction would be bookkeeping around statements
    that each commit alone, 35-50 µs of the service's CPU a read (docs/benchmarks.md)."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: work(_read_session(sync)))


def _postgres_read_engine(settings: Settings, url: str, pool_size: int = 0) -> AsyncEngine:
    """PostgreSQL: the pool of `run_read`, up to DAIBAN_DATABASE_POOL_SIZE connections
    (`pool_size` 0) beside as many for writes; the long reads' pool of half as many; and as
    many again to the replica, when there is one, for the reads that may lag.

    In autocommit, so that a read sends its statements alone, without a BEGIN before them
    and a COMMIT after: two round trips less, and PostgreSQL's work for them (a 20-row list
    read: 0.85 -> 0.58 ms of the service's CPU, 0.66 -> 0.43 ms of PostgreSQL's;
    docs/benchmarks.md). It changes nothing a read sees: at PostgreSQL's READ COMMITTED each
    statement of a transaction takes its own snapshot anyway. And read only
    (`default_transaction_read_only`), so that a write sent by mistake on a read is refused
    rather than committed statement by statement."""
    return _postgres_engine(
        settings,
        url,
        pool_size or settings.database.pool_size,
        isolation_level="AUTOCOMMIT",
        connect_args={"server_settings": {"default_transaction_read_only": "on"}},
    )


def _postgres_engine(settings: Settings, url: Any, pool_size: int, **options: Any) -> AsyncEngine:
    """A PostgreSQL pool of up to `pool_size` connections, kept open once opened (no
    overflow: an overflow connection is closed as soon as it comes back to a full pool and
    opened again for the next request, which under 16 requests at once on one worker cost
    a third of the submissions; docs/benchmarks.md), each pinged before use only after it
    has been idle (`_ping_when_idle`)."""
    engine = create_async_engine(
        url,
        json_serializer=json_text,
        json_deserializer=json_value,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=settings.database.wait_seconds,
        echo=settings.database.echo,
        **options,
    )
    _ping_when_idle(engine, settings.database.ping_idle_seconds)
    return engine


def take_turns(session: Session, name: str) -> None:
    """Transactions that name the same thing take turns until they end: on PostgreSQL a
    transaction-scoped advisory lock on `name`; on SQLite the single writer already orders
    every write transaction (`BEGIN IMMEDIATE`)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def _sqlite_pragmas(dbapi_connection: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_sync_engine(url: Any, settings: Settings, *, immediate: bool) -> Engine:
    engine = create_engine(
        url,
        json_serializer=json_text,
        json_deserializer=json_value,
        pool_size=1,  # the writer thread's connection, or the loop's reading one
        max_overflow=0,
        echo=settings.database.echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    event.listen(engine, "connect", lambda conn, _record: _sqlite_pragmas(conn))
    # BEGIN, and the savepoint the group-commit writer takes per unit of work, straight on
    # the driver. SQLAlchemy issues a savepoint by compiling and executing a statement
    # object, which cost an eighth of a submission (bench/orders.py), and a "begin" event
    # listener would make every statement dispatch the engine's events. The session's
    # transaction and savepoint bookkeeping (begin, begin_nested) is unchanged.
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    dialect: Any = engine.dialect
    dialect.do_begin = lambda dbapi_connection: dbapi_connection.driver_connection.execute(begin)
    dialect.do_savepoint = lambda conn, name: driver_sql(conn, f"SAVEPOINT {name}")
    dialect.do_release_savepoint = lambda conn, name: driver_sql(conn, f"RELEASE {name}")
    dialect.do_rollback_to_savepoint = _rollback_to_savepoint
    return engine


def _rollback_to_savepoint(conn: Connection, name: str) -> None:
    # After some errors (a full disk, an I/O error) SQLite has already rolled back the whole
    # transaction, savepoints and all: the unit's own error is then the one to raise, and
    # the group-commit writer sees the transaction gone.
    if driver(conn).in_transaction:
        driver_sql(conn, f"ROLLBACK TO {name}")


def _sqlite_long_read_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        json_serializer=json_text,
        json_deserializer=json_value,
        pool_size=settings.database.pool_size,
        max_overflow=settings.database.pool_size,
        pool_timeout=settings.database.wait_seconds,
        echo=settings.database.echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _sqlite_pragmas(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine
