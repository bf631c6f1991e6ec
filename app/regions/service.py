"""Regions: the tree, look-ups, whether one region lies inside another, and an admin's
changes to their district's tree (add, rename, retire; each audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app import audit, errors
from app.context import Context
from app.kinds import RegionLevel
from app.models import Region
from app.security.tokens import Principal
from app.text import text_problem

MAX_NAME = 60
LEVEL_NAMES = {"district": "区县", "town": "乡镇(街道)", "village": "村(社区)"}
RegionRetired = errors.error("region_retired", 409, "该地区已撤销")


class RegionNode(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    code: str
    name: str
    level: str
    children: list[RegionNode] = msgspec.field(default_factory=list)


def region_tree(session: Session) -> list[RegionNode]:
    """The regions in service (retired ones left out), as a tree."""
    rows = session.scalars(
        select(Region).where(Region.retired_at.is_(None)).order_by(Region.code)
    ).all()
    nodes = {r.id: RegionNode(id=r.id, code=r.code, name=r.name, level=r.level) for r in rows}
    roots: list[RegionNode] = []
    for r in rows:
        parent = nodes.get(r.parent_id) if r.parent_id else None
        (parent.children if parent else roots).append(nodes[r.id])
    return roots


def get_region(
    session: Session, region_id: int, *, level: str | None = None, in_service: bool = False
) -> Region:
    """The region, or NotFound; with `in_service`, a retired one is refused (RegionRetired)."""
    region = session.get(Region, region_id)
    if region is None or (level and region.level != level):
        raise errors.NotFound("没有找到该地区" if not level else f"没有找到该{LEVEL_NAMES[level]}")
    if in_service and region.retired_at is not None:
        raise RegionRetired(f"{region.name}已撤销, 请选择现有的{LEVEL_NAMES[region.level]}")
    return region


def contains(scope: Region, region: Region) -> bool:
    """Whether `region` lies inside `scope` (a region contains itself)."""
    return scope.id in (region.id, region.town_id, region.district_id)


def within(scope_id: Any) -> ColumnElement[bool]:
    """`contains` in SQL: the region is the scope (a town, a district) or lies inside it.
    `scope_id` is a value or a bind parameter."""
    return or_(Region.id == scope_id, Region.town_id == scope_id, Region.district_id == scope_id)


def new_region(code: str, name: str, parent: Region | None) -> Region:
    level = {None: "district", "district": "town", "town": "village"}[
        parent.level if parent else None
    ]
    return Region(
        code=code,
        name=name,
        level=level,
        parent_id=parent.id if parent else None,
        district_id=(parent.district_id or parent.id) if parent else None,
        town_id=(parent.id if parent.level == "town" else None) if parent else None,
    )


# --- statistical division codes (统计用区划代码), PP CC DD TTT VVV ----------------------


def level_of(code: str) -> RegionLevel | None:
    """The level a 12-digit code names; None above the district (province, city)."""
    if code[4:6] == "00":
        return None
    if code[6:] == "000000":
        return "district"
    if code[9:] == "000":
        return "town"
    return "village"


def parent_code(code: str, level: RegionLevel) -> str | None:
    return {"district": None, "town": code[:6] + "000000", "village": code[:9] + "000"}[level]


def code_problem(code: str) -> str | None:
    return None if len(code) == 12 and code.isdigit() else "区划代码应为12位数字"


def name_problem(name: str) -> str | None:
    if not name:
        return "缺少名称"
    if len(name) > MAX_NAME:
        return f"名称超过{MAX_NAME}个字"
    if problem := text_problem(name):
        return f"名称{problem}"
    return None


# --- an admin's changes ------------------------------------------------------------------


class RegionView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    retired_at: datetime | None


def region_view(region: Region) -> RegionView:
    return RegionView(
        id=region.id,
        code=region.code,
        name=region.name,
        level=region.level,
        parent_id=region.parent_id,
        retired_at=region.retired_at,
    )


def _district(session: Session, admin: Principal) -> Region:
    return get_region(session, admin.region_id or 0, level="district")


def in_district(session: Session, admin: Principal, region_id: int) -> Region:
    district = _district(session, admin)
    region = session.get(Region, region_id)
    if region is None or not contains(district, region):
        raise errors.NotFound("没有找到该地区")
    return region


def managed_regions(session: Session, principal: Principal) -> list[RegionView]:
    """The towns and villages a caller manages, in code order: an admin's district, a
    dispatcher's town and its villages; retired ones left out."""
    rows = session.scalars(
        select(Region)
        .where(
            within(principal.region_id),
            Region.level.in_(("town", "village")),
            Region.retired_at.is_(None),
        )
        .order_by(Region.code)
    )
    return [region_view(r) for r in rows]


