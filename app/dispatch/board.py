"""The town dispatcher's board (调度台): counts by status, the pool waiting for an agent,
overdue and soon-due work, and each agent's open workload. Every part is an index range
scan bounded by the town, so the board costs the same whatever the history holds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.catalogue.outputs import KIND_NAMES
from app.context import Context
from app.kinds import DutyStatus, Post
from app.models.tables import ACCOUNTS, EVENTS, ORDERS, REGIONS, VERSIONS, looked_up
from app.orders.assignment import DUTY_NAMES, duty_status
from app.orders.progress import progress_label
from app.orders.states import ACTIVE, OPEN_ORDER, RUNNING, STATUS_NAMES, OrderStatus
from app.regions.service import within
from app.security.tokens import Principal
from app.work_calendar import work_calendar

LIST_SIZE = 20


class StatusCount(msgspec.Struct, rename="camel", kw_only=True):
    status: OrderStatus
    status_name: str
    count: int


class PoolOrder(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    number: str
    item_name: str
    village_name: str
    submitted_at: datetime
    green_channel: bool
    home_visit: bool
    appointment_at: datetime | None
    why: str | None  # why it is in the pool: the rule that fired, or the agent's decline


class DueOrder(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    number: str
    item_name: str
    status: OrderStatus
    agent_id: int | None
    agent_name: str | None
    due_at: datetime | None
    green_channel: bool


class DepartmentOrder(msgspec.Struct, rename="camel", kw_only=True):
    """上报件 / 联办件 accepted and not yet done: where the matter is among the departments."""

    id: int
    number: str
    item_name: str
    kind_name: str
    agent_name: str | None
    due_at: datetime | None
    latest: str | None  # the latest step: 区民政局 · 报送 11月24日; None before any


class AgentLoad(msgspec.Struct, rename="camel", kw_only=True):
    agent_id: int
    name: str | None
    village_name: str
    post: Post | None
    duty_status: DutyStatus
    duty_status_name: str
    leave_until: date | None
    open_orders: int


class Board(msgspec.Struct, rename="camel", kw_only=True):
    counts: list[StatusCount]
    pool_total: int
    pool: list[PoolOrder]  # green channel and visits first, then oldest first
    overdue_total: int
    overdue: list[DueOrder]  # most overdue first
    due_soon_total: int
    due_soon: list[DueOrder]  # due by the end of the next working day, soonest first
    at_departments_total: int
    at_departments: list[DepartmentOrder]  # 上报件, 联办件 under way: soonest due first
    agents: list[AgentLoad]


_TOWN = ORDERS.c.town_id == bindparam("town")
# Waiting for a dispatcher: new orders nobody took (待派单), and disputed ones that run with
# nobody on them (a second dispute goes to the dispatchers, app/orders/moves.py).
_POOLED = (ORDERS.c.status.in_(("submitted", "accepted")), ORDERS.c.agent_id.is_(None))
COUNTS = (
    select(ORDERS.c.status, func.count())
    .where(_TOWN, ORDERS.c.status.in_(ACTIVE))
    .group_by(ORDERS.c.status)
)
WHY_IN_POOL = (
    select(EVENTS.c.note)
    .where(EVENTS.c.order_id == ORDERS.c.id, EVENTS.c.action.in_(("pool", "decline")))
    .order_by(EVENTS.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
# One range of (town, submitted, priority) at a time: flagged orders first, each oldest first.
POOL = (
    select(
        ORDERS.c.id,
        ORDERS.c.number,
        looked_up(VERSIONS.c.name, ORDERS.c.item_version_id).label("name"),
        looked_up(REGIONS.c.name, ORDERS.c.village_id).label("village_name"),
        ORDERS.c.submitted_at,
        ORDERS.c.green_channel,
        ORDERS.c.home_visit,
        ORDERS.c.appointment_at,
        WHY_IN_POOL.label("why"),
    )
    .where(_TOWN, *_POOLED, ORDERS.c.priority == bindparam("priority"))
    .order_by(ORDERS.c.id)
    .limit(bindparam("limit"))
)
POOL_TOTAL = select(func.count()).where(_TOWN, *_POOLED)
_DUE_COLUMNS = (
    ORDERS.c.id,
    ORDERS.c.number,
    looked_up(VERSIONS.c.name, ORDERS.c.item_version_id).label("name"),
    ORDERS.c.status,
    ORDERS.c.agent_id,
    looked_up(ACCOUNTS.c.name, ORDERS.c.agent_id).label("agent_name"),
    ORDERS.c.due_at,
    ORDERS.c.green_channel,
)
# Running and past due; or on hold after it was found overdue (the hold stops no lateness).
_LATE_RUNNING = (ORDERS.c.status == "accepted", ORDERS.c.due_at <= bindparam("now"))
_LATE_HELD = (ORDERS.c.status == "on_hold", ORDERS.c.overdue_at.is_not(None))
LATE_RUNNING = (
    select(*_DUE_COLUMNS).where(_TOWN, *_LATE_RUNNING).order_by(ORDERS.c.due_at).limit(LIST_SIZE)
)
LATE_HELD = (
    select(*_DUE_COLUMNS).where(_TOWN, *_LATE_HELD).order_by(ORDERS.c.due_at).limit(LIST_SIZE)
)
LATE_TOTAL = select(
    select(func.count()).where(_TOWN, *_LATE_RUNNING).scalar_subquery(),
    select(func.count()).where(_TOWN, *_LATE_HELD).scalar_subquery(),
)
_SOON = (
    ORDERS.c.status == "accepted",
    ORDERS.c.due_at > bindparam("now"),
    ORDERS.c.due_at <= bindparam("soon"),
)
DUE_SOON = select(*_DUE_COLUMNS).where(_TOWN, *_SOON).order_by(ORDERS.c.due_at).limit(LIST_SIZE)
DUE_SOON_TOTAL = select(func.count()).where(_TOWN, *_SOON)
# Only escalated and joint orders carry `progress` (from submission): ix_orders_town_progress,
# one status at a time so that the index gives them soonest due first.
_TRACKED = (_TOWN, ORDERS.c.progress.is_not(None))
AT_DEPARTMENTS = (
    select(
        *_DUE_COLUMNS,
        looked_up(VERSIONS.c.kind, ORDERS.c.item_version_id).label("kind"),
        ORDERS.c.progress,
    )
    .where(*_TRACKED, ORDERS.c.status == bindparam("status"))
    .order_by(ORDERS.c.due_at)
    .limit(LIST_SIZE)
)
AT_DEPARTMENTS_TOTAL = select(func.count()).where(*_TRACKED, ORDERS.c.status.in_(sorted(RUNNING)))
_OPEN_OF_AGENT = (
    select(func.count()).where(ORDERS.c.agent_id == ACCOUNTS.c.id, OPEN_ORDER).scalar_subquery()
)
AGENTS = (
    select(
        ACCOUNTS.c.id,
        ACCOUNTS.c.name,
        REGIONS.c.name.label("village_name"),
        ACCOUNTS.c.post,
        ACCOUNTS.c.on_duty,
        ACCOUNTS.c.leave_until,
        _OPEN_OF_AGENT.label("open_orders"),
    )
    .select_from(ACCOUNTS.join(REGIONS, REGIONS.c.id == ACCOUNTS.c.region_id))
    .where(
        within(bindparam("town")),  # the village stations' agents and the centre's own
        ACCOUNTS.c.role == "agent",
        ACCOUNTS.c.disabled_at.is_(None),
    )
    .order_by(REGIONS.c.code, ACCOUNTS.c.post, ACCOUNTS.c.id)
)


def board(session: Session, ctx: Context, principal: Principal) -> Board:
    town, now = principal.region_id, ctx.now()
    soon = work_calendar(session, ctx).due(now, 1).due_at
    flagged = session.execute(POOL, {"town": town, "priority": 1, "limit": LIST_SIZE}).all()
    rest = LIST_SIZE - len(flagged)
    others = session.execute(POOL, {"town": town, "priority": 0, "limit": rest}).all()
    late_running, late_held = session.execute(LATE_TOTAL, {"town": town, "now": now}).one()
    late = [
        *session.execute(LATE_RUNNING, {"town": town, "now": now}),
        *session.execute(LATE_HELD, {"town": town}),
    ]
    late.sort(key=lambda row: row.due_at)
    day = ctx.today()
    return Board(
        counts=[
            StatusCount(status=status, status_name=STATUS_NAMES[status], count=count)
            for status, count in sorted(
                session.execute(COUNTS, {"town": town}), key=lambda r: ACTIVE.index(r[0])
            )
        ],
        pool_total=int(session.scalar(POOL_TOTAL, {"town": town}) or 0),
        pool=[_pool_order(row) for row in [*flagged, *others]],
        overdue_total=int(late_running) + int(late_held),
        overdue=[_due_order(row) for row in late[:LIST_SIZE]],
        due_soon_total=int(
            session.scalar(DUE_SOON_TOTAL, {"town": town, "now": now, "soon": soon}) or 0
        ),
        due_soon=[
            _due_order(row)
            for row in session.execute(DUE_SOON, {"town": town, "now": now, "soon": soon})
        ],
        at_departments_total=int(session.scalar(AT_DEPARTMENTS_TOTAL, {"town": town}) or 0),
        at_departments=_at_departments(session, town),
        agents=[_agent_load(row, day) for row in session.execute(AGENTS, {"town": town})],
    )


def _pool_order(row: Any) -> PoolOrder:
    return PoolOrder(
        id=row.id,
        number=row.number,
        item_name=row.name,
        village_name=row.village_name,
        submitted_at=row.submitted_at,
        green_channel=row.green_channel,
        home_visit=row.home_visit,
        appointment_at=row.appointment_at,
        why=row.why,
    )


def _due_order(row: Any) -> DueOrder:
    return DueOrder(
        id=row.id,
        number=row.number,
        item_name=row.name,
        status=row.status,
        agent_id=row.agent_id,
        agent_name=row.agent_name,
        due_at=row.due_at,
        green_channel=row.green_channel,
    )


def _at_departments(session: Session, town: int | None) -> list[DepartmentOrder]:
    rows = [
        row
        for status in sorted(RUNNING)
        for row in session.execute(AT_DEPARTMENTS, {"town": town, "status": status})
    ]
    rows.sort(key=lambda row: (row.due_at is None, row.due_at or datetime.min))
    return [_department_order(row) for row in rows[:LIST_SIZE]]


def _department_order(row: Any) -> DepartmentOrder:
    parts = (row.progress or {}).get("parts", [])
    latest = max(parts, key=lambda p: p["at"]) if parts else None
    return DepartmentOrder(
        id=row.id,
        number=row.number,
        item_name=row.name,
        kind_name=KIND_NAMES[row.kind],
        agent_name=row.agent_name,
        due_at=row.due_at,
        latest=progress_label(latest) if latest else None,
    )


def _agent_load(row: Any, day: date) -> AgentLoad:
    status = duty_status(row.on_duty, row.leave_until, day)
    return AgentLoad(
        agent_id=row.id,
        name=row.name,
        village_name=row.village_name,
        post=row.post,
        duty_status=status,
        duty_status_name=DUTY_NAMES[status],
        leave_until=row.leave_until if status == "on_leave" else None,
        open_orders=int(row.open_orders),
    )
