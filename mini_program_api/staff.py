"""The agent's and the dispatcher's routers."""

from __future__ import annotations

from litestar import Router, get

from app.accounts import staff
from app.accounts.outputs import AgentCard, StaffView
from app.district.readiness import Readiness, readiness
from mini_program_api import ratings as rating_routes
from mini_program_api.catalogue import dispatch_enablements
from mini_program_api.deps import Caller, Ctx, require_role
from mini_program_api.dispatch import AGENT_ROUTES, DISPATCHER_ROUTES
from mini_program_api.ledger import LedgerController
from mini_program_api.moves import AgentMoves, DispatcherMoves
from mini_program_api.orders import AgentOrderController, DispatchOrderController


@get("/station", summary="我所在便民服务站(或乡镇便民服务中心)的代办员")
async def my_station(ctx: Ctx, principal: Caller) -> list[AgentCard]:
    return await ctx.db.run_read(lambda s: staff.posted_agents(s, ctx, principal.region_id or 0))


@get("/agents", summary="本镇代办员及在岗状态")
async def town_agents(ctx: Ctx, principal: Caller) -> list[StaffView]:
    return await ctx.db.run_read(lambda s: staff.town_agents(s, ctx, principal))


@get("/readiness", summary="本镇八有达标情况 (与管理员所见同一计算)")
async def town_readiness(ctx: Ctx, principal: Caller) -> Readiness:
    return await ctx.db.run_long_read(lambda s: readiness(s, ctx, principal))


agent_router = Router(
    path="/agent",
    route_handlers=[
        my_station,
        *AGENT_ROUTES,
        *rating_routes.AGENT_ROUTES,
        AgentOrderController,
        AgentMoves,
    ],
    guards=[require_role("agent")],
    tags=["agent 代办员"],
)

dispatch_router = Router(
    path="/dispatch",
    route_handlers=[
        town_agents,
        town_readiness,
        dispatch_enablements,
        *DISPATCHER_ROUTES,
        *rating_routes.DISPATCHER_ROUTES,
        LedgerController,
        DispatchOrderController,
        DispatcherMoves,
    ],
    guards=[require_role("dispatcher")],
    tags=["dispatcher 调度员"],
)
