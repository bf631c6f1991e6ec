"""The service catalogue: public search and guides; admin edits, versions, enablement, files."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, Router, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app.catalogue import administration, enablement, outputs, queries, service
from app.catalogue.document import XLSX, ItemSpec, encoded
from app.downloads import download_headers
from mini_program_api.deps import Caller, Ctx
from mini_program_api.params import Limit, RegionId, VillageId
from mini_program_api.schemas import MAX_ID, Id, Input

# Query parameters are camelCase on the wire, like the bodies.


class CatalogueController(Controller):
    path = "/catalogue"
    tags = ["catalogue 事项清单"]

    @get("/items", summary="搜索事项 (名称、俗称、部门; 按本村可办过滤)")
    async def items(
        self,
        ctx: Ctx,
        q: Annotated[str | None, QueryParameter(max_length=50, description="搜索词")] = None,
        village_id: VillageId = None,
        department: Annotated[str | None, QueryParameter(max_length=30)] = None,
        kind: FromQuery[Literal["immediate", "promised", "joint", "escalated"] | None] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=100)] = None,
        limit: Limit = 20,
    ) -> outputs.ItemPage:
        return await ctx.db.run_read(
            lambda s: queries.search(
                s,
                q=q,
                village_id=village_id,
                department=department,
                kind=kind,
                cursor=cursor,
                limit=limit,
            )
        )

    @get("/items/{code:str}", summary="办事指南 (材料清单、时限、收费、能否线上委托)")
    async def guide(
        self, code: FromPath[str], ctx: Ctx, village_id: VillageId = None
    ) -> outputs.Guide:
        return await ctx.db.run_read(lambda s: queries.guide(s, code, village_id=village_id))

    @get("/popular", summary="本村常办: 近 90 天本村委托最多的事项 (还没有办件时为空)")
    async def popular(
        self,
        ctx: Ctx,
        village_id: Annotated[int, QueryParameter(name="villageId", ge=1, le=MAX_ID)],
        limit: Limit = 10,
    ) -> list[outputs.PopularItem]:
        return await ctx.db.run_read(lambda s: queries.popular(s, ctx, village_id, limit))

    @get("/departments", summary="部门列表")
    async def departments(self, ctx: Ctx) -> list[outputs.DepartmentView]:
        return await ctx.db.run_read(queries.departments)


class EnablementInput(Input):
    region_id: Id
    item_codes: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=20)]],
        msgspec.Meta(min_length=1, max_length=500),
    ]
    enabled: bool


async def _region_items(ctx: Ctx, principal: Caller, region_id: int) -> outputs.RegionItems:
    return await ctx.db.run_read(lambda s: enablement.region_items(s, principal, region_id))


async def _set_enabled(
    ctx: Ctx, principal: Caller, data: EnablementInput
) -> outputs.EnablementResult:
    return await ctx.db.run_write(
        lambda s: administration.switch_items(
            s, ctx, principal, data.region_id, data.item_codes, data.enabled
        )
    )


@get("/", summary="本镇或本村已开通的事项")
async def list_enablements(region_id: RegionId, ctx: Ctx, principal: Caller) -> outputs.RegionItems:
    return await _region_items(ctx, principal, region_id)


@put(
    "/",
    summary="开通或关闭某镇/村的可办事项 (关闭乡镇时其下各村一并关闭; 村开通须乡镇已开通)",
)
async def set_enablements(
    data: JSONBody[EnablementInput], ctx: Ctx, principal: Caller
) -> outputs.EnablementResult:
    return await _set_enabled(ctx, principal, data)


# The dispatcher's pair; the admin router has the same two in its controller below.
dispatch_enablements = Router(
    path="/catalogue/enablements",
    route_handlers=[list_enablements, set_enablements],
    tags=["dispatcher 调度员"],
)


class CatalogueAdminController(Controller):
    path = "/catalogue"

    @post("/items", summary="新建事项 (格式同导入文件), 在本区按 enabled 开通")
    async def create(self, data: JSONBody[ItemSpec], ctx: Ctx, principal: Caller) -> outputs.Guide:
        return await ctx.db.run_write(lambda s: administration.create_item(s, ctx, principal, data))

    @put("/items/{code:str}", summary="修改事项: 生成新版本, 已提交的办件不受影响")
    async def edit(
        self,
        code: FromPath[str],
        data: JSONBody[ItemSpec],
        ctx: Ctx,
        principal: Caller,
    ) -> outputs.Guide:
        return await ctx.db.run_write(
            lambda s: administration.edit_item(s, ctx, principal, code, data)
        )

    @post("/items/{code:str}/retire", status_code=204, summary="停用事项")
    async def retire(self, code: FromPath[str], ctx: Ctx, principal: Caller) -> None:
        await ctx.db.run_write(lambda s: administration.retire_item(s, ctx, principal, code))

    @post("/items/{code:str}/restore", status_code=200, summary="恢复已停用的事项")
    async def restore(self, code: FromPath[str], ctx: Ctx, principal: Caller) -> outputs.Guide:
        return await ctx.db.run_write(
            lambda s: administration.restore_item(s, ctx, principal, code)
        )

    @get("/items/{code:str}/versions", summary="事项的历史版本")
    async def versions(self, code: FromPath[str], ctx: Ctx) -> list[outputs.VersionView]:
        return await ctx.db.run_read(lambda s: service.versions(s, code))

    @get("/enablements", summary="某镇/村已开通的事项")
    async def list_enablements(
        self, region_id: RegionId, ctx: Ctx, principal: Caller
    ) -> outputs.RegionItems:
        return await _region_items(ctx, principal, region_id)

    @put(
        "/enablements",
        summary="开通或关闭某镇/村的可办事项 (关闭乡镇时其下各村一并关闭; 村开通须乡镇已开通)",
    )
    async def enablements(
        self, data: JSONBody[EnablementInput], ctx: Ctx, principal: Caller
    ) -> outputs.EnablementResult:
        return await _set_enabled(ctx, principal, data)

    @post(
        "/import",
        status_code=200,
        request_max_body_size=20 * 1024 * 1024,
        summary="导入事项清单 (请求体为 YAML 或 xlsx 文件; 全部成功或全部不导入)",
    )
    async def import_file(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        principal: Caller,
        format: FromQuery[Literal["yaml", "xlsx"]] = "yaml",
    ) -> outputs.ImportResult:
        body = await request.body()
        # A file with problems (DocumentInvalid) answers 422 listing each (problems.py).
        document = await service.read_file(ctx.db, body, f"upload.{format}")
        return await ctx.db.run_write(
            lambda s: administration.import_items(s, ctx, principal, document, format)
        )

    @get(
        "/export",
        summary="导出事项清单 (xlsx 或 YAML, 可原样导入)",
        opt={"media_types": (XLSX, "application/yaml")},
    )
    async def export_file(
        self, ctx: Ctx, format: FromQuery[Literal["yaml", "xlsx"]] = "xlsx"
    ) -> Response[bytes]:
        document = await ctx.db.run_long_read(service.export_document)
        data, media_type = encoded(document, format)
        return Response(
            data,
            media_type=media_type,
            headers=download_headers(f"catalogue.{format}"),
        )
