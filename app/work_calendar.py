"""The working-day calendar in force: the rules of app/workdays.py with the admin's
overrides from the database (app/orders/calendar.py edits them), cached briefly."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import Context
from app.models import CalendarOverride, CalendarYear
from app.workdays import CalendarOverrides, WorkCalendar

CACHE_SECONDS = 60.0


def work_calendar(session: Session, ctx: Context) -> WorkCalendar:
    """Overrides change a few times a year: each process reloads them at most once a minute
    (another process's edit shows here within that minute)."""
    cached = ctx.caches.get("calendar")
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]  # type: ignore[no-any-return]
    days = {
        day: is_workday
        for day, is_workday in session.execute(
            select(CalendarOverride.day, CalendarOverride.is_workday)
        )
    }
    years = frozenset(session.execute(select(CalendarYear.year)).scalars())
    calendar = WorkCalendar(
        CalendarOverrides(days=days, entered_years=years), zone=ctx.settings.zone
    )
    ctx.caches["calendar"] = (time.monotonic(), calendar)
    return calendar


def forget_calendar(ctx: Context) -> None:
    ctx.caches.pop("calendar", None)
