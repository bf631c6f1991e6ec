"""The catalogue: import and export, search, guides, versions, and where items are enabled."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import and_, case, delete, exists, func, insert, literal, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app import errors
from app.catalogue import views
from app.catalogue.document import (
    ENABLE_LEVELS,
    CatalogueDocument,
    DepartmentSpec,
    DocumentInvalid,
    FeeSpec,
    ItemSpec,
    Known,
    MaterialSpec,
    Problem,
    check_item,
    read_document,
    same_guide,
    same_item,
)
from app.context import Context
from app.models import (
    Account,
    CatalogueItem,
    Department,
    ItemEnablement,
    ItemVersion,
    Order,
    Region,
)
from app.regions.service import contains, get_region
from app.security.tokens import Principal

MAX_PAGE = 50
ItemRetired = errors.error("item_retired", 409, "该事项已停用")
TownNotEnabled = errors.error("town_not_enabled", 409, "所属乡镇(街道)没有开通该事项")


# --- import and export ----------------------------------------------------------------


async def known_to(session: AsyncSession) -> Known:
    """What a file is checked against besides itself: departments and retired items."""
    departments = await _department_ids(session)
    codes = {id_: code for code, id_ in departments.items()}
    retired = (
        await session.execute(
            select(CatalogueItem, ItemVersion)
            .join(ItemVersion, ItemVersion.id == CatalogueItem.current_version_id)
            .where(CatalogueItem.retired_at.is_not(None))
        )
    ).all()
    return Known(
        departments=frozenset(departments),
        retired={
            item.code: spec_of(version, codes[version.department_id], item)
            for item, version in retired
        },
    )


async def import_file(
    session: AsyncSession,
    data: bytes,
    filename: str,
    *,
    actor_id: int | None,
    enable_within: int | None,
) -> dict[str, int]:
    """Read, check against the database and apply a file: every problem in one round."""
    document = read_document(data, filename, await known_to(session))
    return await import_document(session, document, actor_id=actor_id, enable_within=enable_within)


async def import_document(
    session: AsyncSession,
    document: CatalogueDocument,
    *,
    actor_id: int | None,
    enable_within: int | None,
) -> dict[str, int]:
    """Apply a checked document: new items, a new version where a guide changed, and the
    levels an item is switched on at where those changed; nothing else.

    New items are enabled at the levels their `enabled` names, in every town and village
    under `enable_within` (a district id; None: everywhere); a changed `enabled` switches
    the item on or off at the levels added or dropped, in the same regions. A retired item
    stays retired: the file may repeat it unchanged, never change it. All or nothing: the
    caller's unit of work commits it whole.
    """
    departments = await _department_ids(session)
    codes = {id_: code for code, id_ in departments.items()}
    existing = {
        item.code: (item, spec_of(version, codes[version.department_id], item))
        for item, version in (
            await session.execute(
                select(CatalogueItem, ItemVersion).join(
                    ItemVersion, ItemVersion.id == CatalogueItem.current_version_id
                )
            )
        ).all()
    }
    known = {d.code for d in document.departments} | set(departments)
    problems = [
        Problem(row=f"items {item.code}", field="department", message=f"未知部门 {item.department}")
        for item in document.items
        if item.department not in known
    ] + [
        Problem(row=f"items {spec.code}", field="code", message=f"事项 {spec.code} 已停用")
        for spec in document.items
        if spec.code in existing
        and existing[spec.code][0].retired_at is not None
        and not same_item(spec, existing[spec.code][1])
    ]
    if problems:
        raise DocumentInvalid(problems)
    await _upsert_departments(session, document.departments)
    departments = await _department_ids(session)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    new_specs = [spec for spec in document.items if spec.code not in existing]
    created = await _create_items(session, new_specs, departments, actor_id)
    counts["created"] = len(created)
    for spec in document.items:
        found = existing.get(spec.code)
        if found is None:
            continue
        if same_item(spec, found[1]):
            counts["unchanged"] += 1
            continue
        await _apply_edit(session, found[0], found[1], spec, departments, actor_id, enable_within)
        counts["updated"] += 1
    await _enable_new_items(session, created, enable_within)
    return counts


async def _apply_edit(
    session: AsyncSession,
    item: CatalogueItem,
    current: ItemSpec,
    spec: ItemSpec,
    departments: dict[str, int],
    actor_id: int | None,
    within: int | None,
) -> None:
    """A new guide version if the guide changed; the item switched on or off where the
    levels in `enabled` changed (a level left alone keeps each region's own choice)."""
    if not same_guide(spec, current):
        latest = await session.scalar(
            select(func.max(ItemVersion.version)).where(ItemVersion.item_id == item.id)
        )
        await _new_version(session, item, (latest or 0) + 1, spec, departments, actor_id)
    before, after = set(current.enabled), set(spec.enabled)
    if before != after:
        item.default_enabled = _levels_column(spec.enabled)
        await _switch_levels(session, item.id, after - before, before - after, within)


async def _switch_levels(
    session: AsyncSession, item_id: int, added: set[str], dropped: set[str], within: int | None
) -> None:
    """Switch one item on at every town or village of the added levels and off at the dropped
    ones. A village never offers what its town does not: dropping towns drops villages, and
    villages are switched on only where their town has the item."""
    in_scope = Region.district_id == within if within is not None else true()
    if "town" in dropped:
        dropped = dropped | {"village"}
    if dropped:
        await session.execute(
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
        (
            await session.execute(
                select(ItemEnablement.region_id).where(ItemEnablement.item_id == item_id)
            )
        ).scalars()
    )
    regions = (
        await session.execute(
            select(Region.id, Region.level, Region.town_id).where(
                Region.level.in_(("town", "village")), in_scope
            )
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
        await session.execute(
            insert(ItemEnablement),
            [{"region_id": r, "item_id": item_id} for r in towns + villages],
        )


async def _upsert_departments(session: AsyncSession, specs: list[DepartmentSpec]) -> dict[str, int]:
    current = await _department_ids(session)
    by_code = {d.code: d for d in (await session.execute(select(Department))).scalars()}
    for spec in specs:
        if spec.code in by_code:
            by_code[spec.code].name = spec.name
        else:
            session.add(Department(code=spec.code, name=spec.name))
    await session.flush()
    return current


async def _department_ids(session: AsyncSession) -> dict[str, int]:
    return {
        code: id_
        for id_, code in (await session.execute(select(Department.id, Department.code))).all()
    }


def _levels_column(levels: list[str]) -> str:
    """The `enabled` levels as stored, in one order, so the same set reads back the same."""
    return ",".join(level for level in ENABLE_LEVELS if level in levels)


def _version_values(spec: ItemSpec, departments: dict[str, int]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "aliases": spec.aliases,
        "department_id": departments[spec.department],
        "level": spec.level,
        "kind": spec.kind,
        "mode": spec.mode,
        "conditions": spec.conditions,
        "materials": [msgspec.to_builtins(m) for m in spec.materials],
        "steps": spec.steps,
        "promised_days": spec.promised_days,
        "legal_days": spec.legal_days,
        "fee_fen": spec.fee.amount_fen,
        "fee_basis": spec.fee.basis,
        "legal_basis": spec.legal_basis,
        "in_person": spec.in_person,
        "phone": spec.phone,
        "allow_accept_with_gaps": spec.allow_accept_with_gaps,
    }


def _search_columns(spec: ItemSpec, departments: dict[str, int]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "aliases": "|" + "".join(f"{a}|" for a in spec.aliases),
        "department_id": departments[spec.department],
        "kind": spec.kind,
        "default_enabled": _levels_column(spec.enabled),
    }


async def _create_items(
    session: AsyncSession, specs: list[ItemSpec], departments: dict[str, int], actor_id: int | None
) -> list[tuple[int, ItemSpec]]:
    """New items and their first versions in three statements, however many there are."""
    if not specs:
        return []
    item_ids = (
        (
            await session.execute(
                insert(CatalogueItem).returning(CatalogueItem.id, sort_by_parameter_order=True),
                [{"code": s.code, **_search_columns(s, departments)} for s in specs],
            )
        )
        .scalars()
        .all()
    )
    version_ids = (
        (
            await session.execute(
                insert(ItemVersion).returning(ItemVersion.id, sort_by_parameter_order=True),
                [
                    {
                        "item_id": item_id,
                        "version": 1,
                        "created_by": actor_id,
                        **_version_values(spec, departments),
                    }
                    for item_id, spec in zip(item_ids, specs, strict=True)
                ],
            )
        )
        .scalars()
        .all()
    )
    await session.execute(
        update(CatalogueItem),
        [{"id": i, "current_version_id": v} for i, v in zip(item_ids, version_ids, strict=True)],
    )
    return list(zip(item_ids, specs, strict=True))


async def _new_version(
    session: AsyncSession,
    item: CatalogueItem,
    number: int,
    spec: ItemSpec,
    departments: dict[str, int],
    actor_id: int | None,
) -> ItemVersion:
    version = ItemVersion(
        item_id=item.id, version=number, created_by=actor_id, **_version_values(spec, departments)
    )
    session.add(version)
    await session.flush()
    item.current_version_id = version.id
    for column, value in _search_columns(spec, departments).items():
        setattr(item, column, value)
    return version


async def _enable_new_items(
    session: AsyncSession, created: list[tuple[int, ItemSpec]], within: int | None
) -> None:
    if not created:
        return
    query = select(Region.id, Region.level).where(Region.level.in_(("town", "village")))
    if within is not None:
        query = query.where(Region.district_id == within)
    regions = (await session.execute(query)).all()
    rows = [
        {"region_id": region_id, "item_id": item_id}
        for item_id, spec in created
        for region_id, level in regions
        if level in spec.enabled
    ]
    if rows:
        await session.execute(insert(ItemEnablement), rows)


def spec_of(version: ItemVersion, department_code: str, item: CatalogueItem) -> ItemSpec:
    return ItemSpec(
        code=item.code,
        name=version.name,
        aliases=list(version.aliases),
        department=department_code,
        level=version.level,
        kind=version.kind,
        mode=version.mode,
        conditions=version.conditions,
        materials=[msgspec.convert(m, MaterialSpec) for m in version.materials],
        steps=list(version.steps),
        promised_days=version.promised_days,
        legal_days=version.legal_days,
        fee=FeeSpec(amount_fen=version.fee_fen, basis=version.fee_basis),
        legal_basis=version.legal_basis,
        in_person=version.in_person,
        phone=version.phone,
        enabled=[level for level in item.default_enabled.split(",") if level],
        allow_accept_with_gaps=version.allow_accept_with_gaps,
    )


async def export_document(session: AsyncSession) -> CatalogueDocument:
    departments = (
        (await session.execute(select(Department).order_by(Department.id))).scalars().all()
    )
    codes = {d.id: d.code for d in departments}
    rows = (
        await session.execute(
            select(CatalogueItem, ItemVersion)
            .join(ItemVersion, ItemVersion.id == CatalogueItem.current_version_id)
            .where(CatalogueItem.retired_at.is_(None))
            .order_by(CatalogueItem.code)
        )
    ).all()
    return CatalogueDocument(
        departments=[DepartmentSpec(code=d.code, name=d.name) for d in departments],
        items=[spec_of(version, codes[version.department_id], item) for item, version in rows],
    )


# --- search and guides ------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(
    session: AsyncSession,
    *,
    q: str | None,
    village_id: int | None,
    department: str | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> views.ItemPage:
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
        query = query.where(_offered_in(await get_region(session, village_id, level="village")))
    if department:
        query = query.where(Department.code == department)
    if kind:
        query = query.where(CatalogueItem.kind == kind)
    if cursor:
        after_rank, after_code = _decode_cursor(cursor)
        query = query.where(
            or_(rank > after_rank, and_(rank == after_rank, CatalogueItem.code > after_code))
        )
    rows = (
        await session.execute(
            query.add_columns(rank.label("rank"))
            .order_by(rank, CatalogueItem.code)
            .limit(limit + 1)
        )
    ).all()
    page = [
        views.item_summary(item, dept_name, dept_code)
        for item, dept_name, dept_code, _ in rows[:limit]
    ]
    next_cursor = (
        _encode_cursor(rows[limit - 1].rank, rows[limit - 1][0].code) if len(rows) > limit else None
    )
    return views.ItemPage(items=page, next_cursor=next_cursor)


POPULAR_DAYS = 90
POPULAR_CACHE_SECONDS = 60


async def popular(
    session: AsyncSession, ctx: Context, village_id: int, limit: int
) -> list[views.PopularItem]:
    """本村常办: the items the village asked for most in the last 90 days that it still
    offers; empty until it has orders. Ties go to the most recent request. Every resident
    opening the app asks for it, and it moves slowly: each answer is kept for a minute."""
    now = ctx.now()
    cache: dict[tuple[int, int], tuple[Any, list[views.PopularItem]]]
    cache = ctx.caches.setdefault("popular", {})
    kept = cache.get((village_id, limit))
    if kept and timedelta(0) <= now - kept[0] < timedelta(seconds=POPULAR_CACHE_SECONDS):
        return kept[1]
    village = await get_region(session, village_id, level="village")
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
    rows = (
        await session.execute(
            select(CatalogueItem, Department.name, Department.code, counts.c.orders)
            .join(counts, counts.c.item_id == CatalogueItem.id)
            .join(Department, Department.id == CatalogueItem.department_id)
            .where(CatalogueItem.retired_at.is_(None), _offered_in(village))
            .order_by(counts.c.orders.desc(), counts.c.latest.desc())
            .limit(max(1, min(limit, MAX_PAGE)))
        )
    ).all()
    answer = [
        views.PopularItem(item=views.item_summary(item, name, code), orders=n)
        for item, name, code, n in rows
    ]
    if len(cache) > 1000:
        cache.clear()
    cache[(village_id, limit)] = (now, answer)
    return answer


def _encode_cursor(rank: int, code: str) -> str:
    return base64.urlsafe_b64encode(f"{rank}:{code}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        rank, _, code = (
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        )
        return int(rank), code
    except ValueError:
        raise errors.InvalidInput(
            "翻页参数无效", errors=[{"field": "cursor", "message": "无效"}]
        ) from None


async def guide(session: AsyncSession, code: str, *, village_id: int | None = None) -> views.Guide:
    row = (
        await session.execute(
            select(CatalogueItem, ItemVersion, Department)
            .join(ItemVersion, ItemVersion.id == CatalogueItem.current_version_id)
            .join(Department, Department.id == ItemVersion.department_id)
            .where(CatalogueItem.code == code, CatalogueItem.retired_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        raise errors.NotFound("没有找到该事项")
    item, version, department = row
    agents: list[Account] = []
    offered: bool | None = None
    if village_id is not None:
        village = await get_region(session, village_id, level="village")
        offered = bool(
            await session.scalar(
                select(literal(True)).where(CatalogueItem.id == item.id, _offered_in(village))
            )
        )
        agents = list(
            (
                await session.execute(
                    select(Account)
                    .where(
                        Account.region_id == village_id,
                        Account.role == "agent",
                        Account.disabled_at.is_(None),
                    )
                    .order_by(Account.on_duty.desc(), Account.post, Account.id)
                )
            ).scalars()
        )
    return views.guide_view(item, version, department, agents, offered_in_village=offered)


async def departments(session: AsyncSession) -> list[views.DepartmentView]:
    rows = (
        await session.execute(
            select(Department, func.count(CatalogueItem.id))
            .outerjoin(
                CatalogueItem,
                and_(
                    CatalogueItem.department_id == Department.id, CatalogueItem.retired_at.is_(None)
                ),
            )
            .group_by(Department.id)
            .order_by(Department.id)
        )
    ).all()
    return [views.DepartmentView(code=d.code, name=d.name, item_count=n) for d, n in rows]


# --- administration ---------------------------------------------------------------------


async def save_item(
    session: AsyncSession, ctx: Context, admin: Principal, spec: ItemSpec, *, creating: bool
) -> views.Guide:
    """Create an item, or edit one: a new guide version if the guide changed, and the item
    switched on or off in the admin's district where its `enabled` levels changed."""
    existing = (
        await session.execute(select(CatalogueItem).where(CatalogueItem.code == spec.code))
    ).scalar_one_or_none()
    if creating and existing is not None:
        raise errors.Conflict("事项编码已存在")
    if not creating and existing is None:
        raise errors.NotFound("没有找到该事项")
    if existing is not None and existing.retired_at is not None:
        raise ItemRetired("该事项已停用, 不能修改; 如需修改请先恢复该事项")
    departments = await _department_ids(session)
    problems = check_item(spec, set(departments))
    if problems:
        raise errors.InvalidInput(errors=[{"field": f, "message": m} for f, m in problems])
    if existing is None:
        created = await _create_items(session, [spec], departments, admin.account_id)
        await _enable_new_items(session, created, admin.region_id)
    else:
        version = await session.get(ItemVersion, existing.current_version_id)
        assert version is not None
        codes = {id_: code for code, id_ in departments.items()}
        current = spec_of(version, codes[version.department_id], existing)
        await _apply_edit(
            session, existing, current, spec, departments, admin.account_id, admin.region_id
        )
    return await guide(session, spec.code)


async def retire_item(session: AsyncSession, ctx: Context, code: str) -> None:
    item = (
        await session.execute(select(CatalogueItem).where(CatalogueItem.code == code))
    ).scalar_one_or_none()
    if item is None or item.retired_at is not None:
        raise errors.NotFound("没有找到该事项")
    item.retired_at = ctx.now()


async def restore_item(session: AsyncSession, code: str) -> views.Guide:
    """Bring a retired item back, with its last guide and the regions it was enabled in."""
    item = (
        await session.execute(select(CatalogueItem).where(CatalogueItem.code == code))
    ).scalar_one_or_none()
    if item is None:
        raise errors.NotFound("没有找到该事项")
    if item.retired_at is None:
        raise errors.Conflict("该事项没有停用, 不需要恢复")
    item.retired_at = None
    return await guide(session, code)


async def versions(session: AsyncSession, code: str) -> list[views.VersionView]:
    rows = (
        (
            await session.execute(
                select(ItemVersion)
                .join(CatalogueItem, CatalogueItem.id == ItemVersion.item_id)
                .where(CatalogueItem.code == code)
                .order_by(ItemVersion.version)
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        raise errors.NotFound("没有找到该事项")
    return [
        views.VersionView(
            id=v.id,
            version=v.version,
            name=v.name,
            promised_days=v.promised_days,
            created_at=v.created_at,
        )
        for v in rows
    ]


async def _region_in_scope(session: AsyncSession, principal: Principal, region_id: int) -> Region:
    """A town or village the caller manages: admins any of their district, dispatchers their
    town and its villages; anything else is not found."""
    scope = await get_region(session, principal.region_id or 0)
    region = await session.get(Region, region_id)
    if region is None or region.level not in ("town", "village") or not contains(scope, region):
        raise errors.NotFound("没有找到该乡镇或村")
    return region


def _offered_in(region: Region) -> ColumnElement[bool]:
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


async def region_items(
    session: AsyncSession, principal: Principal, region_id: int
) -> views.RegionItems:
    """What a town centre or a village station offers (a village: only what its town does)."""
    region = await _region_in_scope(session, principal, region_id)
    rows = (
        await session.execute(
            select(CatalogueItem, Department.name, Department.code)
            .join(Department, Department.id == CatalogueItem.department_id)
            .where(CatalogueItem.retired_at.is_(None), _offered_in(region))
            .order_by(CatalogueItem.code)
        )
    ).all()
    return views.RegionItems(
        region_id=region.id,
        region_name=region.name,
        level=region.level,
        items=[views.item_summary(item, name, code) for item, name, code in rows],
    )


async def set_enabled(
    session: AsyncSession, principal: Principal, region_id: int, codes: list[str], enabled: bool
) -> views.EnablementResult:
    """Admins: any town or village of their district; dispatchers: their town and its villages.

    Switching an item off for a town switches it off for the town's villages too; a village
    may switch an item on only while its town has it."""
    region = await _region_in_scope(session, principal, region_id)
    rows = (
        await session.execute(
            select(CatalogueItem.code, CatalogueItem.id).where(
                CatalogueItem.code.in_(codes), CatalogueItem.retired_at.is_(None)
            )
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
            town_has = await _enabled_ids(session, region.town_id or 0, ids)
            missing_in_town = sorted(code for code, i in items.items() if i not in town_has)
            if missing_in_town:
                raise TownNotEnabled(
                    "所属乡镇(街道)没有开通这些事项, 请先为乡镇开通: " + "、".join(missing_in_town),
                    itemCodes=missing_in_town,
                )
        present = await _enabled_ids(session, region_id, ids)
        missing = [{"region_id": region_id, "item_id": i} for i in ids if i not in present]
        if missing:
            await session.execute(insert(ItemEnablement), missing)
    else:
        if region.level == "town":
            result = await session.execute(
                delete(ItemEnablement).where(
                    ItemEnablement.region_id.in_(
                        select(Region.id).where(Region.town_id == region_id)
                    ),
                    ItemEnablement.item_id.in_(ids),
                )
            )
            villages_off = int(getattr(result, "rowcount", 0) or 0)
        await session.execute(
            delete(ItemEnablement).where(
                ItemEnablement.region_id == region_id, ItemEnablement.item_id.in_(ids)
            )
        )
    total = await session.scalar(
        select(func.count())
        .select_from(ItemEnablement)
        .where(ItemEnablement.region_id == region_id)
    )
    return views.EnablementResult(
        region_id=region_id, enabled_count=int(total or 0), switched_off_in_villages=villages_off
    )


async def _enabled_ids(session: AsyncSession, region_id: int, item_ids: list[int]) -> set[int]:
    return set(
        (
            await session.execute(
                select(ItemEnablement.item_id).where(
                    ItemEnablement.region_id == region_id, ItemEnablement.item_id.in_(item_ids)
                )
            )
        ).scalars()
    )
