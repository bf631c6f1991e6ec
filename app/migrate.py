"""Alembic driven from code: upgrade, current revision, and new revisions for developers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from app.db import Database, take_turns

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(db: Database, then: Callable[[Session], Any] | None = None) -> None:
    """Bring the schema to the newest revision, then run `then` (a check of the data, say),
    in one write transaction: on PostgreSQL under an advisory lock, on SQLite through the
    writer thread (`BEGIN IMMEDIATE`), so that two services starting at once take turns."""

    def work(session: Session) -> None:
        # Services started at once on one database migrate one after the other; the later
        # ones find the schema current.
        take_turns(session, "daiban:migrate")
        _run(session, lambda cfg: command.upgrade(cfg, "head"))
        if then is not None:
            then(session)

    await db.run_write(work)


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
