"""The working-day calendar with the admin's overrides from the database, cached briefly."""

from __future__ import annotations

import time
from datetime import date

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.context import Context
from app.models import CalendarOverride, CalendarYear, Order
from app.workdays import CalendarOverrides, WorkCalendar

CACHE_SECONDS = 60.0
_cache: dict[int, tuple[float, WorkCalendar]] = {}


async def work_calendar(session: AsyncSession, ctx: Context) -> WorkCalendar:
    """Overrides change a few times a year: each process reloads them at most once a minute."""
    cached = _cache.get(id(ctx))
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    days = {
        row.day: row.is_workday
        for row in (await session.execute(select(CalendarOverride))).scalars()
    }
    years = frozenset((await session.execute(select(CalendarYear.year))).scalars())
    calendar = WorkCalendar(
        CalendarOverrides(days=days, entered_years=years), zone=ctx.settings.zone
    )
    _cache[id(ctx)] = (time.monotonic(), calendar)
    return calendar


def forget_calendar(ctx: Context) -> None:
    _cache.pop(id(ctx), None)


class OverrideDay(msgspec.Struct, rename="camel", kw_only=True):
    day: date
    is_workday: bool
    note: str | None = None


class CalendarView(msgspec.Struct, rename="camel", kw_only=True):
    year: int
    official: bool
    entered: bool
    overrides: list[OverrideDay]


async def calendar_year(session: AsyncSession, ctx: Context, year: int) -> CalendarView:
    rows = (
        await session.execute(
            select(CalendarOverride)
            .where(
                CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31)
            )
            .order_by(CalendarOverride.day)
        )
    ).scalars()
    entered = await session.get(CalendarYear, year) is not None
    calendar = await work_calendar(session, ctx)
    return CalendarView(
        year=year,
        official=calendar.is_official(year),
        entered=entered,
        overrides=[OverrideDay(day=r.day, is_workday=r.is_workday, note=r.note) for r in rows],
    )


async def set_calendar_year(
    session: AsyncSession, ctx: Context, year: int, days: list[OverrideDay], complete: bool
) -> CalendarView:
    """Replace a year's overrides (the State Council's schedule, or corrections to it)."""
    wrong = [d.day.isoformat() for d in days if d.day.year != year]
    if wrong:
        raise errors.InvalidInput(
            errors=[{"field": "days", "message": f"{d} 不在 {year} 年"} for d in wrong]
        )
    await session.execute(
        delete(CalendarOverride).where(
            CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31)
        )
    )
    for d in days:
        session.add(CalendarOverride(day=d.day, is_workday=d.is_workday, note=d.note))
    entered = await session.get(CalendarYear, year)
    if complete and entered is None:
        session.add(CalendarYear(year=year, entered_at=ctx.now()))
    elif not complete and entered is not None:
        await session.delete(entered)
    await session.flush()
    forget_calendar(ctx)
    await _recompute_provisional(session, ctx)
    return await calendar_year(session, ctx, year)


async def _recompute_provisional(session: AsyncSession, ctx: Context) -> None:
    """Due dates computed without an official schedule are recomputed now that one exists."""
    calendar = await work_calendar(session, ctx)
    rows = (
        await session.execute(
            select(Order.id, Order.clock_started_at, Order.clock_days).where(
                Order.due_provisional.is_(True), Order.status == "accepted"
            )
        )
    ).all()
    for order_id, started, days in rows:
        if started is None or days is None:
            continue
        due = calendar.due(started, days)
        await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == "accepted")
            .values(due_at=due.due_at, due_provisional=due.provisional)
        )
