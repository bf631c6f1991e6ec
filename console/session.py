"""The console's browser session: who is signed in (from an httpOnly cookie, checked against
its row on every request), and how errors become pages rather than problem documents."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from app import errors
from app.accounts import console
from app.accounts.console import ConsoleUser
from app.context import Context
from app.security import addresses
from app.settings import Settings
from app.sqlite_writer import WriterError

log = logging.getLogger("daiban.console")

PATH = "/console"
SESSION_COOKIE = "daiban_console"
# Sent by a page's automatic refresh (the board's), which does not count as activity.
POLL_HEADER = "x-console-poll"
USER_KEY = "console_user"
SIGN_IN_COOKIE = "daiban_sign_in"
# A cookie value longer than any secret we hand out is not looked up at all.
MAX_SECRET = 64
# Page titles of framework errors, as a person at the console reads them.
HTTP_TITLES = {
    400: "填写的内容有误",
    403: "您没有权限进行此操作",
    404: "没有找到这个页面",
    405: "不支持该操作",
    413: "提交的内容太大",
    429: "操作太频繁，请稍后再试",
}
CSRF_TITLE = "页面已过期，请刷新后再提交"


def page_headers(settings: Settings) -> Any:
    """Litestar's after_request hook for the console's pages: never cached (a resident shown
    in full must not outlive the page on a shared PC), and a content security policy that
    lets scripts, styles and forms come only from the service and images also from the
    object store's links."""
    images = " ".join(sorted({"'self'", "data:", *_origins(settings)}))
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )

    async def add(response: Response[Any]) -> Response[Any]:
        if "cache-control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = policy
        return response

    return add


def _origins(settings: Settings) -> list[str]:
    storage = settings.storage
    found = [storage.public_url]
    if storage.backend == "minio":
        host = storage.minio_public_endpoint or storage.minio_endpoint
        found.append(f"{'https' if storage.minio_public_secure else 'http'}://{host}")
    return [urlsplit(url)._replace(path="", query="", fragment="").geturl() for url in found]


def ctx_of(request: Request[Any, Any, Any]) -> Context:
    """The app's context, for the console's helpers that are not handlers themselves."""
    ctx: Context = request.app.state.ctx
    return ctx


def secure_cookies(settings: Settings) -> bool:
    """Cookies are `Secure` when the service is reached over HTTPS (its public URL)."""
    return settings.storage.public_url.startswith("https://")


def session_cookie(settings: Settings, token: str | None, max_age: int) -> dict[str, Any]:
    return {
        "key": SESSION_COOKIE,
        "value": token or "",
        "path": PATH,
        "max_age": max_age,
        "httponly": True,
        "secure": secure_cookies(settings),
        # Strict: a link from another site arrives signed out, so no page of the console can
        # be made to act (or to write an audited read) from outside it.
        "samesite": "strict",
    }


def client_address(request: Request[Any, Any, Any]) -> str:
    """The browser's address (X-Real-IP behind a trusted proxy), as the API counts it."""
    settings = ctx_of(request).settings
    peer = request.client.host if request.client else ""
    return addresses.client_address(settings)(peer, request.headers.get("x-real-ip", ""))


async def provide_user(request: Request[Any, Any, Any]) -> ConsoleUser:
    """The signed-in staff member, or ConsoleSignedOut/…Expired (the handler signs in anew)."""
    ctx = ctx_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or len(token) > MAX_SECRET:
        raise errors.ConsoleSignedOut()
    user = await ctx.db.run_read(lambda s: console.session_user(s, ctx, token))
    # The board's own refresh is not a person at work: an unattended PC is signed out.
    polled = request.headers.get(POLL_HEADER) == "1"
    if not polled and ctx.now() - user.seen_at >= console.TOUCH_EVERY:
        await ctx.db.run_write(lambda s: console.touch_session(s, ctx, user.session_id))
    request.scope.setdefault("state", {})[USER_KEY] = user  # for an error page's menu
    return user


