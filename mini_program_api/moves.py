"""The moves of an order over HTTP: one operation per action and role, each with the body
that action reads (a client generator names them: residentCancel, agentTake, ...), made
from ROUTES, which the transition table (app/orders/states.py) is checked against. The
rules are the table's, checked in app/orders/moves.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Controller, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from sqlalchemy.orm import Session

from app.context import Context
from app.orders import moves, queries, transfer
from app.orders.outputs import OrderDetail
from app.orders.states import ALLOWED_TRANSITIONS
from app.security.tokens import Principal
from mini_program_api.deps import Caller, Ctx, require_role
from mini_program_api.schemas import (
    AssignInput,
    CompletionInput,
    DeliveryInput,
    DisputeInput,
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
        if action == "transfer":  # the move, then the dispatch at the new station
            transfer.transfer(session, ctx, principal, order_id, payload.reason)
        else:
            moves.act(session, ctx, principal, order_id, action, payload)
        return queries.order_detail(session, ctx, principal, order_id, scoped=False)

    return await ctx.db.run_write(work)


OrderId = FromPath[int]
OptionalNote = JSONBody[MoveInput | None]  # the body may be empty

# Each move a person makes over HTTP, in the docs page's order: who, the action, the body it
# reads (None: an optional note) and its summary. POST /orders/{id}/<action, dashed>, named
# <role><Action> for client generators. The pairs are the transition table's (checked below).
ROUTES: list[tuple[str, str, type[Input] | None, str]] = [
    ("resident", "supplement", SupplementInput, "补正材料"),
    ("resident", "resume", None, "恢复办理 (中止后)"),
    ("resident", "confirm_receipt", None, "确认收到办理结果"),
    ("resident", "cancel", None, "撤回委托 (受理前)"),
    ("resident", "dispute", DisputeInput, "提出异议 (回交后评价期内: 重新办理)"),
    ("agent", "take", None, "接单"),
    ("agent", "decline", ReasonInput, "退回派单池 (须说明原因)"),
    ("agent", "accept", None, "受理: 开始计时"),
    ("agent", "request_supplement", SupplementRequestInput, "一次性告知: 列出全部缺少或有误的材料"),
    ("agent", "reject", ReasonInput, "不予受理 (须说明原因)"),
    ("agent", "hold", ReasonInput, "中止办理 (须说明原因, 计时暂停)"),
    ("agent", "resume", None, "恢复办理"),
    ("agent", "supplement", SupplementInput, "代群众补正材料"),
    ("agent", "complete", CompletionInput, "办结: 准予或不予"),
    ("agent", "deliver", DeliveryInput, "回交办理结果"),
    ("agent", "terminate", ReasonInput, "终止办理 (须说明原因)"),
    ("agent", "transfer", None, "全区通办: 转户籍地便民服务站办理 (受理前)"),
    ("dispatcher", "assign", AssignInput, "派单给本镇代办员"),
    ("dispatcher", "terminate", ReasonInput, "终止办理 (须说明原因)"),
]
# Every move of the table a person may make has its route; a resident's rating has its own
# (mini_program_api/ratings.py), with the rating's body.
assert {(role, action) for role, action, *_ in ROUTES} == {
    (role, action)
    for (_, action), move in ALLOWED_TRANSITIONS.items()
    for role in move.roles
    if role != "system" and action != "rate"
}, "a move of the table without its route, or a route without its move"


def _route(role: str, action: str, body: type[Input] | None, summary: str) -> HTTPRouteHandler:
    """The operation of `role`'s `action`: the move, answered with the order as it now is."""
    if body is None:

        async def optional(
            self: Controller,
            order_id: OrderId,
            ctx: Ctx,
            principal: Caller,
            data: OptionalNote = None,
        ) -> OrderDetail:
            return await act(ctx, principal, order_id, action, data)

        handler: Callable[..., Any] = optional
    else:

        async def required(
            self: Controller, order_id: OrderId, data: Any, ctx: Ctx, principal: Caller
        ) -> OrderDetail:
            return await act(ctx, principal, order_id, action, data)

        # The body's type is the route's: given as the annotation Litestar reads.
        body_of: Any = JSONBody
        required.__annotations__ = {**required.__annotations__, "data": body_of[body]}
        handler = required
    handler.__name__ = handler.__qualname__ = action
    camel = "".join(word.capitalize() for word in action.split("_"))
    return post(
        f"/{action.replace('_', '-')}",
        status_code=200,
        operation_id=f"{role}{camel}",
        summary=summary,
    )(handler)


def _moves(role: str) -> dict[str, HTTPRouteHandler]:
    return {a: _route(role, a, body, summary) for who, a, body, summary in ROUTES if who == role}


class ResidentMoves(Controller):
    path = "/orders/{order_id:int}"
    tags = ["resident 群众"]
    guards = [require_role("resident")]


# The agent's and the dispatcher's routers (mini_program_api/staff.py) add guard and tag.
class AgentMoves(Controller):
    path = "/orders/{order_id:int}"


class DispatcherMoves(Controller):
    path = "/orders/{order_id:int}"


for _role, _controller in (
    ("resident", ResidentMoves),
    ("agent", AgentMoves),
    ("dispatcher", DispatcherMoves),
):
    for _name, _handler in _moves(_role).items():
        setattr(_controller, _name, _handler)
