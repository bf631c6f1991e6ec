"""The caller's own profile: every role reads it; residents fill in theirs."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.params import JSONBody

from app.accounts import service
from app.accounts.views import MeView
from mini_program_api.deps import Caller, Ctx, DbSession, require_login, require_role
from mini_program_api.schemas import PhoneCodeInput, ProfileInput


class MeController(Controller):
    path = "/me"
    tags = ["resident 群众"]
    guards = [require_login]

    @get(summary="我的资料 (身份证号、手机号均已脱敏)")
    async def me(self, db_session: DbSession, ctx: Ctx, principal: Caller) -> MeView:
        return await service.me(db_session, ctx, principal)

    @patch(guards=[require_role("resident")], summary="填写或修改我的资料")
    async def update(
        self, data: JSONBody[ProfileInput], db_session: DbSession, ctx: Ctx, principal: Caller
    ) -> MeView:
        change = service.ProfileChange(
            name=data.name, village_id=data.village_id, phone=data.phone, id_number=data.id_number
        )
        return await service.update_profile(db_session, ctx, principal, change)

    @post(
        "/phone",
        status_code=200,
        guards=[require_role("resident")],
        summary="用微信手机号快速验证填写手机号",
    )
    async def phone(
        self, data: JSONBody[PhoneCodeInput], db_session: DbSession, ctx: Ctx, principal: Caller
    ) -> MeView:
        phone = await ctx.wechat.phone_number(data.code)
        return await service.phone_from_wechat(db_session, ctx, principal, phone)
