"""Public endpoints: the region tree and a village's agents (挂牌上岗), no login needed."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from app.accounts import staff
from app.accounts.views import AgentCard
from app.regions.service import RegionNode, region_tree
from mini_program_api.deps import Ctx, DbSession


class PublicController(Controller):
    tags = ["public 公开"]

    @get("/regions", summary="区域树: 区县 → 乡镇(街道) → 村(社区)")
    async def regions(self, db_session: DbSession) -> list[RegionNode]:
        return await region_tree(db_session)

    @get("/villages/{village_id:int}/agents", summary="本村代办员公示卡片")
    async def village_agents(
        self, village_id: FromPath[int], db_session: DbSession, ctx: Ctx
    ) -> list[AgentCard]:
        return await staff.village_agents(db_session, ctx, village_id)
