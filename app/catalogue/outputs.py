"""What the catalogue shows: item summaries for lists, the full guide, admin results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from app.kinds import ItemKind, ItemLevel, ItemMode, Post, RegionLevel
from app.models import Account, CatalogueItem, Department, ItemVersion

KIND_NAMES = {"immediate": "即办件", "promised": "承诺件", "joint": "联办件", "escalated": "上报件"}
MODE_NAMES = {"full": "全程办理", "proxy": "全程代理", "consult": "咨询服务"}
LEVEL_NAMES = {"village": "村(社区)", "town": "乡镇(街道)", "district": "区县"}


class ItemSummary(msgspec.Struct, rename="camel", kw_only=True):
    code: str
    name: str
    department: str
    department_code: str
    kind: ItemKind
    kind_name: str


class PopularItem(msgspec.Struct, rename="camel", kw_only=True):
    item: ItemSummary
    orders: int  # requests from the village in the window


class ItemPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[ItemSummary]
    next_cursor: str | None


class MaterialView(msgspec.Struct, rename="camel", kw_only=True):
    code: str
    name: str
    description: str
    form: str
    form_name: str
    count: int
    required: bool
    photo_ok: bool
    sample_key: str | None
    may_follow: bool  # 容缺受理: this required material may follow after acceptance


class DepartmentRef(msgspec.Struct, rename="camel", kw_only=True):
    code: str
    name: str


class ContactAgent(msgspec.Struct, rename="camel", kw_only=True):
    name: str | None
    work_phone: str | None
    on_duty: bool
    post: Post | None


class Guide(msgspec.Struct, rename="camel", kw_only=True):
    code: str
    version: int
    version_id: int
    name: str
    aliases: list[str]
    department: str  # the lead department (主办部门; for a joint item the lead window)
    department_code: str
    # 联办件: the departments that handle it with the lead, and one line saying who does
    # what ("由区民政局牵头, 会同区残疾人联合会联合办理"); empty and None for other kinds.
    co_departments: list[DepartmentRef]
    joint_note: str | None
    level: ItemLevel
    level_name: str
    kind: ItemKind
    kind_name: str
    mode: ItemMode
    mode_name: str
    conditions: str
    materials: list[MaterialView]
    steps: list[str]
    promised_days: int
    legal_days: int
    fee_fen: int
    fee_basis: str | None
    free: bool
    legal_basis: str
    in_person: bool
    phone: str
    allow_accept_with_gaps: bool  # some material may follow (容缺受理): see materials' mayFollow
    can_submit_online: bool
    # Why not, when it cannot: in person only, or not offered by the village asked about.
    cannot_submit_reason: str | None
    # For consultation-only items: what to do, and whom to call with one tap.
    guidance: str | None
    village_agents: list[ContactAgent]


class DepartmentView(msgspec.Struct, rename="camel", kw_only=True):
    code: str
    name: str
    item_count: int


class VersionView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    version: int
    name: str
    promised_days: int
    created_at: datetime


class EnablementResult(msgspec.Struct, rename="camel", kw_only=True):
    region_id: int
    enabled_count: int
    # Switching an item off for a town switches it off for that many village stations too.
    switched_off_in_villages: int = 0


class RegionItems(msgspec.Struct, rename="camel", kw_only=True):
    region_id: int
    region_name: str
    level: RegionLevel
    items: list[ItemSummary]


class ImportResult(msgspec.Struct, rename="camel", kw_only=True):
    created: int
    updated: int
    unchanged: int


def item_summary(item: CatalogueItem, department_name: str, department_code: str) -> ItemSummary:
    return ItemSummary(
        code=item.code,
        name=item.name,
        department=department_name,
        department_code=department_code,
        kind=item.kind,
        kind_name=KIND_NAMES[item.kind],
    )


def material_views(materials: list[dict[str, object]]) -> list[MaterialView]:
    return [
        MaterialView(
            code=str(m["code"]),
            name=str(m["name"]),
            description=str(m.get("description") or ""),
            form=str(m.get("form", "original")),
            form_name="原件" if m.get("form", "original") == "original" else "复印件",
            count=int(m.get("count", 1)),  # type: ignore[call-overload]
            required=bool(m.get("required", True)),
            photo_ok=bool(m.get("photo_ok", True)),
            sample_key=m.get("sample"),  # type: ignore[arg-type]
            may_follow=bool(m.get("may_follow", False)) and bool(m.get("required", True)),
        )
        for m in materials
    ]


def joint_note(lead: Department, co_departments: Sequence[Department]) -> str:
    """Who handles a joint item (联办件): the lead window and the departments with it."""
    others = "、".join(d.name for d in co_departments)
    return (
        f"联办件: 由{lead.name}牵头, 会同{others}联合办理"
        if others
        else f"联办件: 由{lead.name}牵头"
    )


def guide_view(
    item: CatalogueItem,
    version: ItemVersion,
    department: Department,
    agents: list[Account],
    *,
    co_departments: Sequence[Department] = (),
    offered_in_village: bool | None = None,
) -> Guide:
    """`offered_in_village`: whether the village asked about offers the item (None: none was).
    `co_departments`: those of a joint item, in the guide's order."""
    in_person = version.mode == "consult" or version.in_person
    online = not in_person and offered_in_village is not False
    reason = guidance = None
    if in_person:
        reason = "本事项须本人到场办理, 不能线上委托"
        guidance = (
            f"本事项须本人到{LEVEL_NAMES[version.level]}办理窗口办理。请按上方材料清单备齐材料,"
            f"可先电话咨询 {version.phone},或一键拨打本村代办员电话预约、陪同办理。"
        )
    elif not online:
        reason = "本村便民服务站暂不代办该事项"
        guidance = (
            f"本村暂不能线上委托该事项。可先电话咨询 {version.phone} 了解在哪里办理,"
            "或一键拨打本村代办员电话问询。"
        )
    return Guide(
        code=item.code,
        version=version.version,
        version_id=version.id,
        name=version.name,
        aliases=list(version.aliases),
        department=department.name,
        department_code=department.code,
        co_departments=[DepartmentRef(code=d.code, name=d.name) for d in co_departments],
        joint_note=joint_note(department, co_departments) if version.kind == "joint" else None,
        level=version.level,
        level_name=LEVEL_NAMES[version.level],
        kind=version.kind,
        kind_name=KIND_NAMES[version.kind],
        mode=version.mode,
        mode_name=MODE_NAMES[version.mode],
        conditions=version.conditions,
        materials=material_views(version.materials),
        steps=list(version.steps),
        promised_days=version.promised_days,
        legal_days=version.legal_days,
        fee_fen=version.fee_fen,
        fee_basis=version.fee_basis,
        free=version.fee_fen == 0,
        legal_basis=version.legal_basis,
        in_person=version.in_person,
        phone=version.phone,
        allow_accept_with_gaps=version.allow_accept_with_gaps,
        can_submit_online=online,
        cannot_submit_reason=reason,
        guidance=guidance,
        village_agents=[
            ContactAgent(name=a.name, work_phone=a.work_phone, on_duty=a.on_duty, post=a.post)
            for a in agents
        ],
    )
