"""The town centre's figures over a period, each reproducible from the orders and their
timelines (a period is business dates, both ends included):

- received: orders submitted in the period; by channel, green-channel share, top items.
- accepted, rejected, completed: acceptances (受理), refusals (不予受理) and completions
  (办结) that happened in the period.
- 办结率 (completion rate): of the orders accepted in the period, the share completed by
  its end. 按期办结率 (on-time rate): of the orders completed in the period, the share
  completed by their due time and never found overdue (a hold moves the due time by
  exactly the days it stopped the clock).
- working days from acceptance to completion (the acceptance day not counted): average and
  90th percentile (nearest rank) over the orders completed in the period.
- supplement rate: of the orders accepted in the period, the share that needed a
  supplement notice (一次性告知) first.
- second rounds: of the orders received in the period, those that needed a second supplement
  notice or more (a rework round), by agent and by item.
- by kind: the orders received in the period by their item's kind (即办件 … 上报件); progress
  steps: the steps of 上报件 and 联办件 recorded in the period.
- photo warnings: the supplement rounds of the orders received whose material photos had a
  warning from the photo checks, against those whose photos had none.
- green channel: the share of orders received with the flag, and the on-time rate of the
  flagged orders completed in the period.
- disputes (提出异议): the orders disputed in the period, the disputes of the period that
  were an order's second or more (those go to the dispatchers), and the orders disputed by
  the agent whose hand-back was disputed. A disputed order's figures above are its first
  round's (completed, on time, working days): the reopened work is not a second 办结.
- in progress and overdue: now, not at the period's end.
- satisfaction: the ratings made in the period, upheld appeals left out; every rating by
  channel, and paper rating cards typed in by staff apart (with the rate without them).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any, get_args

import msgspec
from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.orm import Session

from app.context import Context
from app.kinds import RatingChannel
from app.models import CatalogueItem, Order, OrderEvent
from app.models.tables import ACCOUNTS, ORDERS, RATINGS, VERSIONS
from app.orders.records import is_overdue
from app.orders.states import RUNNING
from app.periods import period
from app.security.tokens import Principal
from app.uploads.quality import RoundsByWarnings, rounds_by_warnings
from app.work_calendar import work_calendar

TOP_ITEMS = 10


class ItemCount(msgspec.Struct, rename="camel", kw_only=True):
    code: str
    name: str
    count: int


class AgentCount(msgspec.Struct, rename="camel", kw_only=True):
    agent_id: int
    name: str | None
    count: int


class Figures(msgspec.Struct, rename="camel", kw_only=True):
    start: date
    end: date
    received: int
    accepted: int
    rejected: int
    completed: int
    completed_on_time: int
    completed_late: int
    completion_rate: float | None  # 办结率
    on_time_rate: float | None  # 按期办结率
    in_progress_now: int
    overdue_now: int
    average_working_days: float | None
    p90_working_days: int | None
    supplement_rate: float | None
    second_rounds: int  # received in the period and needing 2 notices or more
    second_rounds_by_agent: list[AgentCount]
    second_rounds_by_item: list[ItemCount]
    disputed: int  # 提出异议: orders disputed in the period
    second_disputes: int  # disputes in the period that were an order's second or more
    disputed_by_agent: list[AgentCount]  # by the agent whose hand-back was disputed
    top_items: list[ItemCount]
    channels: dict[str, int]  # mini_program, agent
    by_kind: dict[str, int]  # immediate, promised, joint, escalated
    progress_steps: int  # 上报件, 联办件: steps recorded in the period
    # Supplement rounds of the orders received, those with a photo warning against the rest
    # (the photo checks: app/uploads/quality.py).
    photo_warnings: RoundsByWarnings
    green_channel_share: float | None
    green_channel_completed: int
    green_channel_on_time_rate: float | None
    ratings: int  # of orders done (办结, handed back); the rest below
    satisfaction_rate: float | None  # grades 3–5 over all counted
    satisfaction_rate_given: float | None
    default_ratings: int
    unserved_ratings: int  # of orders refused or terminated, kept apart
    unserved_satisfaction_rate: float | None
    # Every rating by where it came from (app, web, paper, default); paper rating cards typed
    # in by staff, and the satisfaction rate without them (orders done).
    rating_channels: dict[str, int]
    paper_ratings: int
    satisfaction_rate_without_paper: float | None


RATING_CHANNELS = get_args(RatingChannel)


@dataclass(frozen=True)
class Filters:
    village_id: int | None = None
    agent_id: int | None = None
    item_code: str | None = None


def scope_conditions(
    session: Session, principal: Principal, filters: Filters, table: Any = ORDERS
) -> list[Any]:
    """The caller's town or district, then the filters (an unknown item code matches none)."""
    column = table.c.town_id if principal.role == "dispatcher" else table.c.district_id
    where = [column == principal.region_id]
    if filters.village_id is not None:
        where.append(table.c.village_id == filters.village_id)
    if filters.agent_id is not None:
        where.append(table.c.agent_id == filters.agent_id)
    if filters.item_code is not None:
        item_id = session.scalar(
            select(CatalogueItem.id).where(CatalogueItem.code == filters.item_code)
        )
        where.append(table.c.item_id == (item_id or -1))
    return where


