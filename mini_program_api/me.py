"""The caller's own profile: every role reads it; residents fill in theirs."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.params import FromQuery, JSONBody

from app.accounts import service
from app.accounts.outputs import MeView
from app.notifications import inbox
from app.retention.accounts import ClosedAccount, close_own_account
from mini_program_api.deps import Caller, Ctx, require_login, require_role
from mini_program_api.params import Cursor, Limit
from mini_program_api.schemas import (
    CloseAccountInput,
    MarkReadInput,
    PhoneCodeInput,
    ProfileInput,
    SubscribeInput,
)


class MeController(Controller):
    path = "/me"
    tags = ["resident 群众"]
    guards = [require_login]

    @get(summary="我的资料 (身份证号、手机号均已脱敏)")
    async def me(self, ctx: Ctx, principal: Caller) -> MeView:
        return await ctx.db.run_read(lambda s: service.me(s, ctx, principal))

    @patch(guards=[require_role("resident")], summary="填写或修改我的资料")
    async def update(self, data: JSONBody[ProfileInput], ctx: Ctx, principal: Caller) -> MeView:
        change = service.ProfileChange(
            name=data.name, village_id=data.village_id, phone=data.phone, id_number=data.id_number
        )
        return await ctx.db.run_write(lambda s: service.update_profile(s, ctx, principal, change))

    @post(
        "/phone",
        status_code=200,
        guards=[require_role("resident")],
        summary="用微信手机号快速验证填写手机号",
    )
    async def phone(self, data: JSONBody[PhoneCodeInput], ctx: Ctx, principal: Caller) -> MeView:
        phone = await ctx.wechat.phone_number(data.code)
        return await ctx.db.run_write(lambda s: service.phone_from_wechat(s, ctx, principal, phone))

    @post(
        "/close",
        status_code=200,
        guards=[require_role("resident")],
        summary="注销账号: 删除本人信息, 办件匿名保留 (有未办结办件时不能注销)",
    )
    async def close(
        self, data: JSONBody[CloseAccountInput], ctx: Ctx, principal: Caller
    ) -> ClosedAccount:
        return await close_own_account(ctx, principal)

    @get("/messages", summary="消息中心 (新的在前), 含未读数")
    async def messages(
        self,
        ctx: Ctx,
        principal: Caller,
        unread: FromQuery[bool] = False,
        cursor: Cursor = None,
        limit: Limit = 20,
    ) -> inbox.Inbox:
        return await ctx.db.run_read(
            lambda s: inbox.inbox(s, principal, unread_only=unread, cursor=cursor, limit=limit)
        )

    @post("/messages/read", status_code=200, summary="标为已读 (ids 或 all=true)")
    async def mark_read(
        self, data: JSONBody[MarkReadInput], ctx: Ctx, principal: Caller
    ) -> inbox.Inbox:
        ids = None if data.all else data.ids
        await ctx.db.run_write(lambda s: inbox.mark_read(s, ctx, principal, ids))
        return await ctx.db.run_read(
            lambda s: inbox.inbox(s, principal, unread_only=False, cursor=None, limit=20)
        )

    @get("/subscriptions", summary="可发送的订阅消息次数 (按模板)")
    async def subscriptions(self, ctx: Ctx, principal: Caller) -> inbox.Credits:
        return await ctx.db.run_read(lambda s: inbox.credits(s, principal))

    @post(
        "/subscriptions",
        status_code=200,
        summary="上报用户在 wx.requestSubscribeMessage 中同意的模板 (每次同意可发一条)",
    )
    async def subscribe(
        self, data: JSONBody[SubscribeInput], ctx: Ctx, principal: Caller
    ) -> inbox.Credits:
        return await ctx.db.run_write(
            lambda s: inbox.add_subscriptions(s, ctx, principal, data.template_ids)
        )
