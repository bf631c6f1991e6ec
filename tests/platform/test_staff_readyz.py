"""Readiness: /readyz answers 503 with a stable code when the database is behind or gone.

A fresh SQLite file per test, whatever DAIBAN_DATABASE_URL says: the shared PostgreSQL
schema of the run must stay at head for every other test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy.orm import Session

from app import migrate
from app.asgi import create_app
from app.context import Context
from app.db import Database
from tests.conftest import make_settings, serve


async def _readyz(var_dir: Path, database_url: str) -> Any:
    settings = make_settings(var_dir, database_url)
    ctx = Context.build(settings)
    try:
        async with serve(create_app(settings, ctx=ctx)) as client:
            return await client.get("/readyz")
    finally:
        await ctx.aclose()


async def _migrate_to(database_url: str, var_dir: Path, revision: str) -> None:
    db = Database(make_settings(var_dir, database_url))

    def upgrade(session: Session) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = session.connection()
        command.upgrade(config, revision)

    await db.run_write(upgrade)
    await db.dispose()


async def test_readyz_is_503_while_migrations_are_pending(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    await _migrate_to(url, tmp_path / "var", "0004")
    response = await _readyz(tmp_path / "var", url)
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "migrations_pending"
    assert "0004" in body["detail"] and str(migrate.head_revision()) in body["detail"]
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_readyz_turns_ready_once_the_database_is_migrated(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    await _migrate_to(url, tmp_path / "var", "0004")
    await _migrate_to(url, tmp_path / "var", "head")
    response = await _readyz(tmp_path / "var", url)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": migrate.head_revision()}


async def test_readyz_is_503_when_the_database_is_empty(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    response = await _readyz(tmp_path / "var", url)
    assert response.status_code == 503
    assert response.json()["code"] == "migrations_pending"


async def test_readyz_is_503_when_the_database_cannot_be_opened(tmp_path: Path):
    (tmp_path / "a-folder.sqlite3").mkdir()  # SQLite cannot open a directory as a database
    url = f"sqlite+aiosqlite:///{tmp_path / 'a-folder.sqlite3'}"
    response = await _readyz(tmp_path / "var", url)
    assert response.status_code == 503
    assert response.json()["code"] == "database_unreachable"
