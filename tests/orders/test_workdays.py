"""Working-day arithmetic: the 2026 schedule, the acceptance-day rule, 2027 overrides, holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from app.workdays import MAX_WORKING_DAYS, CalendarOverrides, Due, WorkCalendar, is_overdue

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


# The library's 2026 schedule these tests rely on, asserted so a data change fails loudly here.
MID_AUTUMN_2026 = [date(2026, 9, 25), date(2026, 9, 26), date(2026, 9, 27)]
NATIONAL_DAY_2026 = [date(2026, 10, d) for d in range(1, 8)]
MAKE_UP_2026 = [date(2026, 9, 20), date(2026, 10, 10)]  # Sunday, Saturday


def test_library_2026_autumn_schedule_is_what_the_tests_assume() -> None:
    autumn = {d: n for d, n in chinese_calendar.holidays.items() if d >= date(2026, 9, 1)}
    make_up = {d: n for d, n in chinese_calendar.workdays.items() if d >= date(2026, 9, 1)}
    print("holidays", autumn, "make-up", make_up)
    assert sorted(autumn) == MID_AUTUMN_2026 + NATIONAL_DAY_2026
    assert sorted(make_up) == MAKE_UP_2026
    assert [d.weekday() for d in MAKE_UP_2026] == [6, 5]
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 4))


def test_agrees_with_the_library_on_every_covered_day() -> None:
    day = date(2004, 1, 1)
    while day <= date(2026, 12, 31):
        assert CAL.is_workday(day) is chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_is_official() -> None:
    assert CAL.is_official(2004) and CAL.is_official(2026)
    assert not CAL.is_official(2003) and not CAL.is_official(2027)
    assert WorkCalendar(CalendarOverrides(entered_years=frozenset({2027}))).is_official(2027)


def test_national_day_2026_three_days_land_on_the_make_up_saturday() -> None:
    # Wednesday 30 Sep is the last working day before the holiday; Oct 8 Thu, 9 Fri, 10 Sat.
    assert CAL.is_workday(date(2026, 9, 30)) and not CAL.is_workday(date(2026, 10, 1))
    due = CAL.due(local(2026, 9, 30, 15), 3)
    assert due == Due(due_at=utc(2026, 10, 10, 16), last_day=date(2026, 10, 10), provisional=False)
    assert due.due_at.tzinfo is UTC
    assert due.due_at == local(2026, 10, 11)


def test_make_up_sunday_counts_and_holidays_do_not() -> None:
    # Saturday 19 Sep + 1 -> Sunday 20 Sep (调休上班).
    assert CAL.add_working_days(date(2026, 9, 19), 1) == date(2026, 9, 20)
    # Thursday 24 Sep + 1 skips the Mid-Autumn Friday and weekend.
    assert CAL.add_working_days(date(2026, 9, 24), 1) == date(2026, 9, 28)
    assert CAL.working_days_between(date(2026, 9, 18), date(2026, 10, 11)) == 11


def test_acceptance_day_is_not_counted() -> None:
    assert date(2026, 3, 9).weekday() == 0 and CAL.is_workday(date(2026, 3, 9))
    due = CAL.due(local(2026, 3, 9, 10), 1)
    assert due.last_day == date(2026, 3, 10)
    assert due.due_at == local(2026, 3, 11) == utc(2026, 3, 10, 16)


def test_acceptance_date_is_the_local_date() -> None:
    # 17:00 UTC Monday is 01:00 Tuesday in Shanghai: Tuesday is the acceptance day.
    assert CAL.due(utc(2026, 3, 9, 17), 1).last_day == date(2026, 3, 11)
    # Same instant in UTC as the business zone: Monday.
    in_utc = WorkCalendar(zone=ZoneInfo("UTC"))
    assert in_utc.due(utc(2026, 3, 9, 17), 1).due_at == utc(2026, 3, 11)


def test_immediate_items() -> None:
    assert CAL.due(local(2026, 3, 9, 23, 30), 0).due_at == local(2026, 3, 10)
    sunday = CAL.due(local(2026, 3, 8, 11), 0)
    assert sunday.last_day == date(2026, 3, 9) and sunday.due_at == utc(2026, 3, 9, 16)
    # Sunday 5 Apr before the Qingming Monday: Tuesday.
    assert not CAL.is_workday(date(2026, 4, 6))
    assert CAL.due(local(2026, 4, 5, 9), 0).last_day == date(2026, 4, 7)
    # A make-up Sunday is a working day for 即办件 too.
    assert CAL.due(local(2026, 9, 20, 9), 0).last_day == date(2026, 9, 20)


def test_into_2027_without_overrides_is_monday_to_friday_and_provisional() -> None:
    due = CAL.due(local(2026, 12, 30, 10), 3)  # Thu 31 Dec, Fri 1 Jan, Mon 4 Jan
    assert due.last_day == date(2027, 1, 4) and due.provisional
    assert not CAL.due(local(2026, 12, 30, 10), 1).provisional  # only 31 Dec counted
    assert not CAL.due(local(2026, 12, 31, 10), 0).provisional
    assert CAL.due(local(2026, 12, 31, 10), 1).provisional
    assert CAL.due(local(2027, 1, 2, 10), 0).provisional  # Saturday decided by a guess


def test_into_2027_with_overrides() -> None:
    days = {date(2027, 1, 1): False, date(2027, 1, 4): False, date(2027, 1, 9): True}
    draft = WorkCalendar(CalendarOverrides(days=days))
    due = draft.due(local(2026, 12, 30, 10), 3)  # Thu 31 Dec, Tue 5 Jan, Wed 6 Jan
    assert due.last_day == date(2027, 1, 6) and due.provisional
    entered = WorkCalendar(CalendarOverrides(days=days, entered_years=frozenset({2027})))
    assert entered.due(local(2026, 12, 30, 10), 3) == Due(
        due_at=local(2027, 1, 7), last_day=date(2027, 1, 6), provisional=False
    )
    # The Saturday marked as a make-up working day counts.
    assert entered.add_working_days(date(2027, 1, 8), 1) == date(2027, 1, 9)


def test_overrides_win_over_the_library() -> None:
    corrected = WorkCalendar(
        CalendarOverrides(
            days={date(2026, 10, 7): True, date(2026, 10, 8): False, date(2026, 10, 10): False}
        )
    )
    assert corrected.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 7)
    # Oct 8 and the make-up Saturday Oct 10 struck out: Oct 7, 9, 12.
    assert corrected.add_working_days(date(2026, 9, 30), 2) == date(2026, 10, 9)
    assert corrected.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 12)


def test_overrides_are_snapshotted_and_must_be_dates() -> None:
    days: dict[date, bool] = {}
    cal = WorkCalendar(CalendarOverrides(days=days))
    days[date(2026, 3, 10)] = False
    assert cal.is_workday(date(2026, 3, 10))
    with pytest.raises(TypeError):
        WorkCalendar(CalendarOverrides(days={datetime(2026, 3, 10): False}))


def test_guards() -> None:
    with pytest.raises(ValueError):
        CAL.due(datetime(2026, 3, 9, 10), 1)  # naive on purpose
    with pytest.raises(ValueError):
        CAL.add_working_days(date(2026, 3, 9), -1)
    with pytest.raises(ValueError):
        CAL.add_working_days(date(2026, 3, 9), MAX_WORKING_DAYS + 1)
    far = CAL.due(local(2026, 3, 9), MAX_WORKING_DAYS)
    assert far.provisional and far.last_day.year > 2036


def test_working_days_between() -> None:
    assert CAL.working_days_between(date(2026, 3, 9), date(2026, 3, 9)) == 0
    assert CAL.working_days_between(date(2026, 3, 10), date(2026, 3, 9)) == 0
    assert CAL.working_days_between(date(2026, 3, 6), date(2026, 3, 9)) == 1  # Fri -> Mon
    assert CAL.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3


def test_remaining_working_days_at_various_instants() -> None:
    due = CAL.due(local(2026, 3, 9, 10), 3)  # Mon; due end of Thu 12 Mar
    assert due.due_at == utc(2026, 3, 12, 16)
    assert CAL.remaining_working_days(due.due_at, local(2026, 3, 8, 12)) == 4  # before accepting
    assert CAL.remaining_working_days(due.due_at, local(2026, 3, 9, 12)) == 3
    assert CAL.remaining_working_days(due.due_at, local(2026, 3, 10, 0)) == 2
    assert CAL.remaining_working_days(due.due_at, local(2026, 3, 11, 23, 59)) == 1
    assert CAL.remaining_working_days(due.due_at, local(2026, 3, 12, 9)) == 0
    assert CAL.remaining_working_days(due.due_at, due.due_at - timedelta(microseconds=1)) == 0
    assert CAL.remaining_working_days(due.due_at, due.due_at) == 0
    assert CAL.remaining_working_days(due.due_at, local(2026, 4, 1)) == 0


def test_is_overdue_boundary() -> None:
    due_at = CAL.due(local(2026, 3, 9, 10), 1).due_at
    assert not is_overdue(due_at, due_at - timedelta(microseconds=1))
    assert is_overdue(due_at, due_at)
    assert is_overdue(due_at, due_at + timedelta(seconds=1))


def test_hold_on_the_acceptance_day_gives_back_everything() -> None:
    due = CAL.due(local(2026, 3, 9, 10), 5)
    remaining = CAL.remaining_working_days(due.due_at, local(2026, 3, 9, 16))
    assert remaining == 5
    resumed = CAL.resume_due(remaining, local(2026, 3, 16, 9))
    assert resumed.last_day == date(2026, 3, 23)


def test_hold_across_the_national_day_holiday() -> None:
    due = CAL.due(local(2026, 9, 28, 10), 5)  # Sep 29, 30, Oct 8, 9, 10
    assert due.last_day == date(2026, 10, 10)
    remaining = CAL.remaining_working_days(due.due_at, local(2026, 9, 30, 14))
    assert remaining == 3  # Oct 8, 9, 10
    resumed = CAL.resume_due(remaining, local(2026, 10, 8, 9))
    assert resumed.last_day == date(2026, 10, 12)  # Oct 9, 10 (make-up Saturday), 12
    assert resumed == CAL.due(local(2026, 10, 8, 9), remaining)


def test_hold_and_resume_invariant_over_2026() -> None:
    start = date(2026, 1, 1)
    for offset in range(0, 365, 3):
        accepted = start + timedelta(days=offset)
        for n in (0, 1, 3, 10):
            due = CAL.due(local(accepted.year, accepted.month, accepted.day, 10), n)
            for hold_after in (0, 1, 2, 6):
                hold = accepted + timedelta(days=hold_after)
                held_at = local(hold.year, hold.month, hold.day, 11)
                remaining = CAL.remaining_working_days(due.due_at, held_at)
                if held_at >= due.due_at:
                    assert remaining == 0
                    continue
                if n and hold == accepted:
                    assert remaining == n
                if n:
                    # Days used before the hold plus days given back = the promised N.
                    assert CAL.working_days_between(accepted, hold) + remaining == n
                resume = hold + timedelta(days=9)
                resumed = CAL.resume_due(remaining, local(resume.year, resume.month, resume.day))
                assert resumed.last_day == CAL.add_working_days(resume, remaining)
                # With nothing left, resuming is an immediate item: the resume day or the next.
                if remaining:
                    assert CAL.working_days_between(resume, resumed.last_day) == remaining
                    # Resuming on the hold day itself leaves the due date where it was.
                    assert CAL.resume_due(remaining, held_at).due_at == due.due_at
