"""Alembic driven from code: upgrade, current revision, and new revisions for developers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from app.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision, in one write transaction (on SQLite through
    the writer thread, so it waits its turn like any other write)."""
    await db.run_write(lambda session: _run(session, lambda cfg: command.upgrade(cfg, "head")))


async def autogenerate(db: Database, message: str) -> None:
    await db.run_write(
        lambda session: _run(
            session, lambda cfg: command.revision(cfg, message=message, autogenerate=True)
        )
    )


async def current_revision(db: Database) -> str | None:
    return await db.run_read(
        lambda session: MigrationContext.configure(session.connection()).get_current_revision()
    )


def _run(session: Session, action: Callable[[Config], Any]) -> None:
    config = alembic_config()
    config.attributes["connection"] = session.connection()
    action(config)
