"""Signing in to the console by scanning a QR code with the mini-program (扫码登录), the
demo codes in dev mode, and signing out."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import segno
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app import errors
from app.accounts import console
from app.context import Context
from app.settings import Settings
from console.session import (
    PATH,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    client_address,
    ctx_of,
    secure_cookies,
    session_cookie,
)

# Why a browser was sent to sign in, as the page says it.
WHY = {
    "console_signed_out": "请先登录。",
    "console_session_expired": "长时间未操作，已退出，请重新登录。",
    "session_ended": "已退出登录。",
    "account_disabled": "账号已停用，请联系区管理员。",
    "session_rebound": "该账号已绑定到另一部手机，请重新扫码登录。",
    "account_closed": "账号已注销。",
}
POLL_SECONDS = 2


class DevSignInForm(msgspec.Struct, forbid_unknown_fields=False):
    code: Annotated[str, msgspec.Meta(min_length=5, max_length=40)]


def scan_url(settings: Settings, code: str) -> str:
    """What the QR code holds: a link under the service's public URL whose last part is the
    code. The mini-program's scan passes that part to /mp/v1/auth/console/scan; a phone's
    camera that opens it as a web page is told to use the mini-program."""
    return f"{settings.storage.public_url.rstrip('/')}{PATH}/q/{code}"


def _session_response(ctx: Context, token: str, request: Request[Any, Any, Any]) -> Response[Any]:
    target = f"{PATH}/"
    response: Response[Any]
    if request.headers.get("hx-request") == "true":
        response = Response(content=None, status_code=200, headers={"HX-Redirect": target})
    else:
        response = Redirect(path=target, status_code=303)
    lifetime = ctx.settings.console.session_hours * 3600
    response.set_cookie(**session_cookie(ctx.settings, token, lifetime))
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH)
    return response


class SignInController(Controller):
    path = "/sign-in"

    @get(opt={"limits": ("login_address",)}, name="console_sign_in")
    async def page(
        self, request: Request[Any, Any, Any], why: FromQuery[str | None] = None
    ) -> Template:
        ctx = ctx_of(request)
        address, browser = client_address(request), request.headers.get("user-agent")
        start = await ctx.db.run_write(lambda s: console.start_sign_in(s, ctx, address, browser))
        scan = scan_url(ctx.settings, start.code)
        qr = segno.make(scan, error="m")
        response = Template(
            template_name="sign_in.html",
            context={
                "qr_svg": qr.svg_inline(scale=5, border=2, title="扫码登录二维码"),
                "scan": scan,  # what the QR holds, also as text: the page's own tests read it
                "seconds": ctx.settings.console.sign_in_seconds,
                "poll": POLL_SECONDS,
                "why": WHY.get(why or ""),
                "dev": ctx.settings.wechat.mode == "dev",
            },
        )
        response.set_cookie(
            key=SIGN_IN_COOKIE,
            value=start.browser_secret,
            path=PATH,
            max_age=ctx.settings.console.sign_in_seconds + 60,
            httponly=True,
            secure=secure_cookies(ctx.settings),
            samesite="strict",
        )
        return response

    @get("/state")
    async def state(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Asked every few seconds by the sign-in page: waiting, scanned, expired or, once
        the phone confirms, the session itself (a redirect to the board)."""
        ctx = ctx_of(request)
        secret = request.cookies.get(SIGN_IN_COOKIE, "")
        if not secret or len(secret) > 64:
            progress = console.SignInProgress(state="expired")
        else:
            address = client_address(request)
            progress = await ctx.db.run_write(
                lambda s: console.take_sign_in(s, ctx, secret, address)
            )
        if progress.session_token is not None:
            return _session_response(ctx, progress.session_token, request)
        return Template(
            template_name="_sign_in_state.html",
            context={"state": progress.state, "scanned_by": progress.scanned_by},
        )

    @post("/dev", opt={"limits": ("login_address",)}, name="console_dev_sign_in")
    async def dev(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[DevSignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Dev mode only: the demo codes (dev:dispatcher1a, dev:admin) sign in directly."""
        ctx = ctx_of(request)
        if ctx.settings.wechat.mode != "dev":
            raise errors.NotFound()
        wx = await ctx.wechat.code_to_session(data.code.strip())
        address = client_address(request)

        def work(session: Any) -> str:
            account = console.staff_by_openid(session, wx.openid)
            return console.start_session(session, ctx, account, address, how="dev")

        token = await ctx.db.run_write(work)
        return _session_response(ctx, token, request)


@get("/q/{code:str}", name="console_scanned_by_camera")
async def scanned_by_camera(code: FromPath[str]) -> Template:
    """The QR code opened as a web page (a phone's camera, not the mini-program)."""
    del code
    return Template(template_name="scan_with_mini_program.html")


@post("/sign-out", name="console_sign_out")
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    ctx = ctx_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    if token and len(token) <= 64:
        await ctx.db.run_write(lambda s: console.end_session(s, ctx, token))
    response: Response[Any] = Redirect(path=f"{PATH}/sign-in?why=session_ended", status_code=303)
    response.set_cookie(**session_cookie(ctx.settings, None, 0))
    return response
