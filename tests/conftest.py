"""Test fixtures: a real SQLite file per test (or the PostgreSQL in DAIBAN_DATABASE_URL), the
real app over ASGI, and helpers to log in as demo people."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import make_url, text

from app import migrate
from app.asgi import create_app
from app.context import Context
from app.db import Database
from app.demo import seed_demo
from app.models import Base
from app.settings import LimitSettings, Settings, load_settings
from console.progress_page import STORE as PAGE_STORE
from mini_program_api.limits import STORE

SHARED_PG_URL = os.environ.get("DAIBAN_DATABASE_URL", "")
ON_POSTGRES = SHARED_PG_URL.startswith("postgresql")
# `make test` runs the suite in several processes (pytest-xdist): on PostgreSQL each has a
# database of its own beside the one given, e.g. test_gw0 beside test, made when it starts.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
PG_URL = SHARED_PG_URL
if ON_POSTGRES and WORKER:
    _shared = make_url(SHARED_PG_URL)
    PG_URL = _shared.set(database=f"{_shared.database}_{WORKER}").render_as_string(
        hide_password=False
    )
# Every DAIBAN_LIMITS_* count (the Redis URL aside).
LIMITED = [f.name for f in msgspec.structs.fields(LimitSettings) if f.type is int]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_settings(var_dir: Path, database_url: str, **extra: str) -> Settings:
    return load_settings(settings_env(var_dir, database_url, **extra))


def settings_env(var_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The DAIBAN_* variables of a test's settings (for a command run as an operator would)."""
    return {
        "DAIBAN_VAR_DIR": str(var_dir),
        "DAIBAN_DATABASE_URL": database_url,
        "DAIBAN_SECURITY_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "DAIBAN_SECURITY_PII_KEYS": "t1:" + base64.b64encode(b"k" * 32).decode(),
        "DAIBAN_SECURITY_PII_HASH_KEY": "test-hash-key",
        "DAIBAN_SCHEDULER_MODE": "off",
        "DAIBAN_LOG_FORMAT": "text",
        "DAIBAN_STORAGE_PUBLIC_URL": "http://testserver",
        # Tests log in and submit far faster than people: limits are tested on their own.
        **{f"DAIBAN_LIMITS_{kind.upper()}": "100000" for kind in LIMITED},
        **extra,
    }


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """SQLite: one migrated file, copied for each test. PostgreSQL: a fresh schema, once."""
    import asyncio

    if ON_POSTGRES:

        async def reset() -> None:
            if PG_URL != SHARED_PG_URL:
                await _create_database(make_url(PG_URL).database or "")
            settings = make_settings(tmp_path_factory.mktemp("pg"), PG_URL)
            db = Database(settings)
            await db.run_write(lambda s: s.execute(text("DROP SCHEMA public CASCADE")))
            await db.run_write(lambda s: s.execute(text("CREATE SCHEMA public")))
            await migrate.upgrade(db)
            await db.dispose()

        asyncio.run(reset())
        return None
    folder = tmp_path_factory.mktemp("template")
    path = folder / "template.sqlite3"

    async def build() -> None:
        db = Database(make_settings(folder, f"sqlite+aiosqlite:///{path}"))
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(build())
    with sqlite3.connect(path) as conn:  # fold the WAL into the file so one copy is whole
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


async def _create_database(name: str) -> None:
    """The worker's own database, made through the shared one if it is not there yet."""
    import asyncpg

    shared = make_url(SHARED_PG_URL).set(drivername="postgresql")
    conn = await asyncpg.connect(shared.render_as_string(hide_password=False))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@asynccontextmanager
