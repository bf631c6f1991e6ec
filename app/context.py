"""What every service and job needs beyond a session: settings, keys, clients, the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import anyio

from app.clock import utcnow
from app.db import Database
from app.security.pii import PiiCipher, cipher_for
from app.security.revocations import Revocations
from app.security.tokens import AccessTokens
from app.settings import Settings, Template
from app.storage_factory import build_store
from app.wechat import WeChat, build_wechat
from storage.base import ObjectStore


@dataclass
class Context:
    settings: Settings
    db: Database
    cipher: PiiCipher
    tokens: AccessTokens
    wechat: WeChat
    store: ObjectStore
    revocations: Revocations
    now: Callable[[], datetime] = field(default=utcnow)
    _verification_limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)
    # Small per-process caches of rarely changing data (the working calendar, guide versions).
    caches: dict[str, Any] = field(default_factory=dict, repr=False)
    # An ordinary stop (SIGTERM) has begun: jobs start no new work and finish what is in
    # hand; `running` holds the job runs under way (app/job_runs.py), to wait for them.
    stopping: bool = False
    running: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)

    def today(self) -> date:
        """The business date now, in the configured zone."""
        return self.now().astimezone(self.settings.zone).date()

    def templates(self) -> dict[str, Template]:
        """The subscription templates by notification kind (parsed once)."""
        found: dict[str, Template] | None = self.caches.get("templates")
        if found is None:
            found = self.caches["templates"] = self.settings.templates()
        return found

    def verification_limiter(self) -> anyio.CapacityLimiter:
        """Decoding a big photo takes ~300 MB: at most two at a time per process."""
        if self._verification_limiter is None:
            self._verification_limiter = anyio.CapacityLimiter(2)
        return self._verification_limiter

    @classmethod
    def build(
        cls, settings: Settings, *, wechat: WeChat | None = None, store: ObjectStore | None = None
    ) -> Context:
        db = Database(settings)
        return cls(
            settings=settings,
            db=db,
            cipher=cipher_for(settings),
            tokens=AccessTokens(
                settings.security.secret_key, settings.security.access_token_ttl_seconds
            ),
            wechat=wechat or build_wechat(settings.wechat),
            store=store or build_store(settings),
            revocations=Revocations(
                db, settings.security.access_token_ttl_seconds, Path(settings.core.var_dir)
            ),
        )

    async def aclose(self) -> None:
        await self.revocations.aclose()
        await self.wechat.aclose()
        await self.db.dispose()