def first_round(column: str) -> Any:
    """The first round's due time, overdue mark or completion: once a dispute reopened the
    order, the value kept then (first_…); before, the order's own."""
    return case(
        (ORDERS.c.dispute_rounds > 0, ORDERS.c[f"first_{column}"]), else_=ORDERS.c[column]
    ).label(column)


def first_round_between(column: str, low: datetime, high: datetime) -> Any:
    """`first_round(column)` within [low, high), spelt as two ranges so that the indexes on
    the column and on first_<column> (ix_orders_district_…) serve it."""
    own, first = ORDERS.c[column], ORDERS.c[f"first_{column}"]
    return or_(
        and_(ORDERS.c.dispute_rounds == 0, own >= low, own < high),
        and_(ORDERS.c.dispute_rounds > 0, first >= low, first < high),
    )


# The timeline's events the figures count, spelt with their values inline as the predicate
# of their index (ix_order_events_figures), so that both databases read them through it:
# SQLite uses a partial index only for a term that matches its predicate.
FIGURE_EVENTS = text("order_events.action IN ('progress', 'dispute')")


def first_round_of(order: Any) -> Any:
    """`first_round` for an order already read: its first round's due time, overdue mark
    and completion."""
    if not order.dispute_rounds:
        return order
    return SimpleNamespace(
        due_at=order.first_due_at,
        overdue_at=order.first_overdue_at,
        completed_at=order.first_completed_at,
    )


