"""Regions: the tree, look-ups, and whether one region lies inside another."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import errors
from app.models import Region


class RegionNode(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    code: str
    name: str
    level: str
    children: list[RegionNode] = msgspec.field(default_factory=list)


def region_tree(session: Session) -> list[RegionNode]:
    rows = session.execute(select(Region).order_by(Region.code)).scalars().all()
    nodes = {r.id: RegionNode(id=r.id, code=r.code, name=r.name, level=r.level) for r in rows}
    roots: list[RegionNode] = []
    for r in rows:
        parent = nodes.get(r.parent_id) if r.parent_id else None
        (parent.children if parent else roots).append(nodes[r.id])
    return roots


def get_region(session: Session, region_id: int, *, level: str | None = None) -> Region:
    region = session.get(Region, region_id)
    if region is None or (level and region.level != level):
        raise errors.NotFound("没有找到该地区" if not level else f"没有找到该{LEVEL_NAMES[level]}")
    return region


LEVEL_NAMES = {"district": "区县", "town": "乡镇(街道)", "village": "村(社区)"}


def contains(scope: Region, region: Region) -> bool:
    """Whether `region` lies inside `scope` (a region contains itself)."""
    return scope.id in (region.id, region.town_id, region.district_id)


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