async def provide_dispatcher(user: NamedDependency[ConsoleUser]) -> ConsoleUser:
    """The dispatchers' pages: an admin is sent to their own (a 403 page says so)."""
    if user.principal.role != "dispatcher":
        raise errors.Forbidden("这是镇便民服务中心调度员的页面")
    return user


async def provide_admin(user: NamedDependency[ConsoleUser]) -> ConsoleUser:
    if user.principal.role != "admin":
        raise errors.Forbidden("这是区管理员的页面")
    return user


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def error_page(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    detail: str | None = None,
    problems: list[dict[str, str]] | None = None,
) -> Response[Any]:
    return Template(
        template_name="error.html",
        context={
            "user": request.scope.get("state", {}).get(USER_KEY),
            "title": title,
            "detail": detail if detail != title else None,
            "problems": problems or [],
        },
        status_code=status,
    )


async def change_then(
    request: Request[Any, Any, Any],
    work: Callable[[Session], Any],
    done: str,
    again: Callable[[errors.DomainError], Awaitable[Response[Any]]],
) -> Response[Any]:
    """A change in one write transaction, then on to `done` (303, so a reload does not
    repeat it); or, when a rule refuses it, `again`: the page anew with the reason, nothing
    changed. A 401 or a 404 goes to the pages' own handling (sign in anew; not found)."""
    ctx = ctx_of(request)
    try:
        await ctx.db.run_write(work)
    except errors.DomainError as exc:
        if exc.status in (401, 404):
            raise
        return await again(exc)
    return Redirect(path=done, status_code=303)


def handle_domain_error(request: Request[Any, Any, Any], exc: errors.DomainError) -> Response[Any]:
    if exc.status == 401:
        # Signed out, idle too long, or the account's logins ended: sign in anew.
        target = f"{PATH}/sign-in?why={exc.code}"
        response: Response[Any]
        if _is_htmx(request):
            response = Response(content=None, status_code=200, headers={"HX-Redirect": target})
        else:
            response = Redirect(path=target, status_code=303)
        settings = ctx_of(request).settings
        response.set_cookie(**session_cookie(settings, None, 0))
        return response
    return error_page(request, exc.status, exc.title, exc.detail, exc.extra.get("errors"))


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return error_page(request, 403, CSRF_TITLE)
    if isinstance(exc, ValidationException):
        return error_page(request, 400, HTTP_TITLES[400])
    if isinstance(exc, NotAuthorizedException):
        return handle_domain_error(request, errors.ConsoleSignedOut())
    status = exc.status_code if exc.status_code in HTTP_TITLES else 400
    return error_page(request, status, HTTP_TITLES[status])


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("console page failed", exc_info=exc)
    return error_page(request, 500, "系统繁忙，请稍后再试")


def console_page_for(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, errors.DomainError):
        return handle_domain_error(request, exc)
    if isinstance(exc, HTTPException):
        return handle_http_error(request, exc)
    if isinstance(exc, errors.FileProblems | RecursionError):
        return error_page(request, 400, HTTP_TITLES[400])
    if isinstance(exc, WriterError):
        return error_page(request, 503, "系统繁忙，请稍后再试")
    return handle_unexpected(request, exc)


def pages_on_the_console(handlers: dict[Any, Any]) -> dict[Any, Any]:
    """The app's exception handlers, each answering a page instead under /console: one set
    of handlers for the app, so the most specific exception class picks it wherever the
    error was raised (a route of the console, or no route at all)."""

    def beside(api_handler: Any) -> Any:
        def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
            path = request.scope.get("path", "")
            if path == PATH or path.startswith(f"{PATH}/"):
                return console_page_for(request, exc)
            return api_handler(request, exc)  # type: ignore[no-any-return]

        return handler

    return {kind: beside(api_handler) for kind, api_handler in handlers.items()}
