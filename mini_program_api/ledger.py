"""The ledger over HTTP: figures, monthly ledger files, order exports, the audit log."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app import audit, errors
from app.downloads import download_headers
from app.ledger import files as ledger_files
from app.ledger.export import ExportRequest, export_orders
from app.ledger.figures import Figures, Filters, figures
from app.ledger.files import LedgerFile
from app.orders.states import OrderStatus
from mini_program_api.deps import Caller, Ctx
from mini_program_api.params import ActorId, AgentId, Cursor, ItemCode, Period, VillageId
from mini_program_api.schemas import MULTILINE, Input


class BuildInput(Input):
    month: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}$")]  # 2026-11


class CorrectionInput(Input):
    """Why a frozen month's ledger is made again (更正): kept on the new version, written in
    its file and in the audit log."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, extra=MULTILINE)]


async def _export(ctx: Ctx, principal: Caller, request: ExportRequest) -> Response[bytes]:
    data = await export_orders(ctx, principal, request)
    return _xlsx(data, f"办件清单_{request.start}_{request.end}.xlsx")


def _xlsx(data: bytes, name: str) -> Response[bytes]:
    return Response(
        content=data,
        media_type=ledger_files.XLSX,
        headers=download_headers(name),
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
        return await ctx.db.run_long_read(
            lambda s: figures(s, ctx, principal, *period, filters), may_lag=True
        )

    @get(
        "/ledgers",
        summary="月度台账 (村级报表与镇汇总), 附限时下载链接; 定稿前为未定稿 (provisional), "
        "更正后各版本并列",
    )
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
        summary="生成某月台账: 补建缺少的, 重新生成未定稿的, 过了定稿日的定稿 (已定稿的不变); "
        "failed 列出未能生成的村镇及原因, 修复后可再生成",
    )
    async def build(
        self, data: JSONBody[BuildInput], ctx: Ctx, principal: Caller
    ) -> ledger_files.LedgerBuild:
        month = ledger_files.month_of(data.month)
        outcome = await ledger_files.build_recorded(
            ctx, month, worker=f"admin:{principal.account_id}", built_by=principal.account_id
        )
        if outcome is None:
            raise errors.ServiceUnavailable("台账生成失败,请稍后再试 (原因见定时任务运行记录)")
        return outcome

    @post(
        "/ledgers/{region_id:int}/{month:str}/corrections",
        summary="更正已定稿的月度台账: 按当前数据重新生成为新版本 (须写明原因, 记入审计日志), "
        "原有版本保留",
    )
    async def correct(
        self,
        region_id: FromPath[int],
        month: FromPath[str],
        data: JSONBody[CorrectionInput],
        ctx: Ctx,
        principal: Caller,
    ) -> LedgerFile:
        return await ledger_files.correct_ledger(
            ctx, principal, region_id, ledger_files.month_of(month), data.reason
        )

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