def district_regions(session: Session, admin: Principal) -> list[RegionView]:
    """Every region of the admin's district in code order, retired ones included."""
    district = _district(session, admin)
    rows = session.scalars(select(Region).where(within(district.id)).order_by(Region.code))
    return [region_view(r) for r in rows]


def add_region(
    session: Session, ctx: Context, admin: Principal, code: str, name: str
) -> RegionView:
    """A new town or village of the admin's district, its level from its code; the code of
    a retired region brings it back (with the name given)."""
    name = name.strip()
    problems = [
        {"field": field, "message": message}
        for field, message in (("code", code_problem(code)), ("name", name_problem(name)))
        if message
    ]
    if problems:
        raise errors.InvalidInput("填写的内容有误", errors=problems)
    district = _district(session, admin)
    level = level_of(code)
    if level not in ("town", "village") or not code.startswith(district.code[:6]):
        message = f"应为 {district.name} ({district.code[:6]}) 的乡镇(街道)或村(社区)代码"
        raise errors.InvalidInput("区划代码不对", errors=[{"field": "code", "message": message}])
    region = session.scalar(select(Region).where(Region.code == code))
    if region is not None and region.retired_at is None:
        raise errors.Conflict(f"区划代码 {code} 已是 {region.name}")
    parent = session.scalar(select(Region).where(Region.code == parent_code(code, level)))
    if parent is None or parent.retired_at is not None:
        raise errors.Conflict("请先添加或恢复上级乡镇(街道)")
    now = ctx.now()
    if region is None:
        region = new_region(code, name, parent)
        session.add(region)
        action = "region.add"
    else:
        region.name, region.retired_at = name, None
        action = "region.restore"
    session.flush()
    audit.record(session, admin, action, f"region:{region.id}", now, {"code": code, "name": name})
    return region_view(region)


def rename_region(
    session: Session, ctx: Context, admin: Principal, region_id: int, name: str
) -> RegionView:
    name = name.strip()
    if problem := name_problem(name):
        raise errors.InvalidInput("填写的内容有误", errors=[{"field": "name", "message": problem}])
    region = in_district(session, admin, region_id)
    before, region.name = region.name, name
    session.flush()
    detail = {"from": before, "to": name}
    audit.record(session, admin, "region.rename", f"region:{region.id}", ctx.now(), detail)
    return region_view(region)


def retire(session: Session, regions: list[Region], now: datetime) -> list[Region]:
    """Retire the regions and, for a town, its villages in service; the regions retired, in
    code order. Residents, staff and new orders can no longer choose them; what is there
    already stays and goes on."""
    ids = {r.id for r in regions}
    towns = [r.id for r in regions if r.level == "town"]
    if towns:
        ids |= set(
            session.scalars(
                select(Region.id).where(Region.town_id.in_(towns), Region.retired_at.is_(None))
            )
        )
    session.execute(
        update(Region)
        .where(Region.id.in_(ids), Region.retired_at.is_(None))
        .values(retired_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return list(session.scalars(select(Region).where(Region.id.in_(ids)).order_by(Region.code)))
