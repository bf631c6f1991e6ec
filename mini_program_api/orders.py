"""Orders over HTTP: the resident's, the agent's and the dispatcher's routes, and the calendar."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.context import Context
from app.downloads import download_headers
from app.orders import entered, entrustment, lookup, moves, progress, queries, slip, submission
from app.orders.calendar import CalendarView, OverrideDay, calendar_year, enter_calendar_year
from app.orders.entrustment import EntrustmentView
from app.orders.lookup import FoundOrder
from app.orders.outputs import OrderDetail, OrderPage
from app.orders.states import OrderStatus
from app.security.tokens import Principal
from mini_program_api.deps import Caller, Ctx, require_role
from mini_program_api.params import AgentId, Cursor, IdempotencyKey, Limit, VillageId
from mini_program_api.schemas import (
    MULTILINE,
    CalendarYearInput,
    EnteredOrderInput,
    ExplanationInput,
    GreenChannelInput,
    Id,
    Input,
    OrderSearchInput,
    ProgressInput,
    SignEntrustmentInput,
    SubmitOrderInput,
)


async def _detail(ctx: Context, principal: Principal, order_id: int) -> OrderDetail:
    return await ctx.db.run_read(lambda s: queries.order_detail(s, ctx, principal, order_id))


SLIP_SUMMARY = (
    "受理单 PDF (办结回交后为回执): layout=a4 办公打印机, layout=receipt 80mm 小票;"
    " 受理前 409 slip_not_issued; 二维码打开公开的办理进度页"
)
SLIP_OPT = {"media_types": (slip.PDF,), "errors": (409,)}
SlipLayout = Literal["a4", "receipt"]


async def _slip(
    ctx: Context, principal: Principal, order_id: int, layout: SlipLayout
) -> Response[bytes]:
    data, name = await slip.slip_pdf(ctx, principal, order_id, layout)
    return Response(
        content=data,
        media_type=slip.PDF,
        headers=download_headers(name, inline=True),
    )


def _submit_input(
    data: SubmitOrderInput, key: str, entrustment: list[int] | None = None
) -> submission.SubmitInput:
    return submission.SubmitInput(
        item_code=data.item_code,
        materials=data.materials,
        note=data.note,
        green_channel=data.green_channel,
        home_visit=data.home_visit,
        appointment_at=data.appointment_at,
        idempotency_key=key,
        entrustment_upload_ids=entrustment,
        voice_note_upload_ids=list(data.voice_note_upload_ids) or None,
        sign_entrustment=data.sign_entrustment,
        station_id=data.station_id if entrustment is None else None,
    )


async def _submit(
    ctx: Context, principal: Principal, work: Callable[[Session], submission.Submitted]
) -> OrderDetail:
    # A new order's answer is built in the write's own transaction, from what was written
    # (a second, read transaction for it cost more than building it). A retry's answer is
    # the order as it is now, read after the write.
    def answer(session: Session) -> tuple[int, OrderDetail | None]:
        submitted = work(session)
        if submitted.values is None:
            return submitted.order_id, None
        return submitted.order_id, queries.new_order_detail(session, ctx, principal, submitted)

    try:
        order_id, detail = await ctx.db.run_write(answer)
    except IntegrityError:
        # The same key raced in from another process (PostgreSQL); run again, and the
        # idempotency check answers with that order (or the conflict if bodies differ).
        order_id, detail = await ctx.db.run_write(answer)
    if detail is not None:
        return detail
    return await ctx.db.run_read(lambda s: queries.order_detail(s, ctx, principal, order_id))


ENTRUSTMENT_SUMMARY = (
    "委托书: 按办件生成的委托书文字 (委托人、受托代办员及服务站、事项、期限、日期), 供签署前阅读;"
    " 已签署的给出签署时的文字、时间和 PDF 文件"
)


async def _entrustment(ctx: Context, principal: Principal, order_id: int) -> EntrustmentView:
    return await ctx.db.run_read(lambda s: entrustment.view(s, ctx, principal, order_id))


class ResidentOrderController(Controller):
    path = "/orders"
    tags = ["resident 群众"]
    guards = [require_role("resident")]

    @post(
        summary="一键委托 (Idempotency-Key 头必填: 弱网重试只会得到同一份办件)",
        opt={"limits": ("orders_account",)},
    )
    async def submit(
        self,
        data: JSONBody[SubmitOrderInput],
        ctx: Ctx,
        principal: Caller,
        idempotency_key: IdempotencyKey,
    ) -> OrderDetail:
        request = _submit_input(data, idempotency_key)
        return await _submit(
            ctx, principal, lambda s: submission.submit(s, ctx, principal, request)
        )

    @get(summary="我的办件 (新的在前)")
    async def mine(
        self,
        ctx: Ctx,
        principal: Caller,
        status: FromQuery[OrderStatus | None] = None,
        cursor: Cursor = None,
        limit: FromQuery[Limit] = 20,
    ) -> OrderPage:
        return await ctx.db.run_read(
            lambda s: queries.list_orders(
                s, ctx, principal, status=status, cursor=cursor, limit=limit
            )
        )

    @get("/{order_id:int}", summary="办件详情: 材料清单、受理单、全过程记录、下一步")
    async def detail(self, order_id: FromPath[int], ctx: Ctx, principal: Caller) -> OrderDetail:
        return await _detail(ctx, principal, order_id)

    @get("/{order_id:int}/slip.pdf", summary=SLIP_SUMMARY, opt=SLIP_OPT)
    async def slip_pdf(
        self,
        order_id: FromPath[int],
        ctx: Ctx,
        principal: Caller,
        layout: FromQuery[SlipLayout] = "a4",
    ) -> Response[bytes]:
        return await _slip(ctx, principal, order_id, layout)

    @get("/{order_id:int}/entrustment", summary=ENTRUSTMENT_SUMMARY)
    async def entrustment(
        self, order_id: FromPath[int], ctx: Ctx, principal: Caller
    ) -> EntrustmentView:
        return await _entrustment(ctx, principal, order_id)

    @post(
        "/{order_id:int}/entrustment/sign",
        status_code=200,
        opt={"errors": (409, 422, 503)},
        summary=(
            "在手机上签署委托书: 上传手写签名 (PNG, 用途 entrustment) 后提交其编号;"
            " 生成带签名和文字校验码的 PDF, 作为办件的委托书。派单后、受理前可签, 只能签一次"
        ),
    )
    async def sign_entrustment(
        self,
        order_id: FromPath[int],
        data: JSONBody[SignEntrustmentInput],
        ctx: Ctx,
        principal: Caller,
    ) -> EntrustmentView:
        return await entrustment.sign(ctx, principal, order_id, data.signature_upload_id)


class AgentOrderController(Controller):
    path = "/orders"

    @post(
        summary="代为委托: 为来电或到站的群众录入办件 (Idempotency-Key 头必填), 由录入人承办",
        opt={"limits": ("orders_account",)},
    )
    async def enter(
        self,
        data: JSONBody[EnteredOrderInput],
        ctx: Ctx,
        principal: Caller,
        idempotency_key: IdempotencyKey,
    ) -> OrderDetail:
        request = _submit_input(data, idempotency_key, data.entrustment_upload_ids)
        person = entered.Person(
            name=data.resident.name,
            id_number=data.resident.id_number,
            phone=data.resident.phone,
            village_id=data.resident.village_id,
        )
        return await _submit(
            ctx, principal, lambda s: entered.enter_order(s, ctx, principal, person, request)
        )

    @get(summary="派给我的办件 (sort=due: 办理中的按到期先后)")
    async def mine(
        self,
        ctx: Ctx,
        principal: Caller,
        status: FromQuery[OrderStatus | None] = None,
        sort: FromQuery[Literal["newest", "due"]] = "newest",
        cursor: Cursor = None,
        limit: FromQuery[Limit] = 20,
    ) -> OrderPage:
        return await ctx.db.run_read(
            lambda s: queries.list_orders(
                s,
                ctx,
                principal,
                status=status,
                cursor=cursor,
                limit=limit,
                due_first=sort == "due",
            )
        )

    @get("/{order_id:int}", summary="办件详情")
    async def detail(self, order_id: FromPath[int], ctx: Ctx, principal: Caller) -> OrderDetail:
        return await _detail(ctx, principal, order_id)

    @get("/{order_id:int}/slip.pdf", summary=SLIP_SUMMARY + " (只限承办的代办员)", opt=SLIP_OPT)
    async def slip_pdf(
        self,
        order_id: FromPath[int],
        ctx: Ctx,
        principal: Caller,
        layout: FromQuery[SlipLayout] = "a4",
    ) -> Response[bytes]:
        return await _slip(ctx, principal, order_id, layout)

    @get("/{order_id:int}/entrustment", summary=ENTRUSTMENT_SUMMARY + " (只限承办的代办员)")
    async def entrustment(
        self, order_id: FromPath[int], ctx: Ctx, principal: Caller
    ) -> EntrustmentView:
        return await _entrustment(ctx, principal, order_id)

    @post("/{order_id:int}/explain-delay", status_code=200, summary="填写延期说明")
    async def explain_delay(
        self,
        order_id: FromPath[int],
        data: JSONBody[ExplanationInput],
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        await ctx.db.run_write(
            lambda s: moves.explain_delay(s, ctx, principal, order_id, data.explanation)
        )
        return await _detail(ctx, principal, order_id)

    @post(
        "/{order_id:int}/progress",
        status_code=200,
        summary="上报件、联办件: 记录办理进度 (报送须附回执; 联办部门未参与须说明原因)",
    )
    async def progress(
        self,
        order_id: FromPath[int],
        data: JSONBody[ProgressInput],
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        step = progress.ProgressInput(
            step=data.step,
            on=data.on,
            department=data.department,
            office=data.office,
            note=data.note,
            receipt_upload_ids=data.receipt_upload_ids,
        )
        await ctx.db.run_write(
            lambda s: progress.record_progress(s, ctx, principal, order_id, step)
        )
        return await _detail(ctx, principal, order_id)

    @post(
        "/{order_id:int}/green-channel",
        status_code=200,
        summary="绿色通道: 确认或取消 (须说明原因)",
    )
    async def green_channel(
        self,
        order_id: FromPath[int],
        data: JSONBody[GreenChannelInput],
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        await ctx.db.run_write(
            lambda s: moves.decide_green_channel(
                s, ctx, principal, order_id, data.grant, data.reason
            )
        )
        return await _detail(ctx, principal, order_id)


class ReassignInput(Input):
    agent_id: Id
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, extra=MULTILINE)]


async def search_orders(
    data: OrderSearchInput, ctx: Context, principal: Principal
) -> list[FoundOrder]:
    """The dispatcher's (their town) and the admin's (their district) search."""
    return await ctx.db.run_write(  # a search by person is audited
        lambda s: lookup.find_orders(
            s, ctx, principal, by=data.by, value=data.value, purpose=data.purpose
        )
    )


SEARCH_SUMMARY = (
    "查找办件: 按编号, 或按群众的姓名、身份证号、手机号 (按人查找须写明用途, 记入审计日志;"
    " 身份证号和手机号以加密摘要比对, 不解密)"
)


class DispatchOrderController(Controller):
    path = "/orders"

    @post("/search", status_code=200, summary=SEARCH_SUMMARY)
    async def search(
        self, data: JSONBody[OrderSearchInput], ctx: Ctx, principal: Caller
    ) -> list[FoundOrder]:
        return await search_orders(data, ctx, principal)

    @get(summary="本镇办件 (可按村、状态、代办员、是否超期筛选)")
    async def town(
        self,
        ctx: Ctx,
        principal: Caller,
        status: FromQuery[OrderStatus | None] = None,
        village_id: VillageId = None,
        agent_id: AgentId = None,
        overdue: FromQuery[bool | None] = None,
        cursor: Cursor = None,
        limit: FromQuery[Limit] = 20,
    ) -> OrderPage:
        return await ctx.db.run_read(
            lambda s: queries.list_orders(
                s,
                ctx,
                principal,
                status=status,
                village_id=village_id,
                agent_id=agent_id,
                overdue=overdue,
                cursor=cursor,
                limit=limit,
            )
        )

    @get("/{order_id:int}", summary="办件详情")
    async def detail(self, order_id: FromPath[int], ctx: Ctx, principal: Caller) -> OrderDetail:
        return await _detail(ctx, principal, order_id)

    @get("/{order_id:int}/slip.pdf", summary=SLIP_SUMMARY, opt=SLIP_OPT)
    async def slip_pdf(
        self,
        order_id: FromPath[int],
        ctx: Ctx,
        principal: Caller,
        layout: FromQuery[SlipLayout] = "a4",
    ) -> Response[bytes]:
        return await _slip(ctx, principal, order_id, layout)

    @post("/{order_id:int}/reassign", status_code=200, summary="改派给本镇另一位代办员")
    async def reassign(
        self,
        order_id: FromPath[int],
        data: JSONBody[ReassignInput],
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        await ctx.db.run_write(
            lambda s: moves.reassign_order(s, ctx, principal, order_id, data.agent_id, data.reason)
        )
        return await _detail(ctx, principal, order_id)


class CalendarController(Controller):
    path = "/calendar"

    @get("/{year:int}", summary="某年的节假日调整 (国务院安排或更正)")
    async def read(self, year: FromPath[int], ctx: Ctx) -> CalendarView:
        return await ctx.db.run_read(lambda s: calendar_year(s, ctx, year))

    @put("/{year:int}", summary="录入某年的放假和调休安排 (complete=true 表示已完整录入)")
    async def write(
        self, year: FromPath[int], data: JSONBody[CalendarYearInput], ctx: Ctx, principal: Caller
    ) -> CalendarView:
        days = [OverrideDay(day=d.day, is_workday=d.is_workday, note=d.note) for d in data.days]
        return await ctx.db.run_write(
            lambda s: enter_calendar_year(s, ctx, principal, year, days, data.complete)
        )


@post("/orders/search", status_code=200, summary=SEARCH_SUMMARY)
async def admin_search_orders(
    data: JSONBody[OrderSearchInput], ctx: Ctx, principal: Caller
) -> list[FoundOrder]:
    return await search_orders(data, ctx, principal)
