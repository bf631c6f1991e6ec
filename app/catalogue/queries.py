"""Reading the catalogue: search, 本村常办, guides and departments."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app import errors
from app.catalogue import outputs
from app.catalogue.enablement import offered_in
from app.context import Context
from app.models import Account, CatalogueItem, Department, ItemVersion, Order
from app.regions.service import get_region
from app.text import text_problem

MAX_PAGE = 50


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(
    session: Session,
    *,
    q: str | None,
    village_id: int | None,
    department: str | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> outputs.ItemPage:
    """Ranked: exact name, then exact alias, then part of the name, then part of an alias or
    the department; ties by code. Keyset pagination on (rank, code)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = (
        select(CatalogueItem, Department.name, Department.code)
        .join(Department, Department.id == CatalogueItem.department_id)
        .where(CatalogueItem.retired_at.is_(None))
    )
    text = (q or "").strip()
    if text:
        like = f"%{_escape_like(text)}%"
        rank: ColumnElement[int] = case(
            (CatalogueItem.name == text, 0),
            (CatalogueItem.aliases.like(f"%|{_escape_like(text)}|%", escape="\\"), 1),
            (CatalogueItem.name.like(like, escape="\\"), 2),
            else_=3,
        )
        query = query.where(
            or_(
                CatalogueItem.name.like(like, escape="\\"),
                CatalogueItem.aliases.like(like, escape="\\"),
                Department.name.like(like, escape="\\"),
            )
        )
    else:
        rank = literal(0)
    if village_id is not None:
        query = query.where(offered_in(get_region(session, village_id, level="village")))
    if department:
        query = query.where(Department.code == department)
    if kind:
        query = query.where(CatalogueItem.kind == kind)
    if cursor:
        after_rank, after_code = _decode_cursor(cursor)
        query = query.where(
            or_(rank > after_rank, and_(rank == after_rank, CatalogueItem.code > after_code))
        )
    rows = session.execute(
        query.add_columns(rank.label("rank")).order_by(rank, CatalogueItem.code).limit(limit + 1)
    ).all()
    page = [
        outputs.item_summary(item, dept_name, dept_code)
        for item, dept_name, dept_code, _ in rows[:limit]
    ]
    next_cursor = (
        _encode_cursor(rows[limit - 1].rank, rows[limit - 1][0].code) if len(rows) > limit else None
    )
    return outputs.ItemPage(items=page, next_cursor=next_cursor)


POPULAR_DAYS = 90
POPULAR_CACHE_SECONDS = 60


def popular(
    session: Session, ctx: Context, village_id: int, limit: int
) -> list[outputs.PopularItem]:
    """本村常办: the items the village asked for most in the last 90 days that it still
    offers; empty until it has orders. Ties go to the most recent request. Every resident
    opening the app asks for it, and it moves slowly: each answer is kept for a minute."""
    now = ctx.now()
    cache: dict[tuple[int, int], tuple[Any, list[outputs.PopularItem]]]
    cache = ctx.caches.setdefault("popular", {})
    kept = cache.get((village_id, limit))
    if kept and timedelta(0) <= now - kept[0] < timedelta(seconds=POPULAR_CACHE_SECONDS):
        return kept[1]
    village = get_region(session, village_id, level="village")
    since = now - timedelta(days=POPULAR_DAYS)
    counts = (
        select(
            Order.item_id,
            func.count().label("orders"),
            func.max(Order.id).label("latest"),
        )
        .where(Order.village_id == village_id, Order.submitted_at >= since)
        .group_by(Order.item_id)
        .subquery()
    )
    rows = session.execute(
        select(CatalogueItem, Department.name, Department.code, counts.c.orders)
        .join(counts, counts.c.item_id == CatalogueItem.id)
        .join(Department, Department.id == CatalogueItem.department_id)
        .where(CatalogueItem.retired_at.is_(None), offered_in(village))
        .order_by(counts.c.orders.desc(), counts.c.latest.desc())
        .limit(max(1, min(limit, MAX_PAGE)))
    ).all()
    answer = [
        outputs.PopularItem(item=outputs.item_summary(item, name, code), orders=n)
        for item, name, code, n in rows
    ]
    if len(cache) > 1000:
        cache.clear()
    cache[(village_id, limit)] = (now, answer)
    return answer


def _encode_cursor(rank: int, code: str) -> str:
    return base64.urlsafe_b64encode(f"{rank}:{code}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    """What _encode_cursor wrote: a rank of 0 to 3 and an item code; anything else is refused
    before it reaches the database (a rank past 2^63 would overflow the driver)."""
    try:
        rank, _, code = (
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        )
        if rank in ("0", "1", "2", "3") and 0 < len(code) <= 20 and not text_problem(code):
            return int(rank), code
    except ValueError:
        pass
    raise errors.InvalidInput("翻页参数无效", errors=[{"field": "cursor", "message": "无效"}])


def active_items(session: Session) -> list[outputs.ItemSummary]:
    """Every item not retired, by department then code: what a region may switch on."""
    rows = session.execute(
        select(CatalogueItem, Department.name, Department.code)
        .join(Department, Department.id == CatalogueItem.department_id)
        .where(CatalogueItem.retired_at.is_(None))
        .order_by(Department.code, CatalogueItem.code)
    ).all()
    return [outputs.item_summary(item, name, code) for item, name, code in rows]


def guide(session: Session, code: str, *, village_id: int | None = None) -> outputs.Guide:
    row = session.execute(
        select(CatalogueItem, ItemVersion, Department)
        .join(ItemVersion, ItemVersion.id == CatalogueItem.current_version_id)
        .join(Department, Department.id == ItemVersion.department_id)
        .where(CatalogueItem.code == code, CatalogueItem.retired_at.is_(None))
    ).one_or_none()
    if row is None:
        raise errors.NotFound("没有找到该事项")
    item, version, department = row
    agents: list[Account] = []
    offered: bool | None = None
    if village_id is not None:
        village = get_region(session, village_id, level="village")
        offered = bool(
            session.scalar(
                select(literal(True)).where(CatalogueItem.id == item.id, offered_in(village))
            )
        )
        agents = list(
            session.execute(
                select(Account)
                .where(
                    Account.region_id == village_id,
                    Account.role == "agent",
                    Account.disabled_at.is_(None),
                )
                .order_by(Account.on_duty.desc(), Account.post, Account.id)
            ).scalars()
        )
    named = (
        {
            d.code: d
            for d in session.execute(
                select(Department).where(Department.code.in_(version.co_departments))
            ).scalars()
        }
        if version.co_departments
        else {}
    )
    return outputs.guide_view(
        item,
        version,
        department,
        agents,
        co_departments=[named[c] for c in version.co_departments if c in named],
        offered_in_village=offered,
    )


def departments(session: Session) -> list[outputs.DepartmentView]:
    rows = session.execute(
        select(Department, func.count(CatalogueItem.id))
        .outerjoin(
            CatalogueItem,
            and_(CatalogueItem.department_id == Department.id, CatalogueItem.retired_at.is_(None)),
        )
        .group_by(Department.id)
        .order_by(Department.id)
    ).all()
    return [outputs.DepartmentView(code=d.code, name=d.name, item_count=n) for d, n in rows]
