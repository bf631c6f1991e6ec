"""Changing the catalogue: import and export of files, admin edits, versions, retiring."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app import errors
from app.catalogue import outputs, queries
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
from app.catalogue.enablement import enable_new_items, switch_levels
from app.context import Context
from app.models import (
    CatalogueItem,
    Department,
    ItemVersion,
)
from app.security.tokens import Principal

if TYPE_CHECKING:
    from app.db import Database

ItemRetired = errors.error("item_retired", 409, "该事项已停用")


# --- import and export ----------------------------------------------------------------


def known_to(session: Session) -> Known:
    """What a file is checked against besides itself: departments and retired items."""
    departments = _department_ids(session)
    codes = {id_: code for code, id_ in departments.items()}
    retired = session.execute(
        select(CatalogueItem, ItemVersion)
        .join(ItemVersion, ItemVersion.id == CatalogueItem.current_version_id)
        .where(CatalogueItem.retired_at.is_not(None))
    ).all()
    return Known(
        departments=frozenset(departments),
        retired={
            item.code: spec_of(version, codes[version.department_id], item)
            for item, version in retired
        },
    )


async def read_file(db: Database, data: bytes, filename: str) -> CatalogueDocument:
    """Read and check a file against the database, every problem in one round (raises
    DocumentInvalid). The file is parsed in a worker thread, outside any transaction:
    `import_document` then applies it in one write, checking again what it relies on."""
    known = await db.run_read(known_to)
    return await anyio.to_thread.run_sync(read_document, data, filename, known)


def import_document(
    session: Session,
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
    departments = _department_ids(session)
    codes = {id_: code for code, id_ in departments.items()}
    existing = {
        item.code: (item, spec_of(version, codes[version.department_id], item))
        for item, version in session.execute(
            select(CatalogueItem, ItemVersion).join(
                ItemVersion, ItemVersion.id == CatalogueItem.current_version_id
            )
        ).all()
    }
    known = {d.code for d in document.departments} | set(departments)
    problems = [
        Problem(row=f"items {item.code}", field=field, message=f"未知部门 {code}")
        for item in document.items
        for field, code in [
            ("department", item.department),
            *((f"co_departments[{k}]", c) for k, c in enumerate(item.co_departments)),
        ]
        if code not in known
    ] + [
        Problem(row=f"items {spec.code}", field="code", message=f"事项 {spec.code} 已停用")
        for spec in document.items
        if spec.code in existing
        and existing[spec.code][0].retired_at is not None
        and not same_item(spec, existing[spec.code][1])
    ]
    if problems:
        raise DocumentInvalid(problems)
    _upsert_departments(session, document.departments)
    departments = _department_ids(session)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    new_specs = [spec for spec in document.items if spec.code not in existing]
    created = _create_items(session, new_specs, departments, actor_id)
    counts["created"] = len(created)
    for spec in document.items:
        found = existing.get(spec.code)
        if found is None:
            continue
        if same_item(spec, found[1]):
            counts["unchanged"] += 1
            continue
        _apply_edit(session, found[0], found[1], spec, departments, actor_id, enable_within)
        counts["updated"] += 1
    enable_new_items(session, created, enable_within)
    return counts


def _apply_edit(
    session: Session,
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
        latest = session.scalar(
            select(func.max(ItemVersion.version)).where(ItemVersion.item_id == item.id)
        )
        _new_version(session, item, (latest or 0) + 1, spec, departments, actor_id)
    before, after = set(current.enabled), set(spec.enabled)
    if before != after:
        item.default_enabled = _levels_column(spec.enabled)
        switch_levels(session, item.id, after - before, before - after, within)


def _upsert_departments(session: Session, specs: list[DepartmentSpec]) -> dict[str, int]:
    current = _department_ids(session)
    by_code = {d.code: d for d in session.execute(select(Department)).scalars()}
    for spec in specs:
        if spec.code in by_code:
            by_code[spec.code].name = spec.name
        else:
            session.add(Department(code=spec.code, name=spec.name))
    session.flush()
    return current


def _department_ids(session: Session) -> dict[str, int]:
    return {
        code: id_ for id_, code in session.execute(select(Department.id, Department.code)).all()
    }


def _levels_column(levels: list[str]) -> str:
    """The `enabled` levels as stored, in one order, so the same set reads back the same."""
    return ",".join(level for level in ENABLE_LEVELS if level in levels)


def _version_values(spec: ItemSpec, departments: dict[str, int]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "aliases": spec.aliases,
        "department_id": departments[spec.department],
        "co_departments": list(spec.co_departments),
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
        # Derived from the materials' marks, for whoever asks of the item alone.
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


def _create_items(
    session: Session, specs: list[ItemSpec], departments: dict[str, int], actor_id: int | None
) -> list[tuple[int, ItemSpec]]:
    """New items and their first versions in three statements, however many there are."""
    if not specs:
        return []
    item_ids = (
        (
            session.execute(
                insert(CatalogueItem).returning(CatalogueItem.id, sort_by_parameter_order=True),
                [{"code": s.code, **_search_columns(s, departments)} for s in specs],
            )
        )
        .scalars()
        .all()
    )
    version_ids = (
        (
            session.execute(
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
    session.execute(
        update(CatalogueItem),
        [{"id": i, "current_version_id": v} for i, v in zip(item_ids, version_ids, strict=True)],
    )
    return list(zip(item_ids, specs, strict=True))


def _new_version(
    session: Session,
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
    session.flush()
    item.current_version_id = version.id
    for column, value in _search_columns(spec, departments).items():
        setattr(item, column, value)
    return version


def spec_of(version: ItemVersion, department_code: str, item: CatalogueItem) -> ItemSpec:
    return ItemSpec(
        code=item.code,
        name=version.name,
        aliases=list(version.aliases),
        department=department_code,
        co_departments=list(version.co_departments),
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
    )


def item_document(session: Session, code: str) -> CatalogueDocument:
    """One item (retired or not) as a document of the import format: what an admin edits."""
    row = session.execute(
        select(CatalogueItem, ItemVersion, Department)
        .join(ItemVersion, ItemVersion.id == CatalogueItem.current_version_id)
        .join(Department, Department.id == ItemVersion.department_id)
        .where(CatalogueItem.code == code)
    ).one_or_none()
    if row is None:
        raise errors.NotFound("没有找到该事项")
    item, version, department = row
    return CatalogueDocument(
        departments=[DepartmentSpec(code=department.code, name=department.name)],
        items=[spec_of(version, department.code, item)],
    )


def retired_items(session: Session) -> list[outputs.ItemSummary]:
    rows = session.execute(
        select(CatalogueItem, Department.name, Department.code)
        .join(Department, Department.id == CatalogueItem.department_id)
        .where(CatalogueItem.retired_at.is_not(None))
        .order_by(CatalogueItem.code)
    ).all()
    return [outputs.item_summary(item, name, code) for item, name, code in rows]


def export_document(session: Session) -> CatalogueDocument:
    departments = session.execute(select(Department).order_by(Department.id)).scalars().all()
    codes = {d.id: d.code for d in departments}
    rows = session.execute(
        select(CatalogueItem, ItemVersion)
        .join(ItemVersion, ItemVersion.id == CatalogueItem.current_version_id)
        .where(CatalogueItem.retired_at.is_(None))
        .order_by(CatalogueItem.code)
    ).all()
    return CatalogueDocument(
        departments=[DepartmentSpec(code=d.code, name=d.name) for d in departments],
        items=[spec_of(version, codes[version.department_id], item) for item, version in rows],
    )


# --- administration ---------------------------------------------------------------------


def save_item(
    session: Session, ctx: Context, admin: Principal, spec: ItemSpec, *, creating: bool
) -> outputs.Guide:
    """Create an item, or edit one: a new guide version if the guide changed, and the item
    switched on or off in the admin's district where its `enabled` levels changed."""
    existing = session.execute(
        select(CatalogueItem).where(CatalogueItem.code == spec.code)
    ).scalar_one_or_none()
    if creating and existing is not None:
        raise errors.Conflict("事项编码已存在")
    if not creating and existing is None:
        raise errors.NotFound("没有找到该事项")
    if existing is not None and existing.retired_at is not None:
        raise ItemRetired("该事项已停用, 不能修改; 如需修改请先恢复该事项")
    departments = _department_ids(session)
    problems = check_item(spec, set(departments))
    if problems:
        raise errors.InvalidInput(errors=[{"field": f, "message": m} for f, m in problems])
    if existing is None:
        created = _create_items(session, [spec], departments, admin.account_id)
        enable_new_items(session, created, admin.region_id)
    else:
        version = session.get(ItemVersion, existing.current_version_id)
        assert version is not None
        codes = {id_: code for code, id_ in departments.items()}
        current = spec_of(version, codes[version.department_id], existing)
        _apply_edit(
            session, existing, current, spec, departments, admin.account_id, admin.region_id
        )
    return queries.guide(session, spec.code)


def retire_item(session: Session, ctx: Context, code: str) -> None:
    item = session.execute(
        select(CatalogueItem).where(CatalogueItem.code == code)
    ).scalar_one_or_none()
    if item is None or item.retired_at is not None:
        raise errors.NotFound("没有找到该事项")
    item.retired_at = ctx.now()


def restore_item(session: Session, code: str) -> outputs.Guide:
    """Bring a retired item back, with its last guide and the regions it was enabled in."""
    item = session.execute(
        select(CatalogueItem).where(CatalogueItem.code == code)
    ).scalar_one_or_none()
    if item is None:
        raise errors.NotFound("没有找到该事项")
    if item.retired_at is None:
        raise errors.Conflict("该事项没有停用, 不需要恢复")
    item.retired_at = None
    return queries.guide(session, code)


def versions(session: Session, code: str) -> list[outputs.VersionView]:
    rows = (
        (
            session.execute(
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
        outputs.VersionView(
            id=v.id,
            version=v.version,
            name=v.name,
            promised_days=v.promised_days,
            created_at=v.created_at,
        )
        for v in rows
    ]
