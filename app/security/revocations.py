"""Access tokens end with their login, at once.

Access tokens are stateless and live for `access_token_ttl_seconds` (15 minutes). When a login
ends (logout, a reused refresh token, a staff account disabled or re-bound, a login over the
per-account cap), the access tokens already issued to it must stop working on the next request.

Each process keeps the logins ended within the last access-token lifetime (an older one cannot
matter: every token issued to it has expired), with why, and reloads them when they change:
- the process that ends a login marks its set stale right after the commit;
- other processes learn of it from a signal sent with the commit: on SQLite a stamp file
  beside the database, touched after the commit (one stat() per request); on PostgreSQL a
  NOTIFY in the revoking transaction, heard on a LISTEN connection each API process keeps;
- and at least every RELOAD_SECONDS whatever happens, so a lost signal heals itself.
A request costs a set look-up and, on SQLite, the stat; a reload is one indexed query.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db import after_commit
from app.models import RefreshToken

if TYPE_CHECKING:
    from app.db import Database

log = logging.getLogger("daiban.security")

CHANNEL = "daiban_revocations"
RELOAD_SECONDS = 30.0
LISTENER_RETRY_SECONDS = 5.0


class Revocations:
    def __init__(self, db: Database, ttl_seconds: int, var_dir: Path) -> None:
        self._db = db
        self._ttl = timedelta(seconds=ttl_seconds + 60)  # and a minute for clock skew
        self._ended: dict[str, str] = {}  # login id -> why it ended
        self._loaded_at = -RELOAD_SECONDS  # monotonic time of the last load
        # Signals heard, and how many of them the set in hand has seen: a signal that comes
        # while a load runs leaves the set stale, whichever of two loads ends last.
        self._signals = 1
        self._loaded_signals = 0
        self._stamp_path = _stamp_path(db, var_dir) if db.is_sqlite else None
        self._stamp: tuple[int, int] | None = None
        self._listener: Any = None  # asyncpg connection (PostgreSQL)
        self._listener_tried = -LISTENER_RETRY_SECONDS

    async def ended(self, login_id: str, now: datetime) -> str | None:
        """Why the login an access token was issued to has ended, or None if it goes on."""
        if await self._needs_reload():
            await self._reload(now)
        return self._ended.get(login_id)

    def announce(self, session: Session) -> None:
        """Call in the transaction that ends logins: after its commit every process reloads
        (PostgreSQL delivers the NOTIFY with the commit)."""
        after_commit(session, self._after_commit)
        if not self._db.is_sqlite:
            session.execute(text(f"NOTIFY {CHANNEL}"))

    def _after_commit(self) -> None:
        self._signals += 1
        if self._stamp_path is not None:
            try:
                self._stamp_path.touch()
                now = time.time_ns()
                os.utime(self._stamp_path, ns=(now, now))
            except OSError:
                log.exception("could not touch the revocation stamp %s", self._stamp_path)

    async def _needs_reload(self) -> bool:
        if self._stamp_path is None and (self._listener is None or self._listener.is_closed()):
            await self._listen()  # a new listener marks the set stale: it heard nothing yet
            if self._listener is None:
                return True  # no one listens: every request reads the database
        if self._signals != self._loaded_signals:
            return True
        if time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            return True
        if self._stamp_path is not None:
            return self._read_stamp() != self._stamp
        return False

    def _read_stamp(self) -> tuple[int, int] | None:
        assert self._stamp_path is not None
        try:
            st = self._stamp_path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ctime_ns

    async def _reload(self, now: datetime) -> None:
        signals = self._signals
        stamp = self._read_stamp() if self._stamp_path is not None else None
        since = now - self._ttl

        def load(session: Session) -> dict[str, str]:
            rows = session.execute(
                select(RefreshToken.family_id, RefreshToken.revoked_reason)
                .where(RefreshToken.revoked_at > since)
                .distinct()
            )
            return {family: reason or "logout" for family, reason in rows}

        ended = await self._db.run_read(load)
        if signals >= self._loaded_signals:  # not older than the set in hand
            self._ended, self._loaded_signals = ended, signals
            self._stamp, self._loaded_at = stamp, time.monotonic()

    async def _listen(self) -> None:
        if time.monotonic() - self._listener_tried < LISTENER_RETRY_SECONDS:
            return
        self._listener_tried = time.monotonic()
        import asyncpg

        url = self._db.url.set(drivername="postgresql")
        try:
            connection = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=5)
            await connection.add_listener(CHANNEL, self._notified)
        except Exception:
            log.warning("revocations: no LISTEN connection; reading the database per request")
            self._listener = None
            return
        connection.add_termination_listener(self._lost)
        self._listener = connection
        self._signals += 1  # whatever was missed while no one listened

    def _notified(self, *_: Any) -> None:
        self._signals += 1

    def _lost(self, *_: Any) -> None:
        self._signals += 1
        self._listener = None

    async def aclose(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        self._listener = None


def _stamp_path(db: Database, var_dir: Path) -> Path:
    database = db.url.database or ""
    if database and database != ":memory:":
        return Path(f"{database}.revocations")
    return var_dir / "revocations.stamp"
