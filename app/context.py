"""What every service and job needs beyond a session: settings, keys, clients, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from app.clock import utcnow
from app.db import Database
from app.security.pii import PiiCipher
from app.security.tokens import AccessTokens
from app.settings import Settings
from app.wechat import WeChat, build_wechat


@dataclass
class Context:
    settings: Settings
    db: Database
    cipher: PiiCipher
    tokens: AccessTokens
    wechat: WeChat
    now: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def build(cls, settings: Settings, *, wechat: WeChat | None = None) -> Context:
        return cls(
            settings=settings,
            db=Database(settings),
            cipher=PiiCipher(settings.pii_key_ring(), settings.security.pii_hash_key),
            tokens=AccessTokens(
                settings.security.secret_key, settings.security.access_token_ttl_seconds
            ),
            wechat=wechat or build_wechat(settings.wechat),
        )

    async def aclose(self) -> None:
        await self.wechat.aclose()
        await self.db.dispose()
