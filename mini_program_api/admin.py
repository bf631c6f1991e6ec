"""Admin (district): staff accounts, their one-time binding codes and card photos; the
district's regions."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, Router, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from app.accounts import staff
from app.accounts.outputs import StaffCreated, StaffView
from app.accounts.staff_import import (
    StaffImported,
    codes_sheet,
    import_staff,
    read_staff_file,
)
from app.district.readiness import Readiness, readiness
from app.district.regions import RegionRetirement, retire_region
from app.downloads import download_headers
from app.job_runs import JobsView, jobs_view
from app.kinds import Post, StaffRole
from app.regions import service as regions
from app.regions.service import RegionView
from mini_program_api.catalogue import CatalogueAdminController
from mini_program_api.deps import Caller, Ctx, require_role
from mini_program_api.ledger import AdminLedgerController
from mini_program_api.orders import CalendarController, admin_search_orders
from mini_program_api.ratings import ADMIN_ROUTES as ADMIN_RATING_ROUTES
from mini_program_api.schemas import Id, Input, Name, StaffInput

WorkPhone = Annotated[str, msgspec.Meta(max_length=20)]
ServiceHours = Annotated[str, msgspec.Meta(max_length=100)]
Unset = msgspec.UnsetType


class StaffChangeInput(Input):
    """Only the fields present change; null clears a work phone, service hours or post."""

    name: Name | Unset = msgspec.UNSET
    work_phone: WorkPhone | Unset | None = msgspec.UNSET
    service_hours: ServiceHours | Unset | None = msgspec.UNSET
    post: Post | Unset | None = msgspec.UNSET
    disabled: bool | Unset = msgspec.UNSET
    # disabling an agent: who takes over their open orders (default: their partner on duty)
    hand_over_to: Id | None = None
    # disabling the last agent on duty of a station or centre: the station is closing
    station_closing: bool = False


class StaffPhotoInput(Input):
    upload_id: Id  # the admin's own finished upload with purpose staff_photo


RegionCode = Annotated[str, msgspec.Meta(min_length=12, max_length=12, pattern="^[0-9]{12}$")]
RegionName = Annotated[str, msgspec.Meta(min_length=1, max_length=regions.MAX_NAME)]


class RegionInput(Input):
    code: RegionCode  # 12-digit statistical division code (统计用区划代码); gives the level
    name: RegionName


class RegionRenameInput(Input):
    name: RegionName


class RegionController(Controller):
    """The district's towns and villages after setup: added, renamed, retired (撤并), each
    change audited. A file of division codes does the same in bulk (`daiban setup`)."""

    path = "/regions"

    @get(summary="本区的乡镇(街道)和村(社区), 含已撤销的")
    async def list_regions(self, ctx: Ctx, principal: Caller) -> list[RegionView]:
        return await ctx.db.run_read(lambda s: regions.district_regions(s, principal))

    @post(summary="新增乡镇(街道)或村(社区), 层级由区划代码决定; 已撤销的代码则恢复")
    async def add(self, data: JSONBody[RegionInput], ctx: Ctx, principal: Caller) -> RegionView:
        return await ctx.db.run_write(
            lambda s: regions.add_region(s, ctx, principal, data.code, data.name)
        )

    @patch("/{region_id:int}", summary="改名")
    async def rename(
        self,
        region_id: FromPath[int],
        data: JSONBody[RegionRenameInput],
        ctx: Ctx,
        principal: Caller,
    ) -> RegionView:
        return await ctx.db.run_write(
            lambda s: regions.rename_region(s, ctx, principal, region_id, data.name)
        )

    @post(
        "/{region_id:int}/retire",
        status_code=200,
        summary="撤销 (撤并): 不再可选; 已有办件照常办完, 返回仍在办的件数和在岗人员数",
    )
    async def retire(
        self, region_id: FromPath[int], ctx: Ctx, principal: Caller
    ) -> RegionRetirement:
        return await ctx.db.run_write(lambda s: retire_region(s, ctx, principal, region_id))


IMPORT_MAX_BYTES = 5 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _import_staff(
    request: Request[Any, Any, Any], ctx: Ctx, principal: Caller
) -> StaffImported:
    """A sheet with problems (StaffFileInvalid) answers 422 listing each (problems.py)."""
    sheet = await anyio.to_thread.run_sync(read_staff_file, await request.body())
    return await ctx.db.run_write(lambda s: import_staff(s, ctx, principal, sheet))


class StaffController(Controller):
    path = "/staff"

    @get(summary="本区工作人员")
    async def list_staff(
        self,
        ctx: Ctx,
        principal: Caller,
        role: FromQuery[StaffRole | None] = None,
    ) -> list[StaffView]:
        return await ctx.db.run_read(lambda s: staff.list_staff(s, ctx, principal, role))

    @post(summary="新建工作人员, 返回一次性绑定码")
    async def create(self, data: JSONBody[StaffInput], ctx: Ctx, principal: Caller) -> StaffCreated:
        new = staff.StaffInput(
            role=data.role,
            name=data.name,
            region_id=data.region_id,
            work_phone=data.work_phone,
            service_hours=data.service_hours,
            post=data.post,
        )
        return await ctx.db.run_write(lambda s: staff.create_staff(s, ctx, principal, new))

    @post(
        "/import",
        status_code=200,
        request_max_body_size=IMPORT_MAX_BYTES,
        summary="批量导入工作人员 (请求体为 xlsx 文件; 全部成功或全部不导入), 返回新人员的绑定码",
    )
    async def import_sheet(
        self, request: Request[Any, Any, Any], ctx: Ctx, principal: Caller
    ) -> StaffImported:
        return await _import_staff(request, ctx, principal)

    @post(
        "/import/codes",
        status_code=200,
        request_max_body_size=IMPORT_MAX_BYTES,
        summary="同上, 但返回新人员绑定码的 xlsx 表 (打印分发)",
        opt={"media_types": (XLSX,)},
    )
    async def import_sheet_codes(
        self, request: Request[Any, Any, Any], ctx: Ctx, principal: Caller
    ) -> Response[bytes]:
        imported = await _import_staff(request, ctx, principal)
        return Response(
            codes_sheet(imported, ctx.settings.zone),
            media_type=XLSX,
            headers=download_headers("binding-codes.xlsx"),
        )

    @post("/{staff_id:int}/binding-code", status_code=200, summary="重新生成绑定码 (换手机)")
    async def binding_code(
        self, staff_id: FromPath[int], ctx: Ctx, principal: Caller
    ) -> StaffCreated:
        return await ctx.db.run_write(
            lambda s: staff.reissue_binding_code(s, ctx, principal, staff_id)
        )

    @patch(
        "/{staff_id:int}", summary="修改工作人员资料 (姓名、值班电话、服务时间、岗位), 停用或启用"
    )
    async def update(
        self,
        staff_id: FromPath[int],
        data: JSONBody[StaffChangeInput],
        ctx: Ctx,
        principal: Caller,
    ) -> StaffView:
        change = staff.StaffChange(
            name=data.name,
            work_phone=data.work_phone,
            service_hours=data.service_hours,
            post=data.post,
            disabled=data.disabled,
            hand_over_to=data.hand_over_to,
            station_closing=data.station_closing,
        )
        return await ctx.db.run_write(
            lambda s: staff.update_staff(s, ctx, principal, staff_id, change)
        )

    @put("/{staff_id:int}/photo", summary="设置公示照片 (挂牌上岗): 先以 staff_photo 用途上传")
    async def set_photo(
        self, staff_id: FromPath[int], data: JSONBody[StaffPhotoInput], ctx: Ctx, principal: Caller
    ) -> StaffView:
        return await staff.set_staff_photo(ctx, principal, staff_id, data.upload_id)

    @delete("/{staff_id:int}/photo", status_code=200, summary="撤下公示照片")
    async def remove_photo(self, staff_id: FromPath[int], ctx: Ctx, principal: Caller) -> StaffView:
        return await staff.remove_staff_photo(ctx, principal, staff_id)


@get(
    "/readiness",
    summary="八有达标情况: 代办员、事项、绑定、订阅模板、次年日历、HTTPS, 按数据即时计算",
)
async def district_readiness(ctx: Ctx, principal: Caller) -> Readiness:
    return await ctx.db.run_long_read(lambda s: readiness(s, ctx, principal))


@get("/jobs", summary="定时任务运行记录: 各任务最近一次、最近的运行、待处理的提醒和消息")
async def job_runs(ctx: Ctx) -> JobsView:
    return await ctx.db.run_read(lambda s: jobs_view(s, ctx.now()))


admin_router = Router(
    path="/admin",
    route_handlers=[
        StaffController,
        RegionController,
        CatalogueAdminController,
        CalendarController,
        job_runs,
        district_readiness,
        admin_search_orders,
        *ADMIN_RATING_ROUTES,
        AdminLedgerController,
    ],
    guards=[require_role("admin")],
    tags=["admin 管理员"],
)
