"""Where items are offered: the towns and villages an item is switched on for."""

from __future__ import annotations

from sqlalchemy import and_, delete, exists, func, insert, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app import errors
from app.catalogue import outputs
from app.catalogue.document import ItemSpec
from app.models import CatalogueItem, Department, ItemEnablement, Region
from app.regions.service import contains, get_region
from app.security.tokens import Principal

TownNotEnabled = errors.error("town_not_enabled", 409, "所属乡镇(街道)没有开通该事项")


def _region_in_scope(session: Session, principal: Principal, region_id: int) -> Region:
    """A town or village the caller manages: admins any of their district, dispatchers their
    town and its villages; anything else is not found."""
    scope = get_region(session, principal.region_id or 0)
    region = session.get(Region, region_id)
    if region is None or region.level not in ("town", "village") or not contains(scope, region):
        raise errors.NotFound("没有找到该乡镇或村")
    return region


def offered_in(region: Region) -> ColumnElement[bool]:
    """The item is switched on for the region and, for a village, for its town as well: a
    village cannot offer what its town has switched off."""
    regions = [region.id] if region.level != "village" else [region.id, region.town_id or 0]
    return and_(
        *(
            exists().where(
                ItemEnablement.item_id == CatalogueItem.id, ItemEnablement.region_id == region_id
            )
            for region_id in regions
        )
    )


def region_items(session: Session, principal: Principal, region_id: int) -> outputs.RegionItems:
    """What a town centre or a village station offers (a village: only what its town does)."""
    region = _region_in_scope(session, principal, region_id)
    rows = session.execute(
        select(CatalogueItem, Department.name, Department.code)
        .join(Department, Department.id == CatalogueItem.department_id)
        .where(CatalogueItem.retired_at.is_(None), offered_in(region))
        .order_by(CatalogueItem.code)
    ).all()
    return outputs.RegionItems(
        region_id=region.id,
        region_name=region.name,
        level=region.level,
        items=[outputs.item_summary(item, name, code) for item, name, code in rows],
    )


def set_enabled(
    session: Session, principal: Principal, region_id: int, codes: list[str], enabled: bool
) -> outputs.EnablementResult:
    """Admins: any town or village of their district; dispatchers: their town and its villages.

    Switching an item off for a town switches it off for the town's villages too; a village
    may switch an item on only while its town has it."""
    region = _region_in_scope(session, principal, region_id)
    rows = session.execute(
        select(CatalogueItem.code, CatalogueItem.id).where(
            CatalogueItem.code.in_(codes), CatalogueItem.retired_at.is_(None)
        )
    ).all()
    items: dict[str, int] = {code: item_id for code, item_id in rows}
    unknown = sorted(set(codes) - set(items))
    if unknown:
        raise errors.InvalidInput(
            "有未知的事项编码",
            errors=[{"field": "itemCodes", "message": f"未知事项 {c}"} for c in unknown],
        )
    ids = list(items.values())
    villages_off = 0
    if enabled:
        if region.level == "village":
            town_has = _enabled_ids(session, region.town_id or 0, ids)
            missing_in_town = sorted(code for code, i in items.items() if i not in town_has)
            if missing_in_town:
                raise TownNotEnabled(
                    "所属乡镇(街道)没有开通这些事项, 请先为乡镇开通: " + "、".join(missing_in_town),
                    itemCodes=missing_in_town,
                )
        present = _enabled_ids(session, region_id, ids)
        missing = [{"region_id": region_id, "item_id": i} for i in ids if i not in present]
        if missing:
            session.execute(insert(ItemEnablement), missing)
    else:
        if region.level == "town":
            result = session.execute(
                delete(ItemEnablement).where(
                    ItemEnablement.region_id.in_(
                        select(Region.id).where(Region.town_id == region_id)
                    ),
                    ItemEnablement.item_id.in_(ids),
                )
            )
            villages_off = int(getattr(result, "rowcount", 0) or 0)
        session.execute(
            delete(ItemEnablement).where(
                ItemEnablement.region_id == region_id, ItemEnablement.item_id.in_(ids)
            )
        )
    total = session.scalar(
        select(func.count())
        .select_from(ItemEnablement)
        .where(ItemEnablement.region_id == region_id)
    )
    return outputs.EnablementResult(
        region_id=region_id, enabled_count=int(total or 0), switched_off_in_villages=villages_off
    )


def _enabled_ids(session: Session, region_id: int, item_ids: list[int]) -> set[int]:
    return set(
        session.execute(
            select(ItemEnablement.item_id).where(
                ItemEnablement.region_id == region_id, ItemEnablement.item_id.in_(item_ids)
            )
        ).scalars()
    )


def enable_new_items(
    session: Session, created: list[tuple[int, ItemSpec]], within: int | None
) -> None:
    """New items switched on at the levels their `enabled` names, in every town and village
    under `within` (a district id; None: everywhere)."""
    if not created:
        return
    query = select(Region.id, Region.level).where(Region.level.in_(("town", "village")))
    if within is not None:
        query = query.where(Region.district_id == within)
    regions = session.execute(query).all()
    rows = [
        {"region_id": region_id, "item_id": item_id}
        for item_id, spec in created
        for region_id, level in regions
        if level in spec.enabled
    ]
    if rows:
        session.execute(insert(ItemEnablement), rows)


def switch_levels(
    session: Session, item_id: int, added: set[str], dropped: set[str], within: int | None
) -> None:
    """Switch one item on at every town or village of the added levels and off at the dropped
    ones. A village never offers what its town does not: dropping towns drops villages, and
    villages are switched on only where their town has the item."""
    in_scope = Region.district_id == within if within is not None else true()
    if "town" in dropped:
        dropped = dropped | {"village"}
    if dropped:
        session.execute(
            delete(ItemEnablement).where(
                ItemEnablement.item_id == item_id,
                ItemEnablement.region_id.in_(
                    select(Region.id).where(Region.level.in_(dropped), in_scope)
                ),
            )
        )
    if not added:
        return
    present = set(
        session.execute(
            select(ItemEnablement.region_id).where(ItemEnablement.item_id == item_id)
        ).scalars()
    )
    regions = session.execute(
        select(Region.id, Region.level, Region.town_id).where(
            Region.level.in_(("town", "village")), in_scope
        )
    ).all()
    towns = [r.id for r in regions if r.level == "town" and "town" in added and r.id not in present]
    with_town = present | set(towns)
    villages = [
        r.id
        for r in regions
        if r.level == "village"
        and "village" in added
        and r.id not in present
        and r.town_id in with_town
    ]
    if towns or villages:
        session.execute(
            insert(ItemEnablement),
            [{"region_id": r, "item_id": item_id} for r in towns + villages],
        )
