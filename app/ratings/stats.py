"""Satisfaction figures (满意率) per agent, village, town or item over a period.

Satisfaction rate = grades 3–5 over all ratings counted; given and default ratings are also
shown apart, and so are paper rating cards typed in by staff (their own count and rate, and
the rate without them), so that no agent's figures rest on cards they recorded unseen. Every
rating is also counted by where it came from (小程序, 进度查询页, 纸质评价卡, 默认评价). A
rating whose appeal was upheld is left out (and counted as excluded). A period is business
dates, both ends included, by when the rating was made; complaints by when they were made.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, get_args

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import Context
from app.kinds import RatingChannel
from app.models import Account, CatalogueItem, Complaint, Order, Rating, Rectification, Region
from app.periods import period
from app.security.tokens import Principal

CHANNELS = get_args(RatingChannel)

# What the figures are grouped by (the API's `by`).
Group = Literal["agent", "village", "town", "item"]


class Figures(msgspec.Struct, rename="camel", kw_only=True):
    key: int | None
    name: str
    ratings: int  # counted: given + default, appeals upheld left out
    given: int
    defaulted: int
    excluded: int
    grades: dict[str, int]  # "5" … "1"
    shares: dict[str, float]  # each grade's share of the ratings counted
    satisfaction_rate: float | None  # grades 3–5 over all counted
    given_rate: float | None
    default_rate: float | None
    bad: int  # grades 1–2 among those given
    cases: dict[str, int]  # rectification cases by status
    cases_overdue: int
    complaints: int
    complaints_answered_on_time: int
    # Ratings of orders refused (不予受理) or terminated (终止办理), kept apart from the
    # service's satisfaction above: how people felt about a no.
    unserved_ratings: int
    unserved_satisfaction_rate: float | None
    # Every rating not left out, served or not, by channel: app, web, paper, default.
    channels: dict[str, int]
    # Paper cards staff typed in (among the ratings counted), and the rate without them.
    paper_ratings: int
    paper_satisfaction_rate: float | None
    satisfaction_rate_without_paper: float | None


class Satisfaction(msgspec.Struct, rename="camel", kw_only=True):
    start: date
    end: date
    by: Group
    total: Figures
    rows: list[Figures]


@dataclass
class _Tally:
    grades_given: Counter[int] = field(default_factory=Counter)
    grades_default: Counter[int] = field(default_factory=Counter)
    grades_unserved: Counter[int] = field(default_factory=Counter)
    grades_paper: Counter[int] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    excluded: int = 0
    cases: Counter[str] = field(default_factory=Counter)
    cases_overdue: int = 0
    complaints: int = 0
    on_time: int = 0


def _rate(grades: Counter[int]) -> float | None:
    total = sum(grades.values())
    return round(sum(n for g, n in grades.items() if g >= 3) / total, 4) if total else None


def _figures(key: int | None, name: str, t: _Tally) -> Figures:
    grades = t.grades_given + t.grades_default
    counted = sum(grades.values())
    return Figures(
        key=key,
        name=name,
        ratings=counted,
        given=sum(t.grades_given.values()),
        defaulted=sum(t.grades_default.values()),
        excluded=t.excluded,
        grades={str(g): grades.get(g, 0) for g in range(5, 0, -1)},
        shares={
            str(g): round(grades.get(g, 0) / counted, 4) if counted else 0.0
            for g in range(5, 0, -1)
        },
        satisfaction_rate=_rate(grades),
        given_rate=_rate(t.grades_given),
        default_rate=_rate(t.grades_default),
        bad=sum(n for g, n in t.grades_given.items() if g <= 2),
        cases=dict(t.cases),
        cases_overdue=t.cases_overdue,
        complaints=t.complaints,
        complaints_answered_on_time=t.on_time,
        unserved_ratings=sum(t.grades_unserved.values()),
        unserved_satisfaction_rate=_rate(t.grades_unserved),
        channels={c: t.channels.get(c, 0) for c in CHANNELS},
        paper_ratings=sum(t.grades_paper.values()),
        paper_satisfaction_rate=_rate(t.grades_paper),
        satisfaction_rate_without_paper=_rate(grades - t.grades_paper),
    )


def satisfaction(
    session: Session, ctx: Context, principal: Principal, start: date, end: date, by: Group
) -> Satisfaction:
    """Dispatchers: their town; admins: their district."""
    low, high = period(ctx, start, end)
    town_scope = principal.role == "dispatcher"
    scope = Rating.town_id if town_scope else Rating.district_id
    rows = session.execute(
        select(Rating, Rectification.status, Rectification.due_at)
        .outerjoin(Rectification, Rectification.rating_id == Rating.id)
        .where(scope == principal.region_id, Rating.rated_at >= low, Rating.rated_at < high)
    ).all()
    now = ctx.now()
    tallies: dict[int | None, _Tally] = defaultdict(_Tally)
    total = _Tally()
    for rating, case_status, case_due in rows:
        key = _key(by, rating.agent_id, rating.village_id, rating.town_id, rating.item_id)
        for tally in (tallies[key], total):
            if rating.excluded:
                tally.excluded += 1
                continue
            tally.channels[rating.channel] += 1
            if rating.order_outcome != "done":  # a refusal or a termination: apart
                tally.grades_unserved[rating.grade] += 1
                continue
            (tally.grades_default if rating.is_default else tally.grades_given)[rating.grade] += 1
            if rating.channel == "paper":
                tally.grades_paper[rating.grade] += 1
            if case_status is not None:
                tally.cases[case_status] += 1
                if case_status in ("open", "verified") and now >= case_due:
                    tally.cases_overdue += 1
    complaint_scope = Complaint.town_id if town_scope else Complaint.district_id
    complaints = session.execute(
        select(Complaint, Order.village_id, Order.item_id, Account.region_id)
        .outerjoin(Order, Order.id == Complaint.order_id)
        .outerjoin(Account, Account.id == Complaint.agent_id)
        .where(
            complaint_scope == principal.region_id,
            Complaint.submitted_at >= low,
            Complaint.submitted_at < high,
        )
    ).all()
    for complaint, order_village, item_id, agent_village in complaints:
        village = order_village or agent_village
        key = _key(by, complaint.agent_id, village, complaint.town_id, item_id)
        on_time = complaint.answered_at is not None and complaint.answered_at <= complaint.due_at
        for tally in (tallies[key], total):
            tally.complaints += 1
            tally.on_time += int(on_time)
    names = _names(session, by, [k for k in tallies if k is not None])
    return Satisfaction(
        start=start,
        end=end,
        by=by,
        total=_figures(None, "合计", total),
        rows=sorted(
            (_figures(k, names.get(k, "未指定") if k else "未指定", t) for k, t in tallies.items()),
            key=lambda f: (f.satisfaction_rate is None, -(f.satisfaction_rate or 0), f.name),
        ),
    )


def _key(by: Group, agent: int | None, village: int | None, town: int, item: int | None) -> Any:
    return {"agent": agent, "village": village, "town": town, "item": item}[by]


def _names(session: Session, by: Group, keys: list[int]) -> dict[int, str]:
    if not keys:
        return {}
    if by == "agent":
        rows = session.execute(select(Account.id, Account.name).where(Account.id.in_(keys)))
    elif by == "item":
        rows = session.execute(
            select(CatalogueItem.id, CatalogueItem.name).where(CatalogueItem.id.in_(keys))
        )
    else:
        rows = session.execute(select(Region.id, Region.name).where(Region.id.in_(keys)))
    return {k: n or "" for k, n in rows}