def completed_on_time(order: Any) -> bool:
    """办结 within the promised time: never found overdue, and completed by its due time."""
    return (
        order.overdue_at is None
        and order.due_at is not None
        and order.completed_at is not None
        and order.completed_at <= order.due_at
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(
    session: Session,
    ctx: Context,
    principal: Principal,
    start: date,
    end: date,
    filters: Filters,
) -> Figures:
    low, high = period(ctx, start, end)
    where = scope_conditions(session, principal, filters)
    o = ORDERS.c
    received_in_period = (*where, o.submitted_at >= low, o.submitted_at < high)
    received = session.execute(
        select(
            o.id,
            o.item_id,
            o.channel,
            o.green_channel,
            o.supplement_rounds,
            o.agent_id,
            VERSIONS.c.kind,
        )
        .select_from(ORDERS.join(VERSIONS, VERSIONS.c.id == o.item_version_id))
        .where(*received_in_period)
    ).all()
    completed_at = first_round("completed_at")  # a disputed order's first 办结
    accepted_in_period = (*where, o.accepted_at >= low, o.accepted_at < high)
    # The orders accepted in the period, and those of them completed by its end: counted
    # by the database (a district's year is some 75,000 rows that Python only counted).
    accepted, completed_by_end = session.execute(
        select(func.count(), func.count(case((completed_at.element < high, 1)))).where(
            *accepted_in_period
        )
    ).one()
    completed = session.execute(
        select(
            o.accepted_at,
            completed_at,
            first_round("due_at"),
            first_round("overdue_at"),
            o.green_channel,
        ).where(*where, first_round_between("completed_at", low, high))
    ).all()
    # 不予受理 is final and ends the order at the moment of its one reject event
    # (app/orders/moves.py), so the period's refusals are the orders that ended so: read
    # through the scope's status index, where the timeline's reject events would be the
    # whole database's (2 of a district's year's 5.3 s at 20,000,000 orders).
    rejected = session.scalar(
        select(func.count())
        .select_from(ORDERS)
        .where(*where, o.status == "rejected", o.ended_at >= low, o.ended_at < high)
    )
    steps = session.scalar(
        select(func.count())
        .select_from(OrderEvent)
        .join(Order, Order.id == OrderEvent.order_id)
        .where(
            *where,
            FIGURE_EVENTS,
            OrderEvent.action == "progress",
            OrderEvent.at >= low,
            OrderEvent.at < high,
        )
    )
    disputes = _disputes(session, where, low, high)
    # Each order disputed in the period once, by the agent of its latest dispute in it.
    disputed = {order_id: data.get("agentId") for order_id, data in disputes}
    # The accepted orders again as a subquery, not their ids as values: a district's year
    # holds more of them than a statement may carry parameters (32,767 in PostgreSQL's
    # protocol), which answered 500 (tests/ledger/test_ledger.py).
    supplemented = (
        session.scalar(
            select(func.count(func.distinct(OrderEvent.order_id))).where(
                OrderEvent.order_id.in_(select(o.id).where(*accepted_in_period)),
                OrderEvent.action == "request_supplement",
            )
        )
        if accepted
        else 0
    )
    now = ctx.now()
    running = session.execute(
        select(o.status, o.due_at, o.overdue_at).where(*where, o.status.in_(RUNNING))
    ).all()
    calendar = work_calendar(session, ctx)
    # Counted once per pair of days: a district's year repeats the same few thousand pairs
    # over tens of thousands of orders, and each count walks the days between.
    pairs = Counter(
        (calendar.local_date(row.accepted_at), calendar.local_date(row.completed_at))
        for row in completed
        if row.accepted_at is not None
    )
    spans = sorted(
        span
        for (accepted, done), n in pairs.items()
        for span in [calendar.working_days_between(accepted, done)] * n
    )
    on_time = sum(1 for row in completed if completed_on_time(row))
    green = [row for row in completed if row.green_channel]
    reworked = [r for r in received if (r.supplement_rounds or 0) >= 2]
    rated = _ratings(session, principal, filters, low, high)
    ratings = [(g, d) for g, d, outcome, _ in rated if outcome == "done"]
    unserved = [g for g, _, outcome, _ in rated if outcome != "done"]
    unpapered = [g for g, _, outcome, channel in rated if outcome == "done" and channel != "paper"]
    return Figures(
        start=start,
        end=end,
        received=len(received),
        accepted=accepted,
        rejected=int(rejected or 0),
        completed=len(completed),
        completed_on_time=on_time,
        completed_late=len(completed) - on_time,
        completion_rate=_rate(completed_by_end, accepted),
        on_time_rate=_rate(on_time, len(completed)),
        in_progress_now=len(running),
        overdue_now=sum(1 for r in running if is_overdue(r, now)),
        average_working_days=round(sum(spans) / len(spans), 2) if spans else None,
        p90_working_days=spans[math.ceil(0.9 * len(spans)) - 1] if spans else None,
        supplement_rate=_rate(int(supplemented or 0), accepted),
        second_rounds=len(reworked),
        second_rounds_by_agent=_by_agent(session, reworked),
        second_rounds_by_item=_top_items(session, reworked),
        disputed=len(disputed),
        second_disputes=sum(1 for _, data in disputes if data.get("round", 1) >= 2),
        disputed_by_agent=_by_agent(
            session, [SimpleNamespace(agent_id=agent) for agent in disputed.values()]
        ),
        top_items=_top_items(session, received),
        channels=dict(Counter(r.channel for r in received)),
        by_kind=dict(Counter(r.kind for r in received)),
        progress_steps=int(steps or 0),
        photo_warnings=rounds_by_warnings(
            session,
            {r.id: r.supplement_rounds or 0 for r in received},
            select(o.id).where(*received_in_period),
        ),
        green_channel_share=_rate(sum(1 for r in received if r.green_channel), len(received)),
        green_channel_completed=len(green),
        green_channel_on_time_rate=_rate(sum(1 for r in green if completed_on_time(r)), len(green)),
        ratings=len(ratings),
        satisfaction_rate=_rate(sum(1 for g, _ in ratings if g >= 3), len(ratings)),
        satisfaction_rate_given=_rate(
            sum(1 for g, d in ratings if g >= 3 and not d), sum(1 for _, d in ratings if not d)
        ),
        default_ratings=sum(1 for _, d in ratings if d),
        unserved_ratings=len(unserved),
        unserved_satisfaction_rate=_rate(sum(1 for g in unserved if g >= 3), len(unserved)),
        rating_channels={c: sum(1 for *_, ch in rated if ch == c) for c in RATING_CHANNELS},
        paper_ratings=len(ratings) - len(unpapered),
        satisfaction_rate_without_paper=_rate(sum(1 for g in unpapered if g >= 3), len(unpapered)),
    )


def _ratings(
    session: Session, principal: Principal, filters: Filters, low: datetime, high: datetime
) -> list[tuple[int, bool, str, str]]:
    table = RATINGS
    rows = session.execute(
        select(table.c.grade, table.c.is_default, table.c.order_outcome, table.c.channel).where(
            *scope_conditions(session, principal, filters, table),
            table.c.rated_at >= low,
            table.c.rated_at < high,
            table.c.excluded.is_(False),
        )
    ).all()
    return [(int(g), bool(d), str(o), str(c)) for g, d, o, c in rows]


def _disputes(
    session: Session, where: list[Any], low: datetime, high: datetime
) -> list[tuple[int, dict[str, Any]]]:
    """The disputes (提出异议) made in the period on the orders `where` picks (the scope's
    `scope_conditions`), oldest first: the order and the event's data (`round`, the
    `agentId` whose hand-back was disputed)."""
    rows = session.execute(
        select(OrderEvent.order_id, OrderEvent.data)
        .join(Order, Order.id == OrderEvent.order_id)
        .where(
            *where,
            FIGURE_EVENTS,
            OrderEvent.action == "dispute",
            OrderEvent.at >= low,
            OrderEvent.at < high,
        )
        .order_by(OrderEvent.id)
    ).all()
    return [(int(order_id), dict(data or {})) for order_id, data in rows]


def _by_agent(session: Session, rows: Sequence[Any]) -> list[AgentCount]:
    counts = Counter(r.agent_id for r in rows if r.agent_id is not None).most_common(TOP_ITEMS)
    if not counts:
        return []
    found = session.execute(
        select(ACCOUNTS.c.id, ACCOUNTS.c.name).where(ACCOUNTS.c.id.in_([i for i, _ in counts]))
    )
    names = {row.id: row.name for row in found}
    return [AgentCount(agent_id=i, name=names.get(i), count=n) for i, n in counts]


def _top_items(session: Session, received: Sequence[Any]) -> list[ItemCount]:
    counts = Counter(r.item_id for r in received).most_common(TOP_ITEMS)
    if not counts:
        return []
    found = {
        item_id: (code, name)
        for item_id, code, name in session.execute(
            select(CatalogueItem.id, CatalogueItem.code, CatalogueItem.name).where(
                CatalogueItem.id.in_([i for i, _ in counts])
            )
        )
    }
    return [ItemCount(code=found[i][0], name=found[i][1], count=n) for i, n in counts]
