"""A reporting period: from and to dates, both included, as instants in the service's time
zone; at most a year. The figures, the satisfaction statistics and the exports take one."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from app import errors
from app.context import Context

MAX_DAYS = 366


def period(ctx: Context, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the service's zone."""
    if end < start or (end - start).days > MAX_DAYS:
        raise errors.InvalidInput(errors=[{"field": "to", "message": "统计区间应在一年之内"}])
    zone = ctx.settings.zone
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )
