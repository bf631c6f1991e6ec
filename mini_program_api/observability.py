"""Request ids, security headers and access logs: one line per request, never a body, so
no personal data."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import request_id_var

log = logging.getLogger("daiban.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_counter = itertools.count(1)
_prefix: tuple[int, str] = (0, "")


def new_request_id() -> str:
    """A random per-process prefix and a counter: unique, and without a getrandom() system
    call per request (it cost ~40 µs here, half a bare request)."""
    global _prefix
    pid = os.getpid()
    if _prefix[0] != pid:  # first call in this (possibly forked) worker
        _prefix = (pid, secrets.token_hex(4))
    return f"{_prefix[1]}{next(_counter):08x}"


def security_headers(public_url: str) -> Callable[[Message, Scope], Awaitable[None]]:
    """Litestar's before_send hook, so that every answer has them, a 404 for no route too:
    no type sniffing, no framing (clickjacking), no referrer leaking a signed link or an
    order id to another site; HSTS once the service is reached over HTTPS. A header the
    answer sets itself (a download's) is left as it is."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if public_url.startswith("https://"):
        headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def add(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            own = list(message.get("headers", []))
            names = {bytes(name).lower() for name, _ in own}
            message["headers"] = [*own, *((n, v) for n, v in headers if n not in names)]

    return add


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            # The caller as authentication found it (an account id and role, never who they
            # are), and the route's template, which groups /orders/17 with /orders/18.
            principal = scope.get("state", {}).get("principal")
            log.info(
                "request",
                extra={
                    "requestId": request_id,
                    "method": scope.get("method"),
                    "route": scope.get("path_template"),
                    "path": scope.get("path"),
                    "status": status["code"],
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "userId": principal.account_id if principal else None,
                    "role": principal.role if principal else None,
                },
            )
            request_id_var.reset(token)

    return middleware
