"""Database engines and sessions: SQLite (WAL, BEGIN IMMEDIATE for writers) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    """Two engines on SQLite (readers BEGIN DEFERRED, writers BEGIN IMMEDIATE); one elsewhere.

    SQLite lets a deferred transaction that starts reading and then writes fail at once with
    "database is locked" when another writer got there first, whatever busy_timeout says.
    Writers that take the lock at BEGIN wait their turn instead; readers stay concurrent (WAL).
    """

    def __init__(self, settings: Settings) -> None:
        self.url = make_url(settings.database_url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            database = self.url.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(settings, immediate=True)
            self.read_engine = _sqlite_engine(settings, immediate=False)
        else:
            self.write_engine = create_async_engine(
                self.url,
                pool_size=settings.database.pool_size,
                max_overflow=settings.database.pool_size,
                pool_pre_ping=True,
                echo=settings.database.echo,
            )
            self.read_engine = self.write_engine
        self.write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed on success, rolled back on any error."""
        async with self.write_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        async with self.read_sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def _sqlite_engine(settings: Settings, *, immediate: bool) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        # One writer connection per process: SQLite takes one writer at a time anyway, and
        # writers queueing on the pool (asyncio, no sleeping) beat writers sleeping in
        # SQLite's busy handler, whose back-off grows to 100 ms steps.
        pool_size=settings.database.pool_size if not immediate else 1,
        max_overflow=settings.database.pool_size if not immediate else 0,
        pool_timeout=60,
        echo=settings.database.echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine
