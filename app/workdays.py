"""Working-day arithmetic for promised time limits (承诺时限): due dates, holds and resumes."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

MAX_WORKING_DAYS = 3650
"""Larger promised limits are data-entry mistakes, not ten-year services."""

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class _Library:
    """The library's schedule, flattened once: it is static for the life of the process."""

    years: frozenset[int]
    rest: frozenset[date]
    work: frozenset[date]


@functools.cache
def _library() -> _Library:
    rest = frozenset(chinese_calendar.holidays)
    # Every year the library publishes has at least New Year's Day in `holidays`; taking the
    # years present (not min..max) means a gap in its data is never mistaken for coverage.
    return _Library(
        years=frozenset(d.year for d in rest),
        rest=rest,
        work=frozenset(chinese_calendar.workdays),
    )


@dataclass(frozen=True)
class CalendarOverrides:
    """What the admin entered: single days (corrections, or a year the library lacks)."""

    days: Mapping[date, bool] = field(default_factory=dict)
    """True = working day (e.g. 调休上班), False = rest day."""
    entered_years: frozenset[int] = frozenset()
    """Years whose official schedule the admin has entered completely."""


_NO_OVERRIDES = CalendarOverrides()


@dataclass(frozen=True)
class Due:
    due_at: datetime
    """Aware, UTC: the local midnight that starts the day after `last_day` (exclusive bound)."""
    last_day: date
    """The last counted working day, in the business time zone."""
    provisional: bool
    """A counted day lies in a year with no official schedule: recompute once it is entered."""


def last_day(due_at: datetime, zone: ZoneInfo) -> date:
    """The last counted day of a due time: `due_at` is the exclusive midnight after it, so
    step back a microsecond (exact, in UTC) before taking the local date."""
    _require_aware(due_at, "due_at")
    return (due_at - timedelta(microseconds=1)).astimezone(zone).date()


def is_overdue(due_at: datetime, now: datetime) -> bool:
    """Overdue from the due instant on: `due_at` is already the exclusive end of the last day."""
    return now >= due_at


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def _check_days(n: int) -> None:
    if not 0 <= n <= MAX_WORKING_DAYS:
        raise ValueError(f"working days must be between 0 and {MAX_WORKING_DAYS}, got {n}")


class WorkCalendar:
    """Working days per the State Council schedule, the admin's overrides, else Monday–Friday.

    Precedence for one day: an admin override; else, in a year the `chinesecalendar` library
    covers, its schedule (a make-up working day 调休上班 beats a holiday, which beats the
    weekday); else Monday–Friday.

    Counting rules (all dates are local dates in `zone`):

    - Due = the end of the Nth working day after the acceptance date. The acceptance date is
      never counted, even when it is a working day. N = 0 (即办件): the end of the acceptance
      date if it is a working day, else the end of the next working day.
    - "End of a day" is the START of the following calendar day, local midnight, as an aware
      UTC datetime: an exclusive bound, so "overdue" is simply `now >= due_at` with no
      23:59:59.999999 fence-post.
    - Remaining (at hold, 中止): the whole working days after the hold date up to and including
      the last counted day; the hold date itself counts as used. Zero once `now >= due_at`.
    - Resume: exactly like a fresh acceptance on the resume date with N = remaining, so the
      resume date is not counted. Holding and resuming on the same day changes nothing, and
      holding on the acceptance date gives back the full N.
    - Provisional: some day whose status decided the result (the counted days, plus the
      acceptance date when N = 0) is in a year neither covered by the library nor marked
      entered by the admin.
    """

    def __init__(
        self,
        overrides: CalendarOverrides = _NO_OVERRIDES,
        zone: ZoneInfo = SHANGHAI,
    ) -> None:
        # A snapshot: the caller's mapping may be reused or mutated after we are built.
        self._days: dict[date, bool] = dict(overrides.days)
        for day in self._days:
            if isinstance(day, datetime):
                # A datetime key never equals a date lookup, so it would be silently ignored.
                raise TypeError(f"override keys must be dates, got datetime {day!r}")
        self._entered = frozenset(overrides.entered_years)
        self.overrides = overrides
        self.zone = zone

    def is_workday(self, day: date) -> bool:
        override = self._days.get(day)
        if override is not None:
            return override
        lib = _library()
        if day.year in lib.years:
            if day in lib.work:
                return True
            if day in lib.rest:
                return False
        return day.weekday() < 5

    def is_official(self, year: int) -> bool:
        """The year's schedule is known: the library covers it, or the admin entered it."""
        return year in _library().years or year in self._entered

    def add_working_days(self, start: date, n: int) -> date:
        """The Nth working day after `start` (`start` excluded); n = 0: `start` if it is a
        working day, else the next working day."""
        _check_days(n)
        day = start
        if n == 0:
            while not self.is_workday(day):
                day += _ONE_DAY
            return day
        # Terminates: overrides are finite and every other week has Monday–Friday.
        while n:
            day += _ONE_DAY
            if self.is_workday(day):
                n -= 1
        return day

    def working_days_between(self, after: date, until: date) -> int:
        """Working days in (after, until]; 0 when `until` is not after `after`."""
        count = 0
        day = after + _ONE_DAY
        while day <= until:
            if self.is_workday(day):
                count += 1
            day += _ONE_DAY
        return count

    def local_date(self, moment: datetime) -> date:
        _require_aware(moment, "moment")
        return moment.astimezone(self.zone).date()

    def end_of(self, day: date) -> datetime:
        """The local midnight starting the day after `day`, in UTC."""
        return datetime.combine(day + _ONE_DAY, time.min, tzinfo=self.zone).astimezone(UTC)

    def due(self, accepted_at: datetime, working_days: int) -> Due:
        start = self.local_date(accepted_at)
        last_day = self.add_working_days(start, working_days)
        first_decisive = start if working_days == 0 else start + _ONE_DAY
        provisional = any(
            not self.is_official(year) for year in range(first_decisive.year, last_day.year + 1)
        )
        return Due(due_at=self.end_of(last_day), last_day=last_day, provisional=provisional)

    def remaining_working_days(self, due_at: datetime, now: datetime) -> int:
        """Whole working days after now's local date, up to and including the due's last day."""
        _require_aware(due_at, "due_at")
        today = self.local_date(now)
        if is_overdue(due_at, now):
            return 0
        return self.working_days_between(today, last_day(due_at, self.zone))

    def resume_due(self, remaining: int, resumed_at: datetime) -> Due:
        """Identical to `due(resumed_at, remaining)`, so a stored (start, days) pair can be
        recomputed the same way whether it came from an acceptance or a resume."""
        return self.due(resumed_at, remaining)


class WorkingHours:
    """Working time: the hours between `start` and `end` on working days (reminders to staff
    are timed in it: "2 working hours", "the next working morning", never on a holiday)."""

    def __init__(self, calendar: WorkCalendar, start: time, end: time) -> None:
        if not start < end:
            raise ValueError("the working day must end after it starts")
        self.calendar = calendar
        self.start = start
        self.end = end
        self.day_length = datetime.combine(date.min, end) - datetime.combine(date.min, start)

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.calendar.zone).astimezone(UTC)

    def opening(self, day: date) -> datetime:
        """When working hours begin on `day` (a working day)."""
        return self._at(day, self.start)

    def next_working_moment(self, moment: datetime) -> datetime:
        """`moment` itself when inside working hours, else the next opening."""
        local = moment.astimezone(self.calendar.zone)
        day = local.date()
        if self.calendar.is_workday(day):
            if local.time() < self.start:
                return self.opening(day)
            if local.time() < self.end:
                return moment
        return self.opening(self.calendar.add_working_days(day, 1))

    def add_working_hours(self, moment: datetime, hours: float) -> datetime:
        """The moment `hours` of working time after `moment` (time off the clock not counted)."""
        at = self.next_working_moment(moment)
        left = timedelta(hours=hours)
        while True:
            day = self.calendar.local_date(at)
            closing = self._at(day, self.end)
            if at + left <= closing:
                return at + left
            left -= closing - at
            at = self.opening(self.calendar.add_working_days(day, 1))

    def add_working_days(self, moment: datetime, days: int) -> datetime:
        """`days` whole working days of working time after `moment`."""
        return self.add_working_hours(moment, days * self.day_length / timedelta(hours=1))

    def working_day_before(self, day: date) -> date:
        """The last working day before `day`."""
        day -= _ONE_DAY
        while not self.calendar.is_workday(day):
            day -= _ONE_DAY
        return day
