"""What each move of an order tells whom, and which reminders it sets, in the move's own
transaction (the outbox rule: a committed move has its messages, a failed one has none)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.context import Context
from app.models import ItemVersion
from app.notifications import messages, reminders
from app.notifications.messages import OrderFacts
from app.notifications.outbox import Message, notify, town_dispatchers
from app.orders.records import AGENT_CONTACT, REGION_NAME, OrderRow
from app.orders.states import UNTAKEN
from app.security.tokens import Principal


def facts(
    ctx: Context, order: OrderRow, item: str, status: str, due_at: datetime | None
) -> OrderFacts:
    return OrderFacts(order.id, order.number, item, status, due_at, ctx.settings.zone)


def _key(kind: str, order_id: int, now: datetime) -> str:
    return f"{kind}:{order_id}:{now.timestamp():.6f}"


def send(
    session: Session, ctx: Context, recipients: list[int | None], message: Message, now: datetime
) -> None:
    people = [r for r in recipients if r is not None]
    notify(session, ctx, people, message, _key(message.kind, message.order_id or 0, now), now)


def agent_name(session: Session, agent_id: int | None) -> str | None:
    if agent_id is None:
        return None
    row = session.execute(AGENT_CONTACT, {"id": agent_id}).one_or_none()
    return row.name if row else None


def village_name(session: Session, ctx: Context, village_id: int) -> str | None:
    """Region names do not change once written: kept for the life of the process."""
    names: dict[int, str | None] = ctx.caches.setdefault("region_names", {})
    if village_id not in names:
        names[village_id] = session.scalar(REGION_NAME, {"id": village_id})
    return names[village_id]


def new_assignment(
    session: Session,
    ctx: Context,
    order: OrderRow,
    item: str,
    agent_id: int,
    now: datetime,
) -> None:
    """An agent got the order (dispatch, re-assignment, hand-over): tell them and watch that
    they take it."""
    o = facts(ctx, order, item, "assigned", None)
    marks = [
        name
        for name, flag in (
            ("绿色通道", order.green_channel),
            ("上门", order.home_visit),
            ("预约", order.appointment_at),
        )
        if flag
    ]
    message = messages.assigned(o, village_name(session, ctx, order.village_id), marks)
    send(session, ctx, [agent_id], message, now)
    if order.status in UNTAKEN:
        reminders.after_assignment(session, ctx, order.id, now)


def entered_pool(
    session: Session, ctx: Context, order: OrderRow, item: str, why: str, now: datetime
) -> None:
    o = facts(ctx, order, item, "submitted", None)
    message = messages.pool(o, village_name(session, ctx, order.village_id), why)
    send(session, ctx, list(town_dispatchers(session, ctx, order.town_id)), message, now)


def after_move(
    session: Session,
    ctx: Context,
    principal: Principal | None,
    order: OrderRow,
    version: ItemVersion,
    action: str,
    to_status: str,
    values: dict[str, Any],
    note: str | None,
    data: dict[str, Any] | None,
    now: datetime,
) -> None:
    """`order` is the row before the move; `values` what the move wrote."""
    due_at = values.get("due_at", order.due_at)
    o = facts(ctx, order, version.name, to_status, due_at)
    resident, agent = order.resident_id, values.get("agent_id", order.agent_id)
    by = principal.role if principal else "system"
    if action == "assign":
        new_assignment(session, ctx, order, version.name, values["agent_id"], now)
    elif action == "decline":
        message = messages.declined(o, agent_name(session, order.agent_id), note)
        send(session, ctx, list(town_dispatchers(session, ctx, order.town_id)), message, now)
    elif action == "accept":
        send(session, ctx, [resident], messages.accepted(o, now), now)
        reminders.after_clock_start(session, ctx, order.id, due_at, now)
    elif action == "request_supplement":
        missing = (data or {}).get("missing", [])
        send(session, ctx, [resident], messages.supplement_requested(o, missing), now)
        reminders.after_supplement_request(session, ctx, order.id, now)
    elif action in ("supplement", "resume"):
        if order.status == "supplement_required":
            text = "的补正材料已提交,请审核。"
            message = messages.for_agent(o, "supplemented", "材料已补正", text)
            send(session, ctx, [agent], message, now)
            return
        if by == "resident":
            message = messages.for_agent(o, "resumed", "恢复办理", "已恢复办理,请继续办理。")
            send(session, ctx, [agent], message, now)
        else:
            message = messages.with_reason(o, "resumed", "恢复办理", "已恢复办理", note)
            send(session, ctx, [resident], message, now)
        if order.overdue_at is None:  # the clock runs again towards a new due time
            reminders.after_clock_start(session, ctx, order.id, due_at, now)
    elif action == "reject":
        message = messages.with_reason(o, "rejected", "不予受理", "不予受理", note)
        send(session, ctx, [resident], message, now)
    elif action == "hold":
        message = messages.with_reason(o, "held", "办理中止", "暂停办理", note)
        send(session, ctx, [resident], message, now)
    elif action == "complete":
        message = messages.completed(o, values.get("outcome"), note)
        send(session, ctx, [resident], message, now)
    elif action == "deliver":
        message = messages.delivered(o, values.get("delivery_method"))
        send(session, ctx, [resident], message, now)
        invite_rating(session, ctx, o, resident, now)
    elif action == "confirm_receipt":
        message = messages.for_agent(o, "received", "群众已确认收到", "的办理结果群众已确认收到。")
        send(session, ctx, [agent], message, now)
        invite_rating(session, ctx, o, resident, now)
    elif action == "cancel":
        message = messages.for_agent(o, "cancelled", "群众撤回委托", "已被群众撤回。")
        send(session, ctx, [agent], message, now)
    elif action == "terminate":
        message = messages.with_reason(o, "terminated", "终止办理", "已终止办理", note)
        send(session, ctx, [resident] + ([agent] if by == "dispatcher" else []), message, now)
    elif action == "expire":
        message = messages.expired(o, ctx.settings.scheduler.supplement_expire_days)
        send(session, ctx, [resident, agent], message, now)


def invite_rating(
    session: Session, ctx: Context, o: OrderFacts, resident: int, now: datetime
) -> None:
    """After hand-back: ask for a rating, remind after a few days, default after the window."""
    send(session, ctx, [resident], messages.rating_invite(o, ctx.settings.ratings.window_days), now)
    reminders.before_rating_default(session, ctx, o.order_id, now)
