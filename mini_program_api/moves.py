"""The moves of an order over HTTP: one operation per action and role, each with the body
that action reads (a client generator names them: residentCancel, agentTake, ...). The rules
are the transition table's (app/orders/states.py), checked in app/orders/moves.py."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from sqlalchemy.orm import Session

from app.context import Context
from app.orders import moves, queries
from app.orders.views import OrderDetail
from app.security.tokens import Principal
from mini_program_api.deps import Caller, Ctx, require_role
from mini_program_api.schemas import (
    AssignInput,
    CompletionInput,
    DeliveryInput,
    Input,
    MoveInput,
    ReasonInput,
    SupplementInput,
    SupplementRequestInput,
)


async def act(
    ctx: Context, principal: Principal, order_id: int, action: str, data: Input | None
) -> OrderDetail:
    """One move in one write transaction; the answer is the order as it now is."""
    fields: dict[str, Any] = msgspec.structs.asdict(data) if data is not None else {}
    if "missing" in fields:
        fields["missing"] = [{"code": m.code, "reason": m.reason} for m in fields["missing"]]
    payload = moves.ActionInput(**fields)

    def work(session: Session) -> OrderDetail:
        moves.act(session, ctx, principal, order_id, action, payload)
        return queries.order_detail(session, ctx, principal, order_id, scoped=False)

    return await ctx.db.run_write(work)


OrderId = FromPath[int]
OptionalNote = JSONBody[MoveInput | None]  # the body may be empty


class ResidentMoves(Controller):
    path = "/orders/{order_id:int}"
    tags = ["resident 群众"]
    guards = [require_role("resident")]

    @post("/supplement", status_code=200, operation_id="residentSupplement", summary="补正材料")
    async def supplement(
        self, order_id: OrderId, data: JSONBody[SupplementInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "supplement", data)

    @post("/resume", status_code=200, operation_id="residentResume", summary="恢复办理 (中止后)")
    async def resume(
        self,
        order_id: OrderId,
        ctx: Ctx,
        principal: Caller,
        data: OptionalNote = None,
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "resume", data)

    @post(
        "/confirm-receipt",
        status_code=200,
        operation_id="residentConfirmReceipt",
        summary="确认收到办理结果",
    )
    async def confirm_receipt(
        self,
        order_id: OrderId,
        ctx: Ctx,
        principal: Caller,
        data: OptionalNote = None,
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "confirm_receipt", data)

    @post("/cancel", status_code=200, operation_id="residentCancel", summary="撤回委托 (受理前)")
    async def cancel(
        self,
        order_id: OrderId,
        ctx: Ctx,
        principal: Caller,
        data: OptionalNote = None,
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "cancel", data)


class AgentMoves(Controller):
    path = "/orders/{order_id:int}"

    @post("/take", status_code=200, operation_id="agentTake", summary="接单")
    async def take(
        self,
        order_id: OrderId,
        ctx: Ctx,
        principal: Caller,
        data: OptionalNote = None,
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "take", data)

    @post(
        "/decline", status_code=200, operation_id="agentDecline", summary="退回派单池 (须说明原因)"
    )
    async def decline(
        self, order_id: OrderId, data: JSONBody[ReasonInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "decline", data)

    @post("/accept", status_code=200, operation_id="agentAccept", summary="受理: 开始计时")
    async def accept(
        self,
        order_id: OrderId,
        ctx: Ctx,
        principal: Caller,
        data: OptionalNote = None,
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "accept", data)

    @post(
        "/request-supplement",
        status_code=200,
        operation_id="agentRequestSupplement",
        summary="一次性告知: 列出全部缺少或有误的材料",
    )
    async def request_supplement(
        self,
        order_id: OrderId,
        data: JSONBody[SupplementRequestInput],
        ctx: Ctx,
        principal: Caller,
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "request_supplement", data)

    @post("/reject", status_code=200, operation_id="agentReject", summary="不予受理 (须说明原因)")
    async def reject(
        self, order_id: OrderId, data: JSONBody[ReasonInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "reject", data)

    @post(
        "/hold",
        status_code=200,
        operation_id="agentHold",
        summary="中止办理 (须说明原因, 计时暂停)",
    )
    async def hold(
        self, order_id: OrderId, data: JSONBody[ReasonInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "hold", data)

    @post("/resume", status_code=200, operation_id="agentResume", summary="恢复办理")
    async def resume(
        self,
        order_id: OrderId,
        ctx: Ctx,
        principal: Caller,
        data: OptionalNote = None,
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "resume", data)

    @post("/supplement", status_code=200, operation_id="agentSupplement", summary="代群众补正材料")
    async def supplement(
        self, order_id: OrderId, data: JSONBody[SupplementInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "supplement", data)

    @post("/complete", status_code=200, operation_id="agentComplete", summary="办结: 准予或不予")
    async def complete(
        self, order_id: OrderId, data: JSONBody[CompletionInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "complete", data)

    @post("/deliver", status_code=200, operation_id="agentDeliver", summary="回交办理结果")
    async def deliver(
        self, order_id: OrderId, data: JSONBody[DeliveryInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "deliver", data)

    @post(
        "/terminate",
        status_code=200,
        operation_id="agentTerminate",
        summary="终止办理 (须说明原因)",
    )
    async def terminate(
        self, order_id: OrderId, data: JSONBody[ReasonInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "terminate", data)


class DispatcherMoves(Controller):
    path = "/orders/{order_id:int}"

    @post("/assign", status_code=200, operation_id="dispatcherAssign", summary="派单给本镇代办员")
    async def assign(
        self, order_id: OrderId, data: JSONBody[AssignInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "assign", data)

    @post(
        "/terminate",
        status_code=200,
        operation_id="dispatcherTerminate",
        summary="终止办理 (须说明原因)",
    )
    async def terminate(
        self, order_id: OrderId, data: JSONBody[ReasonInput], ctx: Ctx, principal: Caller
    ) -> OrderDetail:
        return await act(ctx, principal, order_id, "terminate", data)