async def empty_database(folder: Path, name: str) -> AsyncIterator[str]:
    """The URL of a database with nothing in it: a new SQLite file in `folder`, or on
    PostgreSQL a new database beside this process's (dropped afterwards)."""
    if not ON_POSTGRES:
        yield f"sqlite+aiosqlite:///{folder / name}.sqlite3"
        return
    mine = make_url(PG_URL)
    database = f"{mine.database}_{name}"
    admin = mine.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(*statements: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(admin)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    drop = f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'
    await run(drop, f'CREATE DATABASE "{database}"')
    try:
        yield mine.set(database=database).render_as_string(hide_password=False)
    finally:
        await run(drop)


@pytest.fixture
def database_url(migrated_template: Path | None, tmp_path: Path) -> str:
    if migrated_template is None:
        return PG_URL
    target = tmp_path / "daiban.sqlite3"
    shutil.copyfile(migrated_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var", database_url)


class Clock:
    """Injected time: starts at a fixed instant and moves only when a test says so."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai


@pytest.fixture
async def ctx(settings: Settings, clock: Clock) -> AsyncIterator[Context]:
    context = Context.build(settings)
    context.now = clock
    await context.store.ensure_ready()
    if ON_POSTGRES:
        await truncate_all(context)
    yield context
    await context.aclose()


async def truncate_all(context: Context) -> None:
    """PostgreSQL: one schema for the session, emptied before each test."""
    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    await context.db.run_write(
        lambda s: s.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    )


@pytest.fixture
async def demo(ctx: Context) -> None:
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))


@asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app over real ASGI in the test's own event loop, so requests truly run at once.

    The context is handed to create_app, so no lifespan is needed (the scheduler is off).
    """
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def storage_env(backend: str, request: pytest.FixtureRequest, bucket: str) -> dict[str, str]:
    """Settings for the object store a test runs on: MinIO's client against the moto S3
    server (the `s3_endpoint` fixture), or the local store behind the test's own app."""
    if backend == "minio":
        return {
            "DAIBAN_STORAGE_BACKEND": "minio",
            "DAIBAN_STORAGE_MINIO_ENDPOINT": request.getfixturevalue("s3_endpoint"),
            "DAIBAN_STORAGE_MINIO_ACCESS_KEY": "test-access",
            "DAIBAN_STORAGE_MINIO_SECRET_KEY": "test-secret",
            "DAIBAN_STORAGE_MINIO_BUCKET": bucket,
        }
    return {"DAIBAN_STORAGE_PUBLIC_URL": "http://testserver"}


@asynccontextmanager
async def demo_service(
    settings: Settings, clock: Callable[[], datetime]
) -> AsyncIterator[tuple[Context, httpx.AsyncClient, httpx.AsyncClient]]:
    """The demo district served by an app of these settings: its context, a client of the
    app, and a plain client for the storage's own URLs."""
    ctx = Context.build(settings)
    ctx.now = clock
    await ctx.store.ensure_ready()
    if ON_POSTGRES:
        await truncate_all(ctx)
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))
    async with serve(create_app(settings, ctx=ctx)) as client, httpx.AsyncClient() as outside:
        yield ctx, client, outside
    await ctx.aclose()


@pytest.fixture
async def client(ctx: Context, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_of(settings, ctx) as app, serve(app) as test_client:
        yield test_client


# Building the app costs about half a second (Litestar copies and inspects every handler),
# which most tests would pay. A process keeps the apps it has built, one for each shape of
# settings (settings that differ only in the test's own folder and database are one shape),
# and serves a test from the app of its shape: the test's context in its state, nothing else
# there, and the rate limits' counts emptied. One app serving test after test is what it
# does in service; no two tests hold one app at once.
_APPS: OrderedDict[bytes, Litestar] = OrderedDict()
_APPS_KEPT = 4


@asynccontextmanager
async def app_of(settings: Settings, ctx: Context) -> AsyncIterator[Litestar]:
    if settings.limits.redis_url:  # the Redis client belongs to the event loop that made it
        yield create_app(settings, ctx=ctx)
        return
    replace = msgspec.structs.replace
    shape = msgspec.json.encode(
        replace(
            settings,
            core=replace(settings.core, var_dir=""),
            database=replace(settings.database, url=""),
        )
    )
    app = _APPS.pop(shape, None)
    if app is None:
        app = create_app(settings, ctx=ctx)
    else:
        app.state.clear()
        app.state.ctx = ctx
        for store in (STORE, PAGE_STORE):
            await app.stores.get(store).delete_all()
    try:
        yield app
    finally:
        _APPS[shape] = app
        while len(_APPS) > _APPS_KEPT:
            _APPS.popitem(last=False)


Login = Callable[[str], Any]


@pytest.fixture
def login(client: httpx.AsyncClient) -> Callable[[str], Any]:
    """`headers = await login("agent1a")`: the Authorization header of a demo person."""

    async def _login(handle: str) -> dict[str, str]:
        response = await client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['accessToken']}"}

    return _login


@pytest.fixture
def sqlite_only() -> Iterator[None]:
    if ON_POSTGRES:
        pytest.skip("checks the SQLite file itself; the PostgreSQL run checks the rows instead")
    yield
