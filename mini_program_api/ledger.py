"""The ledger over HTTP: figures, monthly ledger files, order exports, the audit log."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter

from app import audit, errors
from app.ledger import files as ledger_files
from app.ledger.export import ExportRequest, export_orders
from app.ledger.figures import Figures, Filters, figures
from app.ledger.files import LedgerFile
from app.orders.states import OrderStatus
from mini_program_api.deps import Caller, Ctx
from mini_program_api.params import ActorId, AgentId, Cursor, ItemCode, Period, VillageId
from mini_program_api.schemas import Input


class BuildInput(Input):
    month: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}$")]  # 2026-11


async def _export(ctx: Ctx, principal: Caller, request: ExportRequest) -> Response[bytes]:
    data = await export_orders(ctx, principal, request)
    return _xlsx(data, f"办件清单_{request.start}_{request.end}.xlsx")


def _xlsx(data: bytes, name: str) -> Response[bytes]:
    return Response(
        content=data,
        media_type=ledger_files.XLSX,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "no-store",
        },
    )


class LedgerController(Controller):
    """The dispatcher's town or the admin's district."""

    @get("/stats", summary="办件统计: 受理、办结、按期办结率、用时、补正率、渠道、满意率等")
    async def stats(
        self,
        ctx: Ctx,
        principal: Caller,
        period: Period,
        village_id: VillageId = None,
        agent_id: AgentId = None,
        item_code: ItemCode = None,
    ) -> Figures:
        filters = Filters(village_id=village_id, agent_id=agent_id, item_code=item_code)
        return await ctx.db.run_long_read(lambda s: figures(s, ctx, principal, *period, filters))

    @get("/ledgers", summary="月度台账 (村级报表与镇汇总), 附限时下载链接")
    async def ledgers(self, ctx: Ctx, principal: Caller) -> list[LedgerFile]:
        return await ledger_files.list_ledgers(ctx, principal)

    @get(
        "/orders/export",
        summary="导出办件清单 (xlsx, 身份证号和手机号已脱敏)",
        opt={"media_types": (ledger_files.XLSX,)},
    )
    async def export(
        self,
        ctx: Ctx,
        principal: Caller,
        period: Period,
        status: FromQuery[OrderStatus | None] = None,
        village_id: VillageId = None,
        agent_id: AgentId = None,
        item_code: ItemCode = None,
    ) -> Response[bytes]:
        filters = Filters(village_id=village_id, agent_id=agent_id, item_code=item_code)
        return await _export(ctx, principal, ExportRequest(*period, filters, status))


class AdminLedgerController(LedgerController):
    @get(
        "/orders/export-unmasked",
        opt={"media_types": (ledger_files.XLSX,)},
        summary="导出未脱敏的办件清单 (须写明用途, 记入审计日志)",
    )
    async def export_unmasked(
        self,
        ctx: Ctx,
        principal: Caller,
        period: Period,
        purpose: Annotated[str, QueryParameter(min_length=1, max_length=200)],
        status: FromQuery[OrderStatus | None] = None,
        village_id: VillageId = None,
        agent_id: AgentId = None,
        item_code: ItemCode = None,
    ) -> Response[bytes]:
        filters = Filters(village_id=village_id, agent_id=agent_id, item_code=item_code)
        request = ExportRequest(*period, filters, status, unmasked=True, purpose=purpose)
        return await _export(ctx, principal, request)

    @post(
        "/ledgers/build",
        status_code=200,
        summary="补建某月缺少的台账 (已有的不变); failed 列出未能生成的村镇及原因, 修复后可再补建",
    )
    async def build(
        self, data: JSONBody[BuildInput], ctx: Ctx, principal: Caller
    ) -> ledger_files.LedgerBuild:
        month = ledger_files.month_of(data.month)
        outcome = await ledger_files.build_recorded(
            ctx, month, worker=f"admin:{principal.account_id}"
        )
        if outcome is None:
            raise errors.ServiceUnavailable("台账生成失败,请稍后再试 (原因见定时任务运行记录)")
        return outcome

    @get("/audit", summary="审计日志: 个人信息的查看与导出, 事项、人员、日历、派单设置的修改")
    async def audit_log(
        self,
        ctx: Ctx,
        principal: Caller,
        action: Annotated[str | None, QueryParameter(max_length=40)] = None,
        actor_id: ActorId = None,
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> list[audit.AuditView]:
        return await ctx.db.run_read(
            lambda s: audit.entries(
                s, principal, action=action, actor_id=actor_id, cursor=cursor, limit=limit
            )
        )
