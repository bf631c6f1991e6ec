"""Reading orders: lists for each role (keyset pages) and the full detail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import Context
from app.models import Account, CatalogueItem, ItemVersion, Order, OrderEvent
from app.orders import views
from app.orders.calendar import work_calendar
from app.orders.service import order_in_scope
from app.orders.states import ACTION_NAMES, STATUS_NAMES, actions_from
from app.security.tokens import Principal

MAX_PAGE = 50


def is_overdue(order_status: str, due_at: datetime | None, now: datetime) -> bool:
    return order_status == "accepted" and due_at is not None and now >= due_at


async def list_orders(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    *,
    status: str | None,
    village_id: int | None = None,
    agent_id: int | None = None,
    overdue: bool | None = None,
    cursor: int | None,
    limit: int,
) -> views.OrderPage:
    """Newest first by id; one indexed range scan per page whatever the table's size."""
    limit = max(1, min(limit, MAX_PAGE))
    query: Select[tuple[Order, str, str]] = select(
        Order, CatalogueItem.code, CatalogueItem.name
    ).join(CatalogueItem, CatalogueItem.id == Order.item_id)
    role = principal.role
    if role == "resident":
        query = query.where(Order.resident_id == principal.account_id)
    elif role == "agent":
        query = query.where(Order.agent_id == principal.account_id)
    elif role == "dispatcher":
        query = query.where(Order.town_id == principal.region_id)
    else:
        query = query.where(Order.district_id == principal.region_id)
    if status:
        query = query.where(Order.status == status)
    if village_id is not None:
        query = query.where(Order.village_id == village_id)
    if agent_id is not None:
        query = query.where(Order.agent_id == agent_id)
    now = ctx.now()
    if overdue:
        query = query.where(Order.status == "accepted", Order.due_at <= now)
    if cursor is not None:
        query = query.where(Order.id < cursor)
    rows = (await session.execute(query.order_by(Order.id.desc()).limit(limit + 1))).all()
    items = [
        views.OrderSummary(
            id=order.id,
            number=order.number,
            item_code=code,
            item_name=name,
            status=order.status,
            status_name=STATUS_NAMES[order.status],
            green_channel=order.green_channel,
            submitted_at=order.submitted_at,
            due_at=order.due_at,
            overdue=is_overdue(order.status, order.due_at, now),
        )
        for order, code, name in rows[:limit]
    ]
    next_cursor = rows[limit - 1][0].id if len(rows) > limit else None
    return views.OrderPage(items=items, next_cursor=next_cursor)


async def order_detail(
    session: AsyncSession, ctx: Context, principal: Principal, order_id: int
) -> views.OrderDetail:
    order = await order_in_scope(session, principal, order_id)
    version = await session.get(ItemVersion, order.item_version_id)
    item = await session.get(CatalogueItem, order.item_id)
    assert version is not None and item is not None
    events = (
        await session.execute(
            select(OrderEvent, Account.name)
            .outerjoin(Account, Account.id == OrderEvent.actor_id)
            .where(OrderEvent.order_id == order.id)
            .order_by(OrderEvent.id)
        )
    ).all()
    agent = await session.get(Account, order.agent_id) if order.agent_id else None
    now = ctx.now()
    remaining = None
    if order.status == "accepted" and order.due_at is not None:
        remaining = (await work_calendar(session, ctx)).remaining_working_days(order.due_at, now)
    elif order.status == "on_hold":
        remaining = order.remaining_days
    return views.OrderDetail(
        id=order.id,
        number=order.number,
        item_code=item.code,
        item_name=version.name,
        item_version=version.version,
        status=order.status,
        status_name=STATUS_NAMES[order.status],
        channel=order.channel,
        green_channel=order.green_channel,
        note=order.note,
        submitted_at=order.submitted_at,
        accepted_at=order.accepted_at,
        promised_days=order.promised_days,
        due_at=order.due_at,
        due_provisional=order.due_provisional,
        remaining_working_days=remaining,
        overdue=is_overdue(order.status, order.due_at, now),
        delay_explanation=order.delay_explanation,
        outcome=order.outcome,
        outcome_note=order.outcome_note,
        fees_collected_fen=order.fees_collected_fen,
        completed_at=order.completed_at,
        delivered_at=order.delivered_at,
        delivery_method=order.delivery_method,
        agent=views.AgentContact(id=agent.id, name=agent.name, work_phone=agent.work_phone)
        if agent
        else None,
        checklist=[
            views.ChecklistSlot(
                code=m["code"],
                name=m["name"],
                required=bool(m.get("required", True)),
                count=int(m.get("count", 1)),
                form=str(m.get("form", "original")),
                upload_ids=list(order.materials.get(m["code"], {}).get("uploads", [])),
                state=order.materials.get(m["code"], {}).get("state", "empty"),
                reason=order.materials.get(m["code"], {}).get("reason"),
            )
            for m in version.materials
        ],
        acceptance_slip=views.AcceptanceSlip(
            number=order.number,
            item_name=version.name,
            accepted_at=order.accepted_at,
            due_at=order.due_at,
            due_provisional=order.due_provisional,
            promised_days=order.promised_days,
            fees_fen=version.fee_fen,
            fee_basis=version.fee_basis,
            handler_name=agent.name if agent else None,
            handler_phone=agent.work_phone if agent else None,
        )
        if order.accepted_at
        else None,
        timeline=[
            views.TimelineEntry(
                at=e.at,
                action=e.action,
                action_name=ACTION_NAMES.get(e.action, e.action),
                actor_role=e.actor_role,
                actor_name=name,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                data=e.data,
            )
            for e, name in events
        ],
        next_actions=actions_from(order.status, principal.role),
    )
