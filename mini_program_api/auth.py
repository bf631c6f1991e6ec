"""Login with WeChat, refresh-token rotation, logout, and redeeming a staff binding code."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.params import JSONBody

from app.accounts import console, service
from app.accounts.console import SignInRequest
from app.accounts.outputs import TokenPair
from mini_program_api.deps import Caller, Ctx, require_login
from mini_program_api.limits import limit_login_account
from mini_program_api.problems import domain_error_response
from mini_program_api.schemas import (
    BindStaffInput,
    ConsoleSignInInput,
    LoginInput,
    RefreshInput,
)


class AuthController(Controller):
    path = "/auth"
    tags = ["auth 登录"]

    @post(
        "/login",
        status_code=200,
        summary="微信登录 (code2Session; 开发模式 dev:<名字>)",
        opt={"limits": ("login_address",), "errors": (400, 403, 429, 502, 503)},
    )
    async def login(
        self,
        data: JSONBody[LoginInput],
        ctx: Ctx,
        request: Request[Any, Any, Any],
    ) -> TokenPair:
        # WeChat is called before the first statement, so no transaction waits on the network.
        wx = await ctx.wechat.code_to_session(data.code)
        await limit_login_account(request, wx.openid)
        return await ctx.db.run_write(lambda s: service.login(s, ctx, wx))

    @post(
        "/refresh",
        status_code=200,
        summary="刷新登录 (refresh token 轮换)",
        opt={"limits": ("refresh_address",), "errors": (401,)},
    )
    async def refresh(self, data: JSONBody[RefreshInput], ctx: Ctx) -> Response[Any] | TokenPair:
        result = await ctx.db.run_write(lambda s: service.refresh(s, ctx, data.refresh_token))
        if result.error is not None:
            # Returned, not raised: a revoked family must be committed with the refusal.
            return domain_error_response(result.error)
        assert result.tokens is not None
        return result.tokens

    @post("/logout", status_code=204, summary="退出登录")
    async def logout(self, data: JSONBody[RefreshInput], ctx: Ctx) -> None:
        await ctx.db.run_write(lambda s: service.logout(s, ctx, data.refresh_token))

    @post(
        "/bind-staff",
        opt={"errors": (400, 409)},
        status_code=200,
        guards=[require_login],
        summary="用绑定码把当前微信绑定为工作人员账号",
    )
    async def bind_staff(
        self, data: JSONBody[BindStaffInput], ctx: Ctx, principal: Caller
    ) -> TokenPair:
        return await ctx.db.run_write(lambda s: service.bind_staff(s, ctx, principal, data.code))

    @post(
        "/console/scan",
        opt={"errors": (403, 404)},
        status_code=200,
        guards=[require_login],
        summary="扫码登录工作台 (一): 读出电脑上的二维码, 返回该登录请求来自何处, 供确认",
    )
    async def scan_console_sign_in(
        self, data: JSONBody[ConsoleSignInInput], ctx: Ctx, principal: Caller
    ) -> SignInRequest:
        return await ctx.db.run_write(lambda s: console.scan_sign_in(s, ctx, principal, data.code))

    @post(
        "/console/confirm",
        opt={"errors": (403, 404)},
        status_code=204,
        guards=[require_login],
        summary="扫码登录工作台 (二): 调度员或管理员在手机上确认, 电脑随即登录",
    )
    async def confirm_console_sign_in(
        self, data: JSONBody[ConsoleSignInInput], ctx: Ctx, principal: Caller
    ) -> None:
        await ctx.db.run_write(lambda s: console.confirm_sign_in(s, ctx, principal, data.code))
