"""The resident's material wallet (材料夹): keep a verified document, list, use, remove."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from app.uploads import wallet
from app.uploads.wallet import UsedItem, WalletItemView
from mini_program_api.deps import Caller, Ctx, require_role
from mini_program_api.schemas import KeepInput


class WalletController(Controller):
    path = "/me/wallet"
    tags = ["resident 群众"]
    guards = [require_role("resident")]

    @get(summary="我的材料夹 (已核验的本人证件, 未过期)")
    async def list_items(self, ctx: Ctx, principal: Caller) -> list[WalletItemView]:
        return await ctx.db.run_read(lambda s: wallet.items(s, ctx, principal))

    @post(summary="把办件中已核验的证件放入材料夹 (须本人同意)")
    async def keep(self, data: JSONBody[KeepInput], ctx: Ctx, principal: Caller) -> WalletItemView:
        return await wallet.keep(
            ctx, principal, data.order_id, data.material, data.consent, data.valid_until
        )

    @post(
        "/{item_id:int}/use",
        status_code=200,
        summary="用材料夹中的证件: 返回新的文件编号, 作为该材料提交",
    )
    async def use(self, item_id: FromPath[int], ctx: Ctx, principal: Caller) -> UsedItem:
        return await wallet.use(ctx, principal, item_id)

    @delete("/{item_id:int}", summary="从材料夹删除 (文件随即删除)")
    async def remove(self, item_id: FromPath[int], ctx: Ctx, principal: Caller) -> None:
        await wallet.remove(ctx, principal, item_id)
