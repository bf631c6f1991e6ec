"""Dispatch over HTTP: the town's board and rule, agents' duty and leave, hand-over."""

from __future__ import annotations

from litestar import get, patch, post, put
from litestar.params import FromPath, JSONBody

from app.dispatch import board, service
from app.dispatch.service import DutyChange, DutyView, TownRule
from mini_program_api.deps import Caller, Ctx
from mini_program_api.schemas import DutyInput, HandOverInput, TownRuleInput


def _change(data: DutyInput) -> DutyChange:
    return DutyChange(status=data.status, leave_until=data.leave_until, hand_over=data.hand_over)


@get("/duty", summary="我的在岗状态")
async def my_duty(ctx: Ctx, principal: Caller) -> DutyView:
    return await ctx.db.run_read(
        lambda s: service.duty_view(
            service.agent_in_scope(s, principal, principal.account_id), ctx.today()
        )
    )


@patch(
    "/duty",
    summary="设置在岗、离岗或请假 (至某日); handOver=true 时把在办件交给本站另一位在岗代办员",
)
async def set_my_duty(data: JSONBody[DutyInput], ctx: Ctx, principal: Caller) -> DutyView:
    change = _change(data)
    return await ctx.db.run_write(
        lambda s: service.set_duty(s, ctx, principal, principal.account_id, change)
    )


@get("/board", summary="调度台: 各状态数量、待派单池、超期与临期办件、代办员在办量")
async def dispatch_board(ctx: Ctx, principal: Caller) -> board.Board:
    return await ctx.db.run_read(lambda s: board.board(s, ctx, principal))


@get("/settings", summary="本镇派单规则")
async def town_rule(ctx: Ctx, principal: Caller) -> TownRule:
    return await ctx.db.run_read(lambda s: service.town_rule(s, principal))


@put("/settings", summary="设置本镇自动派单 (A岗→B岗→派单池) 或人工派单")
async def set_town_rule(data: JSONBody[TownRuleInput], ctx: Ctx, principal: Caller) -> TownRule:
    return await ctx.db.run_write(
        lambda s: service.set_town_rule(s, ctx, principal, data.auto_dispatch)
    )


@patch("/agents/{agent_id:int}/duty", summary="为本镇代办员设置在岗、离岗或请假")
async def set_agent_duty(
    agent_id: FromPath[int], data: JSONBody[DutyInput], ctx: Ctx, principal: Caller
) -> DutyView:
    change = _change(data)
    return await ctx.db.run_write(lambda s: service.set_duty(s, ctx, principal, agent_id, change))


@post(
    "/agents/{agent_id:int}/hand-over",
    status_code=200,
    summary="一键移交: 把该代办员的全部在办件交给本镇另一位代办员 (默认本站另一岗)",
)
async def hand_over(
    agent_id: FromPath[int], data: JSONBody[HandOverInput], ctx: Ctx, principal: Caller
) -> DutyView:
    return await ctx.db.run_write(
        lambda s: service.hand_over_to(s, ctx, principal, agent_id, data.to_agent_id, data.reason)
    )


AGENT_ROUTES = [my_duty, set_my_duty]
DISPATCHER_ROUTES = [dispatch_board, town_rule, set_town_rule, set_agent_duty, hand_over]
