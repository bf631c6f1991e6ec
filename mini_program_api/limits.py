"""Limits on abuse: requests per minute by client address or by account, on the routes that
cost the most or spend a shared quota (WeChat's code2Session), answered 429 with Retry-After.

Litestar's own RateLimitMiddleware counts; one ASGI middleware on the app picks, by the
route's `opt["limits"]`, which of them a request passes through, so every other route pays a
dictionary look-up and nothing more. Counts live in a Litestar store: in process by default,
in Redis (DAIBAN_LIMITS_REDIS_URL) when several workers or servers must share them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.types import ASGIApp, Receive, Scope, Send

from app.security import addresses
from app.security.tokens import AccessTokens, TokenError
from app.settings import Settings

log = logging.getLogger("daiban.limits")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
STORE = "rate_limits"

# The kinds a route may name in opt={"limits": (...)}: (setting, counted by).
KINDS: dict[str, tuple[str, str]] = {
    "login_address": ("login_per_address", "address"),
    "refresh_address": ("refresh_per_address", "address"),
    "orders_account": ("orders_per_account", "account"),
    "complaints_account": ("complaints_per_account", "account"),
    "uploads_account": ("uploads_per_account", "account"),
}
# Counted in the handler, once WeChat has said whose login it is (limit_login_account).
LOGIN_ACCOUNT = "login_per_account"


def build_store(settings: Settings) -> Store:
    if settings.limits.redis_url:
        from litestar.stores.redis import RedisStore

        return RedisStore.with_client(url=settings.limits.redis_url, namespace="daiban_limits")
    if settings.server.workers > 1:
        log.warning(
            "rate limits are counted per worker (%d workers): set DAIBAN_LIMITS_REDIS_URL "
            "to share them",
            settings.server.workers,
        )
    return MemoryStore()


def client_address(settings: Settings) -> Callable[[Request[Any, Any, Any]], str]:
    """The client's address: the peer's, or X-Real-IP when the peer is a trusted proxy."""
    of = addresses.client_address(settings)

    def address(request: Request[Any, Any, Any]) -> str:
        peer = request.client.host if request.client else ""
        return of(peer, request.headers.get("x-real-ip", ""))

    return address


def account_of(
    tokens: AccessTokens, address: Callable[[Request[Any, Any, Any]], str]
) -> Callable[[Request[Any, Any, Any]], str]:
    """The account of the bearer token (signature checked, not its login: the guard does
    that next); requests without a good token are counted by their address, so that made-up
    tokens neither escape the count nor fill the store with keys."""

    def account(request: Request[Any, Any, Any]) -> str:
        header = request.headers.get("authorization", "")
        token = header.partition(" ")[2].strip()
        try:
            # Expiry does not matter for counting; any time before it verifies the signature.
            return str(tokens.verify(token, _EPOCH).account_id)
        except TokenError:
            return f"address:{address(request)}"

    return account


def rate_limit_middleware(settings: Settings, tokens: AccessTokens) -> Callable[[ASGIApp], ASGIApp]:
    address = client_address(settings)
    by = {"address": address, "account": account_of(tokens, address)}
    configs = {
        kind: RateLimitConfig(
            rate_limit=("minute", getattr(settings.limits, setting)),
            identifier_for_request=_prefixed(kind, by[counted_by]),
            store=STORE,
        )
        for kind, (setting, counted_by) in KINDS.items()
        if getattr(settings.limits, setting) > 0  # 0: no limit
    }

    def middleware(app: ASGIApp) -> ASGIApp:
        chains: dict[tuple[str, ...], ASGIApp] = {}
        swept_at = 0.0

        def chain(kinds: tuple[str, ...]) -> ASGIApp:
            found = chains.get(kinds)
            if found is None:
                found = app
                for kind in reversed(kinds):
                    if kind in configs:
                        found = RateLimitMiddleware(found, configs[kind])
                chains[kinds] = found
            return found

        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal swept_at
            if scope["type"] == ScopeType.HTTP:
                kinds = scope["route_handler"].opt.get("limits")
                if kinds:
                    store = scope["litestar_app"].stores.get(STORE)
                    # Counts of addresses and accounts that have gone quiet, dropped once a
                    # minute: an in-process store removes an expired count only when the
                    # same key comes back (Redis expires its own keys).
                    if isinstance(store, MemoryStore) and time.monotonic() - swept_at > 60:
                        swept_at = time.monotonic()
                        await store.delete_expired()
                    await chain(kinds)(scope, receive, send)
                    return
            await app(scope, receive, send)

        return limited

    return middleware


def _prefixed(
    kind: str, identify: Callable[[Request[Any, Any, Any]], str]
) -> Callable[[Request[Any, Any, Any]], str]:
    # One store holds every kind: the kind keeps their counts apart.
    return lambda request: f"{kind}:{identify(request)}"


async def limit_login_account(request: Request[Any, Any, Any], account: str) -> None:
    """Logins of one account per minute, counted once WeChat has said whose login it is:
    the same middleware, run on the request in hand (TooManyRequestsException when over).
    One per app, so that its lock orders concurrent logins of one account."""
    app = request.app
    limiter = app.state.get(_LOGIN_LIMITER)
    if limiter is None:
        limit = getattr(app.state.ctx.settings.limits, LOGIN_ACCOUNT)
        if not limit:
            return
        config = RateLimitConfig(
            rate_limit=("minute", limit),
            identifier_for_request=lambda r: f"login_account:{r.scope['state'][LOGIN_ACCOUNT]}",
            store=STORE,
        )
        limiter = app.state[_LOGIN_LIMITER] = RateLimitMiddleware(_counted, config)
    request.scope.setdefault("state", {})[LOGIN_ACCOUNT] = account
    await limiter(request.scope, request.receive, _counted)


_LOGIN_LIMITER = "daiban.login_limiter"  # in the app's state


async def _counted(*_: Any) -> None:
    """The inner app (and send) of a count that needs no response."""
