"""The working-day calendar in force: the rules of app/workdays.py with the admin's
overrides from the database (app/orders/calendar.py edits them), cached briefly."""

from __future__ import annotations

import time
from dataclasses import dataclass

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


# From November on, next year's official schedule (放假安排, published by the State Council
# late in the year) should be entered: without it, due dates into next year are provisional.
NEXT_YEAR_FROM_MONTH = 11


@dataclass(frozen=True)
class NextYear:
    year: int
    official: bool  # known to the calendar library, or entered by an admin
    due: bool  # it is November or December: the schedule should be in by now

    @property
    def missing(self) -> bool:
        return self.due and not self.official


def next_year(session: Session, ctx: Context) -> NextYear:
    today = ctx.today()
    year = today.year + 1
    return NextYear(
        year=year,
        official=work_calendar(session, ctx).is_official(year),
        due=today.month >= NEXT_YEAR_FROM_MONTH,
    )


def next_year_missing(session: Session, ctx: Context) -> int | None:
    """Next year, when it is November or December and its official schedule is neither
    known to the calendar library nor entered by an admin; otherwise None."""
    found = next_year(session, ctx)
    return found.year if found.missing else None
