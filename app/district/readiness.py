"""Readiness (八有 as data): whether a district's network meets the standard an inspection
from the county asks about, each figure computed from the data when asked, never kept.

The numbers are the 八有 standard's (至少2名代办员 at a town centre, 1 at a village
station; 不少于80项 items at a town, 50 at a village); the rest is what a service needs to
work for residents: agents who can log in and are on duty, messages that reach WeChat,
next year's working days, an HTTPS address for their photos. An admin sees the district;
a dispatcher their town (the service-wide standards too, so they know why something does
not reach them)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import msgspec
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from app.context import Context
from app.job_runs import last_successes
from app.models import Account, CatalogueItem, ItemEnablement, Region
from app.orders.assignment import takes_orders
from app.regions.service import get_region, within
from app.security.tokens import Principal
from app.work_calendar import next_year

CENTRE_AGENTS, STATION_AGENTS = 2, 1
CENTRE_ITEMS, STATION_ITEMS = 80, 50
MAX_LISTED = 200  # regions or people named under one standard; the count is always whole


class Shortfall(msgspec.Struct, rename="camel", kw_only=True):
    """Where a standard does not hold: a region with its figure, or a person."""

    id: int  # the region's, or the person's account
    name: str
    figure: int | None = None  # a region's count
    code: str | None = None  # a region's division code
    post: str | None = None  # a person's: where they are posted


class Standard(msgspec.Struct, rename="camel", kw_only=True):
    code: str
    title: str
    holds: bool
    figure: int  # what was counted: regions meeting it, people unbound, templates, …
    out_of: int | None = None  # of how many
    failing: int = 0  # regions or people short of it
    shortfalls: list[Shortfall] = msgspec.field(default_factory=list)  # the first MAX_LISTED
    note: str | None = None


class Readiness(msgspec.Struct, rename="camel", kw_only=True):
    scope: str  # the district's or the town's name
    checked_at: datetime
    holds: bool  # every standard holds
    standards: list[Standard]


def readiness(session: Session, ctx: Context, principal: Principal) -> Readiness:
    scope = get_region(session, principal.region_id or 0)
    regions = session.scalars(
        select(Region)
        .where(within(scope.id), Region.retired_at.is_(None), Region.level != "district")
        .order_by(Region.code)
    ).all()
    towns = [r for r in regions if r.level == "town"]
    villages = [r for r in regions if r.level == "village"]
    ids = [r.id for r in regions]
    today = ctx.today()

    staff: list[tuple[Account, str]] = [
        (account, name)
        for account, name in session.execute(
            select(Account, Region.name)
            .join(Region, Region.id == Account.region_id)
            .where(Account.region_id.in_([*ids, scope.id]), Account.role != "resident")
            .where(Account.disabled_at.is_(None))
            .order_by(Region.code, Account.id)
        )
    ]
    agents = Counter(a.region_id or 0 for a, _ in staff if a.role == "agent")
    on_duty = Counter(a.region_id or 0 for a, _ in staff if takes_orders(a, today))
    items = _items(session, ids)

    standards = [
        _per_region(
            "centre_agents",
            f"乡镇(街道)便民服务中心代办员不少于{CENTRE_AGENTS}名",
            towns,
            agents,
            CENTRE_AGENTS,
        ),
        _per_region(
            "station_agents",
            f"村(社区)便民服务站代办员不少于{STATION_AGENTS}名",
            villages,
            agents,
            STATION_AGENTS,
        ),
        _per_region(
            "stations_on_duty",
            "每个村(社区)便民服务站今天有已绑定、在岗的代办员",
            villages,
            on_duty,
            1,
        ),
        _per_region(
            "centre_items",
            f"乡镇(街道)帮办代办事项不少于{CENTRE_ITEMS}项",
            towns,
            items,
            CENTRE_ITEMS,
        ),
        _per_region(
            "station_items",
            f"村(社区)帮办代办事项不少于{STATION_ITEMS}项 (本镇也开通的)",
            villages,
            items,
            STATION_ITEMS,
        ),
        _unbound(staff),
        _templates(ctx),
        _next_year(session, ctx),
        _https(ctx),
        _backup(session, ctx),
    ]
    return Readiness(
        scope=scope.name,
        checked_at=ctx.now(),
        holds=all(s.holds for s in standards),
        standards=standards,
    )


def _items(session: Session, region_ids: list[int]) -> Counter[int]:
    """Items in service switched on per region; for a village, only those its town offers
    too (a village cannot offer what its town has switched off)."""
    town_on = aliased(ItemEnablement)
    rows = session.execute(
        select(ItemEnablement.region_id, func.count())
        .join(Region, Region.id == ItemEnablement.region_id)
        .join(CatalogueItem, CatalogueItem.id == ItemEnablement.item_id)
        .outerjoin(
            town_on,
            and_(town_on.item_id == ItemEnablement.item_id, town_on.region_id == Region.town_id),
        )
        .where(
            ItemEnablement.region_id.in_(region_ids),
            CatalogueItem.retired_at.is_(None),
            (Region.level == "town") | town_on.id.is_not(None),
        )
        .group_by(ItemEnablement.region_id)
    ).all()
    return Counter({region_id: count for region_id, count in rows})


def _per_region(
    code: str, title: str, regions: list[Region], figures: Counter[int], least: int
) -> Standard:
    short = [r for r in regions if figures[r.id] < least]
    return Standard(
        code=code,
        title=title,
        holds=not short,
        figure=len(regions) - len(short),
        out_of=len(regions),
        failing=len(short),
        shortfalls=[
            Shortfall(id=r.id, name=r.name, figure=figures[r.id], code=r.code)
            for r in short[:MAX_LISTED]
        ],
    )


def _unbound(staff: list[tuple[Account, str]]) -> Standard:
    unbound = [(a, region) for a, region in staff if a.openid is None]
    return Standard(
        code="staff_bound",
        title="工作人员都已用微信绑定账号",
        holds=not unbound,
        figure=len(staff) - len(unbound),
        out_of=len(staff),
        failing=len(unbound),
        shortfalls=[
            Shortfall(id=a.id, name=a.name or "", post=region) for a, region in unbound[:MAX_LISTED]
        ],
        note="未绑定的可由管理员重新生成绑定码" if unbound else None,
    )


def _templates(ctx: Context) -> Standard:
    kinds = sorted(ctx.templates())
    return Standard(
        code="subscription_templates",
        title="已配置微信订阅消息模板 (否则通知只进小程序消息中心)",
        holds=bool(kinds),
        figure=len(kinds),
        note="、".join(kinds) or "DAIBAN_WECHAT_TEMPLATES 未设置",
    )


def _next_year(session: Session, ctx: Context) -> Standard:
    found = next_year(session, ctx)
    return Standard(
        code="next_year_calendar",
        title=f"已录入{found.year}年放假和调休安排 (每年11月起检查)",
        holds=not found.missing,
        figure=found.year,
        note=None if found.official else f"管理员在 /mp/v1/admin/calendar/{found.year} 录入",
    )


def _https(ctx: Context) -> Standard:
    storage = ctx.settings.storage
    secure = (
        storage.minio_public_secure
        if storage.backend == "minio"
        else storage.public_url.startswith("https://")
    )
    return Standard(
        code="https",
        title="群众上传和查看证件照片的地址使用 HTTPS",
        holds=secure,
        figure=int(secure),
    )


def _backup(session: Session, ctx: Context) -> Standard:
    """The newest backup that finished well, by the nightly job or `daiban backup`."""
    last = last_successes(session).get("backup")
    limit = ctx.settings.backup.max_age_hours
    age = int((ctx.now() - last).total_seconds() // 3600) if last else None
    return Standard(
        code="backup",
        title=f"{limit}小时内有一份完好的备份",
        holds=age is not None and age < limit,
        figure=age if age is not None else 0,
        out_of=limit,
        note=(
            f"最近一次备份在{age}小时前"
            if age is not None
            else "没有备份记录: 设置 DAIBAN_BACKUP_DIR, 或运行 daiban backup"
        ),
    )
