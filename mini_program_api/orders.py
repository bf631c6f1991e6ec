"""Orders over HTTP: the resident's, the agent's and the dispatcher's routes, and the calendar."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from app import errors
from app.orders import queries, service
from app.orders.calendar import CalendarView, OverrideDay, calendar_year, set_calendar_year
from app.orders.views import OrderDetail, OrderPage
from app.security.tokens import Principal
from mini_program_api.deps import Caller, Ctx, DbSession, require_role
from mini_program_api.schemas import (
    CalendarYearInput,
    ExplanationInput,
    OrderActionInput,
    SubmitOrderInput,
)

Status = Literal[
    "submitted",
    "assigned",
    "reviewing",
    "supplement_required",
    "accepted",
    "on_hold",
    "completed",
    "delivered",
    "closed",
    "rejected",
    "cancelled",
]
Limit = Annotated[int, msgspec.Meta(ge=1, le=50)]
IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", max_length=80, required=False)
]

RESIDENT_ACTIONS = {"supplement", "resume", "confirm-receipt", "cancel"}
AGENT_ACTIONS = {
    "take",
    "decline",
    "accept",
    "request-supplement",
    "reject",
    "hold",
    "resume",
    "complete",
    "deliver",
    "terminate",
    "supplement",
}
DISPATCHER_ACTIONS = {"assign", "terminate"}


async def _act(
    db_session: DbSession,
    ctx: Ctx,
    principal: Principal,
    order_id: int,
    action: str,
    allowed: set[str],
    data: OrderActionInput,
) -> OrderDetail:
    if action not in allowed:
        raise errors.NotFound("没有这个操作")
    payload = service.ActionInput(
        reason=data.reason,
        agent_id=data.agent_id,
        missing=[{"code": m.code, "reason": m.reason} for m in data.missing],
        materials=data.materials,
        outcome=data.outcome,
        fees_collected_fen=data.fees_collected_fen,
        result_upload_ids=data.result_upload_ids,
        delivery_method=data.delivery_method,
    )
    await service.act(db_session, ctx, principal, order_id, action.replace("-", "_"), payload)
    return await queries.order_detail(db_session, ctx, principal, order_id)


class ResidentOrderController(Controller):
    path = "/orders"
    tags = ["resident 群众"]
    guards = [require_role("resident")]

    @post(summary="一键委托 (Idempotency-Key 头: 弱网重试只会得到同一份办件)")
    async def submit(
        self,
        data: JSONBody[SubmitOrderInput],
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> OrderDetail:
        order_id = await service.submit(
            db_session,
            ctx,
            principal,
            service.SubmitInput(
                item_code=data.item_code,
                materials=data.materials,
                note=data.note,
                green_channel=data.green_channel,
                idempotency_key=idempotency_key,
            ),
        )
        return await queries.order_detail(db_session, ctx, principal, order_id)

    @get(summary="我的办件 (新的在前)")
    async def mine(
        self,
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
        status: FromQuery[Status | None] = None,
        cursor: FromQuery[int | None] = None,
        limit: FromQuery[Limit] = 20,
    ) -> OrderPage:
        return await queries.list_orders(
            db_session, ctx, principal, status=status, cursor=cursor, limit=limit
        )

    @get("/{order_id:int}", summary="办件详情: 材料清单、受理单、全过程记录、下一步")
    async def detail(
        self, order_id: FromPath[int], db_session: DbSession, ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await queries.order_detail(db_session, ctx, principal, order_id)

    @post(
        "/{order_id:int}/{action:str}",
        status_code=200,
        summary="补正材料 supplement、恢复 resume、确认收到 confirm-receipt、撤回 cancel",
    )
    async def action(
        self,
        order_id: FromPath[int],
        action: FromPath[str],
        data: JSONBody[OrderActionInput],
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        return await _act(db_session, ctx, principal, order_id, action, RESIDENT_ACTIONS, data)


class AgentOrderController(Controller):
    path = "/orders"

    @get(summary="派给我的办件")
    async def mine(
        self,
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
        status: FromQuery[Status | None] = None,
        cursor: FromQuery[int | None] = None,
        limit: FromQuery[Limit] = 20,
    ) -> OrderPage:
        return await queries.list_orders(
            db_session, ctx, principal, status=status, cursor=cursor, limit=limit
        )

    @get("/{order_id:int}", summary="办件详情")
    async def detail(
        self, order_id: FromPath[int], db_session: DbSession, ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await queries.order_detail(db_session, ctx, principal, order_id)

    @post("/{order_id:int}/explain-delay", status_code=200, summary="填写延期说明")
    async def explain_delay(
        self,
        order_id: FromPath[int],
        data: JSONBody[ExplanationInput],
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        await service.explain_delay(db_session, ctx, principal, order_id, data.explanation)
        return await queries.order_detail(db_session, ctx, principal, order_id)

    @post(
        "/{order_id:int}/{action:str}",
        status_code=200,
        summary="接单 take、退回 decline、受理 accept、一次性告知 request-supplement、"
        "不予受理 reject、中止 hold、恢复 resume、办结 complete、回交 deliver、终止 terminate",
    )
    async def action(
        self,
        order_id: FromPath[int],
        action: FromPath[str],
        data: JSONBody[OrderActionInput],
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        return await _act(db_session, ctx, principal, order_id, action, AGENT_ACTIONS, data)


class ReassignInput(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    agent_id: int
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class DispatchOrderController(Controller):
    path = "/orders"

    @get(summary="本镇办件 (可按村、状态、代办员、是否超期筛选)")
    async def town(
        self,
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
        status: FromQuery[Status | None] = None,
        village_id: Annotated[int | None, QueryParameter(name="villageId")] = None,
        agent_id: Annotated[int | None, QueryParameter(name="agentId")] = None,
        overdue: FromQuery[bool | None] = None,
        cursor: FromQuery[int | None] = None,
        limit: FromQuery[Limit] = 20,
    ) -> OrderPage:
        return await queries.list_orders(
            db_session,
            ctx,
            principal,
            status=status,
            village_id=village_id,
            agent_id=agent_id,
            overdue=overdue,
            cursor=cursor,
            limit=limit,
        )

    @get("/{order_id:int}", summary="办件详情")
    async def detail(
        self, order_id: FromPath[int], db_session: DbSession, ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await queries.order_detail(db_session, ctx, principal, order_id)

    @post("/{order_id:int}/reassign", status_code=200, summary="改派给本镇另一位代办员")
    async def reassign(
        self,
        order_id: FromPath[int],
        data: JSONBody[ReassignInput],
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        await service.reassign(db_session, ctx, principal, order_id, data.agent_id, data.reason)
        return await queries.order_detail(db_session, ctx, principal, order_id)

    @post("/{order_id:int}/{action:str}", status_code=200, summary="派单 assign、终止 terminate")
    async def action(
        self,
        order_id: FromPath[int],
        action: FromPath[str],
        data: JSONBody[OrderActionInput],
        db_session: DbSession,
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        return await _act(db_session, ctx, principal, order_id, action, DISPATCHER_ACTIONS, data)


class CalendarController(Controller):
    path = "/calendar"

    @get("/{year:int}", summary="某年的节假日调整 (国务院安排或更正)")
    async def read(self, year: FromPath[int], db_session: DbSession, ctx: Ctx) -> CalendarView:
        return await calendar_year(db_session, ctx, year)

    @put("/{year:int}", summary="录入某年的放假和调休安排 (complete=true 表示已完整录入)")
    async def write(
        self,
        year: FromPath[int],
        data: JSONBody[CalendarYearInput],
        db_session: DbSession,
        ctx: Ctx,
    ) -> CalendarView:
        days = [OverrideDay(day=d.day, is_workday=d.is_workday, note=d.note) for d in data.days]
        return await set_calendar_year(db_session, ctx, year, days, data.complete)
