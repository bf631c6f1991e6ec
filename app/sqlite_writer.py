"""SQLite's single writer: one thread owns the write connection and commits in groups.

SQLite takes one writer at a time, so writes queue anyway; here they queue in memory rather
than in SQLite's busy handler. When several units of work are waiting, the thread runs them
back to back in one transaction, each in its own SAVEPOINT so that one failing never undoes
another, and commits once (group commit): under load the cost of BEGIN and COMMIT is shared;
alone, a unit of work runs in its own transaction without a savepoint. Every caller hears
its outcome only after the commit that made it durable.

Supervision. Whatever a unit of work raises, BaseException included, is its caller's: the
caller raises it and the thread goes on. A caller whose event loop has closed is skipped. A
fault of the writer's own that is an Exception (a bug) costs only the units in hand, told
`WriterError` with `maybe_committed`, and the thread goes on. Anything else that escapes (a
BaseException thrown into the writer's own code) ends the thread; on its way out it tells
every waiting caller: those whose outcome it had, that outcome; those of the group it was
running, `WriterError(maybe_committed=True)`; those queued, `WriterError(maybe_committed=False)`
(not run). It logs the death at ERROR, `failure` holds the cause, and the next `run()` (or
`restart()`) starts a new thread, logged at WARNING. After `close()`, `run()` raises at once.

Shared between the event loop's thread and the writer thread, and why each is safe:
- The queue: a `queue.SimpleQueue`, made for it.
- The futures: made on the loop; the writer thread only carries them and has `_settle` run on
  their loop (`call_soon_threadsafe`), so a future is only read and settled on its own loop.
- `_failure`, `_closed`, `_thread`: changed under `_lock`, which `run()` takes to check them
  and enqueue, so a death's drain of the queue misses no unit put before it.
- The write engine (app/db.py `_sqlite_sync_engine`, one pooled connection): used by one
  writer thread at a time. A dead thread's Session was closed as the error left it, so its
  connection is back in the pool (and rolled back) before a successor can take it. The
  connection outlives the thread that opened it (a restart; `Database.dispose()` closes it
  from the loop after `close()`), hence `check_same_thread=False`. Sessions never cross threads.
- SQLAlchemy's process-wide state: module-level Core statements (and their memoized cache
  keys), mappers and the ORM's path registry are used by both threads (reads run on the
  loop); SQLAlchemy builds them for threads (memoized values are idempotent, mapper
  configuration takes a lock). Each engine's compiled cache (an LRUCache, made for concurrent
  use: it locks its own pruning) is used by one thread anyway: the write engine's here, the
  reading engine's on the loop (the aiosqlite engine's: SQLAlchemy's async bridge, on the loop).
- `Database._read_connection` (app/db.py): only ever touched on the loop, by `run_read`, which
  has no await, so reads never interleave; the writer thread neither sees it nor its engine.
- `DriverStatement._prepared` (app/statements.py): filled only on pysqlite connections, and
  those writes run only in units of work, so on this thread (the async engines are aiosqlite:
  SQLAlchemy executes there). Were two threads to fill it, each entry is one dict store of a
  value computed from the statement and dialect alone: the loser's equal value is dropped. The
  same holds for `records.claim_statement` (lru_cache) and `workdays._library` (cache).
- `Context.caches`: "calendar", "guide_versions", "item_codes", "region_names", "dispatchers"
  and "templates" are filled in units of work (this thread), and some in reads on the loop
  too (calendar, guide versions, item codes). Each access is one dict operation on str or int
  keys (get, setdefault, store, pop, clear), atomic under the GIL; two threads missing at once
  both load and the later store wins. That is harmless: the values never change (guide
  versions, item codes, region names, templates) or are a snapshot kept up to a minute anyway
  (calendar, dispatchers); and they are only read once cached (expunged ItemVersion rows; a
  WorkCalendar, not changed after it is built).
- What a unit of work returns crosses to the loop after its Session has closed: ORM objects
  are detached then, their columns loaded (`expire_on_commit=False`), and only read.
- `after_commit` callbacks (app/db.py) run on the thread that commits: for a unit of work,
  this one, so each must be safe to run off the loop. The only one,
  `Revocations._after_commit` (app/security/revocations.py), touches a stamp file and
  increments a counter that only this thread writes (the loop reads it, and a stale read
  only delays a reload to the next request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.statements import driver

T = TypeVar("T")
MAX_GROUP = 64
log = logging.getLogger(__name__)

_Item = tuple[Callable[[Session], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_Outcome = tuple[bool, Any]


class WriterError(RuntimeError):
    """The writer could not give a unit of work its outcome, for a reason of its own: it is
    closed, or its thread died (the cause is `__cause__`), or it failed. `maybe_committed`:
    the unit may have run and been committed (False: it did not run)."""

    def __init__(self, message: str, *, maybe_committed: bool) -> None:
        super().__init__(message)
        self.maybe_committed = maybe_committed


class GroupCommitWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._failure: BaseException | None = None
        self._thread = self._start()

    @property
    def failure(self) -> BaseException | None:
        """Why the writer thread died, while no new one has started; else None. For
        readiness: the next `run()` or `restart()` starts a new thread."""
        return self._failure

    async def run(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise WriterError("the database writer is closed", maybe_committed=False)
            if self._failure is not None:
                self._restart()
            self._queue.put((work, loop, future))
        return await future

    def restart(self) -> bool:
        """Start a new writer thread if the last one died; True if one was started."""
        with self._lock:
            if self._closed:
                raise WriterError("the database writer is closed", maybe_committed=False)
            if self._failure is None:
                return False
            self._restart()
            return True

    def close(self) -> None:
        """Run what is queued, then stop; later `run()` calls raise `WriterError`."""
        with self._lock:
            self._closed = True
            self._queue.put(None)
            thread = self._thread
        thread.join(timeout=30)
        if thread.is_alive():
            log.warning("the database writer is still running a unit of work after 30 s")

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="db-write", daemon=True)
        thread.start()
        return thread

    def _restart(self) -> None:  # under _lock
        self._thread = self._start()
        log.warning("database writer restarted; the last one died of %r", self._failure)
        self._failure = None

    def _run(self) -> None:
        group: list[_Item] = []
        outcomes: list[_Outcome] | None = None
        told = 0  # how many of the group's callers were handed their outcome
        try:
            while True:
                group, outcomes, told = [], None, 0
                if not self._take(group):
                    return
                outcomes = self._outcomes(group)
                for item, outcome in zip(group, outcomes, strict=True):
                    _send(item, outcome)
                    told += 1
        except BaseException as exc:
            self._died(exc, group[told:], outcomes[told:] if outcomes is not None else None)

    def _take(self, group: list[_Item]) -> bool:
        """Wait for work and take up to MAX_GROUP units; False once closed."""
        first = self._queue.get()
        if first is None:
            return False
        group.append(first)
        while len(group) < MAX_GROUP:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # finish this group, then stop
                break
            group.append(item)
        return True

    def _outcomes(self, group: list[_Item]) -> list[_Outcome]:
        try:
            outcomes = self._group(group)
            if len(outcomes) != len(group):
                raise AssertionError(f"{len(outcomes)} outcomes for {len(group)} units of work")
            return outcomes
        except Exception as exc:  # a fault of the writer's own: these units pay, it goes on
            log.exception("database writer failed on %d units of work", len(group))
            return [(False, _failed(exc)) for _ in group]

    def _died(
        self, cause: BaseException, running: list[_Item], outcomes: list[_Outcome] | None
    ) -> None:
        with self._lock:  # from here on, run() starts a new thread before it queues
            self._failure = cause
            queued: list[_Item] = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    queued.append(item)
        if outcomes is None:
            outcomes = [(False, _death_error(cause, maybe_committed=True)) for _ in running]
        told = list(zip(running, outcomes, strict=True))
        told += [(item, (False, _death_error(cause, maybe_committed=False))) for item in queued]
        for item, outcome in told:
            with contextlib.suppress(BaseException):  # on its way out: tell all it can
                _send(item, outcome)
        log.error(
            "database writer died (%d waiting told); the next write starts a new thread",
            len(told),
            exc_info=cause,
        )

    def _alone(self, item: _Item) -> list[_Outcome]:
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                return [(True, item[0](session))]
        except BaseException as exc:  # handed to the caller, who raises it
            return [(False, exc)]

    def _together(self, group: list[_Item]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                sqlite = driver(session.connection())
                for work, _, _ in group:
                    try:
                        with session.begin_nested():
                            outcomes.append((True, work(session)))
                    except BaseException as exc:  # this one is rolled back to its savepoint
                        if not sqlite.in_transaction:
                            # SQLite itself rolled back the whole transaction (a full disk,
                            # an I/O error, OR ROLLBACK): what ran before is gone too.
                            raise _Lost(exc, len(outcomes)) from exc
                        outcomes.append((False, exc))
        except _Lost as lost:
            log.warning("group transaction rolled back by SQLite", exc_info=lost.error)
            # Those that ran hear why; those that did not run yet get their own turn.
            return [(False, lost.error)] * (lost.at + 1) + self._group(group[lost.at + 1 :])
        except BaseException as exc:  # the commit failed: nothing of the group was kept
            log.warning("group commit failed", exc_info=True)
            return [(False, exc)] * len(group)
        return outcomes

    def _group(self, group: list[_Item]) -> list[_Outcome]:
        if not group:
            return []
        return self._alone(group[0]) if len(group) == 1 else self._together(group)


class _Lost(Exception):
    """A unit's error after which SQLite had rolled back the group's whole transaction."""

    def __init__(self, error: BaseException, at: int) -> None:
        super().__init__(str(error))
        self.error, self.at = error, at


def _failed(cause: Exception) -> WriterError:
    error = WriterError(f"the database writer failed: {cause!r}", maybe_committed=True)
    error.__cause__ = cause
    return error


def _death_error(cause: BaseException, *, maybe_committed: bool) -> WriterError:
    what = "while running" if maybe_committed else "before running"
    error = WriterError(
        f"the database writer died {what} this unit of work: {cause!r}",
        maybe_committed=maybe_committed,
    )
    error.__cause__ = cause
    return error


def _send(item: _Item, outcome: _Outcome) -> None:
    _, loop, future = item
    try:
        loop.call_soon_threadsafe(_settle, future, *outcome)
    except Exception:  # its event loop is closed: no one is left to tell
        log.warning("database writer: a caller's event loop is gone", exc_info=True)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller went away (request cancelled); the work stands
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
