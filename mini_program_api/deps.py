"""Request-scoped pieces: the context, the caller, and role guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from app import errors
from app.context import Context
from app.security.tokens import Principal, TokenError

# Handler parameters say explicitly that they are injected (Litestar 3 drops inference).
Ctx: TypeAlias = NamedDependency[Context]
Caller: TypeAlias = NamedDependency[Principal]


def provide_ctx(state: State) -> Context:
    ctx: Context = state.ctx
    return ctx


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller of a bearer token, once per request: 401 when it is missing, bad, expired,
    or its login has ended (logout, account disabled, re-bound, ...)."""
    cached = connection.scope.get("state", {}).get("principal")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise errors.Unauthenticated()
    ctx: Context = connection.app.state.ctx
    now = ctx.now()
    try:
        principal = ctx.tokens.verify(token.strip(), now)
    except TokenError as exc:
        raise (
            errors.TokenExpired() if exc.reason == "expired" else errors.TokenInvalid()
        ) from None
    ended = await ctx.revocations.ended(principal.login_id, now)
    if ended is not None:
        raise (errors.AccountDisabled() if ended == "disabled" else errors.TokenRevoked())
    connection.scope.setdefault("state", {})["principal"] = principal
    return principal


async def provide_principal(request: Request[Any, Any, Any], ctx: Ctx) -> Principal:
    # Taking `ctx` orders the two dependencies one after the other: Litestar resolves
    # independent ones concurrently in a task group, which costs more than both together.
    del ctx
    return await authenticate(request)


def require_role(
    *roles: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """Guard: the caller is logged in and holds one of `roles`, else 401 or 403.

    Guards are coroutines because Litestar runs a plain-function guard in a worker thread,
    a thread hop per request for a check that takes microseconds."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await authenticate(connection)
        if principal.role not in roles:
            raise errors.Forbidden()

    guard.__name__ = f"require_{'_or_'.join(roles)}"
    return guard


async def require_login(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    await authenticate(connection)
