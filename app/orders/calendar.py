"""The admin's calendar: entering a year's official schedule (overrides of the working-day
rules) and recomputing the due dates that were computed without it."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.models import CalendarOverride, CalendarYear, Order, OrderEvent
from app.notifications import reminders
from app.orders.records import record_event
from app.orders.states import RUNNING
from app.security.tokens import Principal
from app.work_calendar import forget_calendar, work_calendar

FIRST_YEAR, LAST_YEAR = 2000, 2100


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise errors.NotFound(f"只能录入 {FIRST_YEAR}–{LAST_YEAR} 年")


class OverrideDay(msgspec.Struct, rename="camel", kw_only=True):
    day: date
    is_workday: bool
    note: str | None = None


class CalendarView(msgspec.Struct, rename="camel", kw_only=True):
    year: int
    official: bool
    entered: bool
    overrides: list[OverrideDay]


def calendar_year(session: Session, ctx: Context, year: int) -> CalendarView:
    _check_year(year)
    rows = session.execute(
        select(CalendarOverride)
        .where(CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31))
        .order_by(CalendarOverride.day)
    ).scalars()
    entered = session.get(CalendarYear, year) is not None
    calendar = work_calendar(session, ctx)
    return CalendarView(
        year=year,
        official=calendar.is_official(year),
        entered=entered,
        overrides=[OverrideDay(day=r.day, is_workday=r.is_workday, note=r.note) for r in rows],
    )


def set_calendar_year(
    session: Session, ctx: Context, year: int, days: list[OverrideDay], complete: bool
) -> CalendarView:
    """Replace a year's overrides (the State Council's schedule, or corrections to it)."""
    _check_year(year)
    problems = [
        {"field": f"days[{i}].day", "message": f"{d.day.isoformat()} 不在 {year} 年"}
        for i, d in enumerate(days)
        if d.day.year != year
    ]
    seen: set[date] = set()
    for i, d in enumerate(days):
        if d.day in seen:
            problems.append({"field": f"days[{i}].day", "message": f"{d.day.isoformat()} 重复"})
        seen.add(d.day)
    if problems:
        raise errors.InvalidInput(errors=problems)
    session.execute(
        delete(CalendarOverride).where(
            CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31)
        )
    )
    for d in days:
        session.add(CalendarOverride(day=d.day, is_workday=d.is_workday, note=d.note))
    entered = session.get(CalendarYear, year)
    if complete and entered is None:
        session.add(CalendarYear(year=year, entered_at=ctx.now()))
    elif not complete and entered is not None:
        session.delete(entered)
    session.flush()
    forget_calendar(ctx)
    _recompute_provisional(session, ctx, year)
    return calendar_year(session, ctx, year)


def _recompute_provisional(session: Session, ctx: Context, year: int) -> None:
    """Due dates computed without an official schedule are recomputed now that one exists:
    a running order's due time from its clock's start, an order on hold also the working
    days it kept (counted again from its hold). Each is a compare-and-set on the clock the
    order was read with (one that moved meanwhile was computed afresh by that move), has a
    timeline event, and a running one gets the reminders of its new due time."""
    calendar = work_calendar(session, ctx)
    rows = session.execute(
        select(
            Order.id,
            Order.status,
            Order.clock_started_at,
            Order.clock_days,
            Order.due_at,
            Order.due_provisional,
            Order.remaining_days,
            Order.overdue_at,
        ).where(Order.due_provisional.is_(True), Order.status.in_(RUNNING))
    ).all()
    held = [r.id for r in rows if r.status == "on_hold"]
    held_at = {
        order_id: at
        for order_id, at in session.execute(
            select(OrderEvent.order_id, func.max(OrderEvent.at))
            .where(OrderEvent.order_id.in_(held), OrderEvent.action == "hold")
            .group_by(OrderEvent.order_id)
        )
    }
    now = ctx.now()
    for row in rows:
        if row.clock_started_at is None or row.clock_days is None:
            continue
        due = calendar.due(row.clock_started_at, row.clock_days)
        values: dict[str, Any] = {"due_at": due.due_at, "due_provisional": due.provisional}
        data: dict[str, Any] = {
            "previousDueAt": row.due_at.isoformat(),
            "dueAt": due.due_at.isoformat(),
        }
        since = held_at.get(row.id)
        if row.status == "on_hold" and row.overdue_at is None and since is not None:
            values["remaining_days"] = calendar.remaining_working_days(due.due_at, since)
            data["remainingDays"] = values["remaining_days"]
            if since >= due.due_at:  # by the official schedule it was late when held
                values["overdue_at"] = due.due_at
        if all(getattr(row, k) == v for k, v in values.items()):
            continue
        result = session.execute(
            update(Order)
            .where(
                Order.id == row.id,
                Order.status == row.status,
                Order.clock_started_at == row.clock_started_at,
                Order.due_provisional.is_(True),
            )
            .values(updated_at=now, **values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        note = f"已录入{year}年节假日安排,期限按正式安排重新计算"
        record_event(
            session, row.id, None, now, "recompute_due", row.status, row.status, note, data
        )
        if row.status == "accepted":
            reminders.after_clock_start(session, ctx, row.id, due.due_at, now)


def enter_calendar_year(
    session: Session,
    ctx: Context,
    principal: Principal,
    year: int,
    days: list[OverrideDay],
    complete: bool,
) -> CalendarView:
    """An admin enters a year's schedule: set_calendar_year, and the audit log says who."""
    view = set_calendar_year(session, ctx, year, days, complete)
    detail = {"days": len(days), "complete": complete}
    audit.record(session, principal, "calendar.year", f"year:{year}", ctx.now(), detail)
    return view
