"""SQLite's single writer: one thread owns the write connection and commits in groups.

SQLite takes one writer at a time, so writes queue anyway; here they queue in memory rather
than in SQLite's busy handler. When several units of work are waiting, the thread runs them
back to back in one transaction, each in its own SAVEPOINT so that one failing never undoes
another, and commits once (group commit): under load the cost of BEGIN and COMMIT is shared;
alone, a unit of work runs in its own transaction without a savepoint. Every caller hears
its outcome only after the commit that made it durable.
"""

from __future__ import annotations

import asyncio
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


class GroupCommitWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="db-write", daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((work, loop, future))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                group.append(item)
            outcomes = self._group(group)
            for (_, loop, future), (ok, value) in zip(group, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, ok, value)

    def _alone(self, item: _Item) -> list[tuple[bool, Any]]:
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                return [(True, item[0](session))]
        except BaseException as exc:  # handed to the caller, who raises it
            return [(False, exc)]

    def _together(self, group: list[_Item]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                sqlite = driver(session.connection())
                for work, _, _ in group:
                    try:
                        with session.begin_nested():
                            outcomes.append((True, work(session)))
                    except Exception as exc:  # this one is rolled back to its savepoint
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

    def _group(self, group: list[_Item]) -> list[tuple[bool, Any]]:
        if not group:
            return []
        return self._alone(group[0]) if len(group) == 1 else self._together(group)


class _Lost(Exception):
    """A unit's error after which SQLite had rolled back the group's whole transaction."""

    def __init__(self, error: Exception, at: int) -> None:
        super().__init__(str(error))
        self.error, self.at = error, at


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller went away (request cancelled); the work stands
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
