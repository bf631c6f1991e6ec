"""The console's browser session: who is signed in (from an httpOnly cookie, checked against
its row on every request), and how errors become pages rather than problem documents."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect, Template

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
        "samesite": "lax",
    }


def client_address(request: Request[Any, Any, Any]) -> str:
    """The browser's address (X-Real-IP behind a trusted proxy), as the API counts it."""
    settings: Settings = request.app.state.ctx.settings
    peer = request.client.host if request.client else ""
    return addresses.client_address(settings)(peer, request.headers.get("x-real-ip", ""))


async def provide_user(request: Request[Any, Any, Any]) -> ConsoleUser:
    """The signed-in staff member, or ConsoleSignedOut/…Expired (the handler signs in anew)."""
    ctx: Context = request.app.state.ctx
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or len(token) > MAX_SECRET:
        raise errors.ConsoleSignedOut()
    user = await ctx.db.run_read(lambda s: console.session_user(s, ctx, token))
    if ctx.now() - user.seen_at >= console.TOUCH_EVERY:
        await ctx.db.run_write(lambda s: console.touch_session(s, ctx, user.session_id))
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
            "title": title,
            "detail": detail if detail != title else None,
            "problems": problems or [],
        },
        status_code=status,
    )


def handle_domain_error(request: Request[Any, Any, Any], exc: errors.DomainError) -> Response[Any]:
    if exc.status == 401:
        # Signed out, idle too long, or the account's logins ended: sign in anew.
        target = f"{PATH}/sign-in?why={exc.code}"
        response: Response[Any]
        if _is_htmx(request):
            response = Response(content=None, status_code=200, headers={"HX-Redirect": target})
        else:
            response = Redirect(path=target, status_code=303)
        settings: Settings = request.app.state.ctx.settings
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
