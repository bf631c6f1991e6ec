"""Public endpoints: the region tree and a village's agents (挂牌上岗), no login needed."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from app.accounts import staff
from app.accounts.outputs import AgentCard
from app.regions.service import RegionNode, region_tree
from mini_program_api.deps import Ctx


class PublicController(Controller):
    tags = ["public 公开"]

    @get("/regions", summary="区域树: 区县 → 乡镇(街道) → 村(社区)")
    async def regions(self, ctx: Ctx) -> list[RegionNode]:
        return await ctx.db.run_read(region_tree)

    @get("/villages/{village_id:int}/agents", summary="本村代办员公示卡片")
    async def village_agents(self, village_id: FromPath[int], ctx: Ctx) -> list[AgentCard]:
        return await ctx.db.run_read(lambda s: staff.village_agents(s, ctx, village_id))
