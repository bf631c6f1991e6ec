"""A reporting period: from and to dates, both included, as instants in the service's time
zone; at most a year. The figures, the satisfaction statistics and the exports take one."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from app import errors
from app.context import Context

MAX_DAYS = 366
# The dates a period may span: the service's own years, far from the calendar's ends (a
# year 1 or 9999 turned into a UTC instant would overflow).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def check_dates(start: date, end: date) -> None:
    """The from and to a person gave: within the service's years, in order."""
    problems = [
        {"field": name, "message": "日期应在2000年至2099年之间"}
        for name, day in (("from", start), ("to", end))
        if not FIRST_DAY <= day <= LAST_DAY
    ]
    if not problems and end < start:
        problems.append({"field": "to", "message": "截止日期不能早于起始日期"})
    if problems:
        raise errors.InvalidInput(errors=problems)


def period(ctx: Context, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the service's zone."""
    if end < start or (end - start).days > MAX_DAYS:
        raise errors.InvalidInput(errors=[{"field": "to", "message": "统计区间应在一年之内"}])
    zone = ctx.settings.zone
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )
