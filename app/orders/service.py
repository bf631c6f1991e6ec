"""Orders: one-tap submission and every move of the transition table, with the clock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.context import Context
from app.models import (
    Account,
    CatalogueItem,
    ItemEnablement,
    ItemVersion,
    Order,
    OrderEvent,
    OrderNumberCounter,
    Region,
    Upload,
)
from app.orders.calendar import work_calendar
from app.orders.states import ACTION_NAMES, ALLOWED_TRANSITIONS, STATUS_NAMES
from app.security.tokens import Principal

OPEN_FOR_REASSIGN = (
    "submitted",
    "assigned",
    "reviewing",
    "supplement_required",
    "accepted",
    "on_hold",
)

IllegalTransition = errors.error("illegal_transition", 409, "当前状态下不能进行该操作")
IdempotencyConflict = errors.error("idempotency_conflict", 422, "同一请求标识已用于另一份委托")
ProfileIncomplete = errors.error(
    "profile_incomplete", 409, "请先完善姓名、身份证号、手机号和所在村"
)
ItemNotOnline = errors.error("item_not_online", 422, "该事项须本人到场办理,不能线上委托")
DelayExplanationRequired = errors.error(
    "delay_explanation_required", 409, "已超过承诺时限,请先填写延期说明"
)


def illegal(order: Order, action: str) -> errors.DomainError:
    """409 naming the order's current status, so the phone can refresh to the truth."""
    return IllegalTransition(
        f"办件当前为“{STATUS_NAMES[order.status]}”,不能{ACTION_NAMES.get(action, action)}",
        currentStatus=order.status,
        currentStatusName=STATUS_NAMES[order.status],
    )


@dataclass
class SubmitInput:
    item_code: str
    materials: dict[str, list[int]]
    note: str | None = None
    green_channel: bool = False
    idempotency_key: str | None = None


def request_hash(data: SubmitInput) -> str:
    body = msgspec.json.encode(
        {
            "item": data.item_code,
            "materials": {k: sorted(v) for k, v in sorted(data.materials.items())},
            "note": data.note,
            "green": data.green_channel,
        }
    )
    return hashlib.sha256(body).hexdigest()


async def submit(
    session: AsyncSession, ctx: Context, principal: Principal, data: SubmitInput
) -> int:
    """Submit a request for the resident; returns the order id (the same one on a retry)."""
    digest = request_hash(data)
    if data.idempotency_key:
        existing = await _by_idempotency_key(session, principal.account_id, data.idempotency_key)
        if existing is not None:
            if existing[1] != digest:
                raise IdempotencyConflict()
            return existing[0]
    resident = await session.get(Account, principal.account_id)
    assert resident is not None
    if not (resident.name and resident.phone_enc and resident.id_number_enc and resident.region_id):
        raise ProfileIncomplete()
    village = await session.get(Region, resident.region_id)
    assert village is not None and village.town_id and village.district_id
    row = (
        await session.execute(
            select(CatalogueItem.id, ItemVersion)
            .join(ItemVersion, ItemVersion.id == CatalogueItem.current_version_id)
            .join(
                ItemEnablement,
                (ItemEnablement.item_id == CatalogueItem.id)
                & (ItemEnablement.region_id == village.id),
            )
            .where(CatalogueItem.code == data.item_code, CatalogueItem.retired_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        raise errors.NotFound("本村暂不能办理该事项")
    item_id, version = row
    if version.mode == "consult" or version.in_person:
        raise ItemNotOnline()
    materials = await _check_materials(session, principal, version, data.materials, at_submit=True)
    now = ctx.now()
    order_values = {
        "number": await next_number(session, ctx, now),
        "resident_id": principal.account_id,
        "village_id": village.id,
        "town_id": village.town_id,
        "district_id": village.district_id,
        "item_id": item_id,
        "item_version_id": version.id,
        "status": "submitted",
        "channel": "mini_program" if principal.role == "resident" else "agent",
        "green_channel": data.green_channel,
        "note": data.note,
        "materials": materials,
        "idempotency_key": data.idempotency_key,
        "request_hash": digest,
        "submitted_at": now,
        "promised_days": version.promised_days,
        "updated_at": now,
    }
    try:
        async with session.begin_nested():
            order_id = (
                await session.execute(insert(Order).values(order_values).returning(Order.id))
            ).scalar_one()
    except IntegrityError:
        # The same key raced in from another request (a retry on a weak signal): same answer.
        existing = await _by_idempotency_key(
            session, principal.account_id, data.idempotency_key or ""
        )
        if existing is None:
            raise
        if existing[1] != digest:
            raise IdempotencyConflict() from None
        return existing[0]
    await _attach_uploads(session, order_id, materials)
    await _event(session, order_id, principal, now, "submit", None, "submitted", data.note)
    return order_id


async def _by_idempotency_key(
    session: AsyncSession, resident_id: int, key: str
) -> tuple[int, str] | None:
    row = (
        await session.execute(
            select(Order.id, Order.request_hash).where(
                Order.resident_id == resident_id, Order.idempotency_key == key
            )
        )
    ).one_or_none()
    return (row[0], row[1] or "") if row else None


async def next_number(session: AsyncSession, ctx: Context, now: datetime) -> str:
    """DB + business date + a 6-digit daily sequence, unique across processes (one statement)."""
    day = now.astimezone(ctx.settings.zone).date()
    dialect = session.bind.dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        make(OrderNumberCounter)
        .values(day=day, last=1)
        .on_conflict_do_update(
            index_elements=[OrderNumberCounter.day], set_={"last": OrderNumberCounter.last + 1}
        )
        .returning(OrderNumberCounter.last)
    )
    sequence = (await session.execute(statement)).scalar_one()
    return f"DB{day:%Y%m%d}{sequence:06d}"


async def _check_materials(
    session: AsyncSession,
    principal: Principal,
    version: ItemVersion,
    given: dict[str, list[int]],
    *,
    at_submit: bool,
    only: set[str] | None = None,
) -> dict[str, Any]:
    """Every slot of the guide with its uploads; each problem listed, none hidden."""
    slots = {m["code"]: m for m in version.materials}
    problems = [
        {"field": f"materials.{code}", "message": "该事项没有这项材料"}
        for code in given
        if code not in slots
    ]
    upload_ids = sorted({i for ids in given.values() for i in ids})
    uploads = {}
    if upload_ids:
        uploads = {
            u.id: u
            for u in (
                await session.execute(select(Upload).where(Upload.id.in_(upload_ids)))
            ).scalars()
        }
    for code, ids in given.items():
        for upload_id in ids:
            upload = uploads.get(upload_id)
            if upload is None or upload.owner_id != principal.account_id:
                problems.append(
                    {"field": f"materials.{code}", "message": f"没有找到文件 {upload_id}"}
                )
            elif upload.status != "ready":
                problems.append({"field": f"materials.{code}", "message": "文件还没有上传完成"})
            elif upload.order_id is not None:
                problems.append({"field": f"materials.{code}", "message": "该文件已用于其他办件"})
    wanted = only if only is not None else {c for c, m in slots.items() if m.get("required", True)}
    if at_submit and version.allow_accept_with_gaps:
        wanted = set()
    for code in sorted(wanted):
        if code in slots and not given.get(code):
            problems.append(
                {"field": f"materials.{code}", "message": f"请上传{slots[code]['name']}"}
            )
    if problems:
        raise errors.InvalidInput("材料有问题,请按提示补充", errors=problems)
    return {
        code: {
            "uploads": list(given.get(code, [])),
            "state": "submitted" if given.get(code) else "empty",
            "reason": None,
        }
        for code in slots
    }


async def _check_own_uploads(
    session: AsyncSession, principal: Principal, ids: list[int], field_name: str
) -> None:
    """Result photos: the actor's own finished uploads, not yet used by any order."""
    if not ids:
        return
    rows = (
        await session.execute(
            select(Upload.id).where(
                Upload.id.in_(ids),
                Upload.owner_id == principal.account_id,
                Upload.status == "ready",
                Upload.order_id.is_(None),
            )
        )
    ).scalars()
    unusable = sorted(set(ids) - set(rows))
    if unusable:
        raise errors.InvalidInput(
            errors=[{"field": field_name, "message": f"文件 {i} 不可用"} for i in unusable]
        )


async def _attach_uploads(session: AsyncSession, order_id: int, materials: dict[str, Any]) -> None:
    ids = [i for slot in materials.values() for i in slot["uploads"]]
    if ids:
        await session.execute(
            update(Upload)
            .where(Upload.id.in_(ids), Upload.order_id.is_(None))
            .values(order_id=order_id)
        )


async def _event(
    session: AsyncSession,
    order_id: int,
    principal: Principal | None,
    at: datetime,
    action: str,
    from_status: str | None,
    to_status: str,
    note: str | None,
    data: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(OrderEvent).values(
            order_id=order_id,
            at=at,
            actor_id=principal.account_id if principal else None,
            actor_role=principal.role if principal else "system",
            action=action,
            from_status=from_status,
            to_status=to_status,
            note=note,
            data=data,
        )
    )


# --- moves ------------------------------------------------------------------------------


@dataclass
class ActionInput:
    reason: str | None = None
    agent_id: int | None = None
    missing: list[dict[str, str]] = field(default_factory=list)  # [{code, reason}]
    materials: dict[str, list[int]] = field(default_factory=dict)
    outcome: str | None = None
    fees_collected_fen: int = 0
    result_upload_ids: list[int] = field(default_factory=list)
    delivery_method: str | None = None


async def order_in_scope(session: AsyncSession, principal: Principal, order_id: int) -> Order:
    """Residents: their own; agents: assigned to them or in their village; dispatchers: their
    town; admins: their district. Anything else is 404."""
    order = await session.get(Order, order_id)
    if order is None or not in_scope(principal, order):
        raise errors.NotFound("没有找到该办件")
    return order


def in_scope(principal: Principal, order: Order) -> bool:
    role = principal.role
    if role == "resident":
        return order.resident_id == principal.account_id
    if role == "agent":
        return order.agent_id == principal.account_id or order.village_id == principal.region_id
    if role == "dispatcher":
        return order.town_id == principal.region_id
    return role == "admin" and order.district_id == principal.region_id


async def act(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    order_id: int,
    action: str,
    data: ActionInput,
) -> None:
    order = await order_in_scope(session, principal, order_id)
    move = ALLOWED_TRANSITIONS.get((order.status, action))
    if move is None:
        raise illegal(order, action)
    if principal.role not in move.roles:
        raise errors.Forbidden()
    if principal.role == "agent" and order.agent_id != principal.account_id:
        raise errors.Forbidden("该办件不是派给您的")
    now = ctx.now()
    changes, note, extra = await _apply(session, ctx, principal, order, action, data, now)
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == order.status)
        .values(status=move.to, updated_at=now, **changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict("办件刚被他人处理过,请刷新后再试")
    if action == "supplement" and data.materials:
        await _attach_uploads(
            session, order.id, {c: {"uploads": ids} for c, ids in data.materials.items()}
        )
    if action == "complete" and data.result_upload_ids:
        await _attach_uploads(session, order.id, {"result": {"uploads": data.result_upload_ids}})
    await _event(session, order.id, principal, now, action, order.status, move.to, note, extra)


def _require(reason: str | None, field_name: str = "reason", message: str = "请填写原因") -> str:
    if not reason or not reason.strip():
        raise errors.InvalidInput(message, errors=[{"field": field_name, "message": message}])
    return reason.strip()


async def _apply(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    order: Order,
    action: str,
    data: ActionInput,
    now: datetime,
) -> tuple[dict[str, Any], str | None, dict[str, Any] | None]:
    """The fields an action changes, its timeline note and extra data; raises if not allowed."""
    version = await session.get(ItemVersion, order.item_version_id)
    assert version is not None
    if action == "assign":
        agent = await _agent_of_town(session, data.agent_id, order.town_id)
        return (
            {"agent_id": agent.id, "first_contact_id": order.first_contact_id or agent.id},
            None,
            {"agentId": agent.id, "agentName": agent.name},
        )
    if action == "decline":
        return {"agent_id": None}, _require(data.reason), None
    if action == "take":
        return {"first_contact_id": order.first_contact_id or principal.account_id}, None, None
    if action == "accept":
        required = [m["code"] for m in version.materials if m.get("required", True)]
        empty = [c for c in required if not order.materials.get(c, {}).get("uploads")]
        if empty and not version.allow_accept_with_gaps:
            raise errors.InvalidInput(
                "必需材料不全,请一次性告知补正",
                errors=[{"field": c, "message": "缺少"} for c in empty],
            )
        calendar = await work_calendar(session, ctx)
        due = calendar.due(now, version.promised_days)
        materials = {
            c: {**s, "state": "accepted" if s["uploads"] else s["state"]}
            for c, s in order.materials.items()
        }
        return (
            {
                "accepted_at": now,
                "due_at": due.due_at,
                "due_provisional": due.provisional,
                "clock_started_at": now,
                "clock_days": version.promised_days,
                "materials": materials,
            },
            None,
            {"dueAt": due.due_at.isoformat()},
        )
    if action == "request_supplement":
        return _supplement_request(order, version, data)
    if action == "supplement":
        listed = {c for c, s in order.materials.items() if s["state"] in ("missing", "rejected")}
        materials_in = await _check_materials(
            session, principal, version, data.materials, at_submit=False, only=listed
        )
        extra_codes = set(data.materials) - listed
        if extra_codes:
            raise errors.InvalidInput(
                errors=[
                    {"field": f"materials.{c}", "message": "不需要补正这项"}
                    for c in sorted(extra_codes)
                ]
            )
        merged = dict(order.materials)
        for code in listed:
            merged[code] = {
                "uploads": materials_in[code]["uploads"],
                "state": "submitted",
                "reason": None,
            }
        return {"materials": merged}, data.reason, {"codes": sorted(listed)}
    if action == "reject":
        return {"outcome_note": _require(data.reason)}, data.reason, None
    if action == "hold":
        calendar = await work_calendar(session, ctx)
        assert order.due_at is not None
        remaining = calendar.remaining_working_days(order.due_at, now)
        return {"remaining_days": remaining}, _require(data.reason), {"remainingDays": remaining}
    if action == "resume":
        calendar = await work_calendar(session, ctx)
        remaining = order.remaining_days or 0
        due = calendar.resume_due(remaining, now)
        return (
            {
                "due_at": due.due_at,
                "due_provisional": due.provisional,
                "remaining_days": None,
                "clock_started_at": now,
                "clock_days": remaining,
            },
            data.reason,
            {"dueAt": due.due_at.isoformat()},
        )
    if action == "complete":
        await _check_own_uploads(session, principal, data.result_upload_ids, "resultUploadIds")
        return _completion(order, version, data, now)
    if action == "deliver":
        if data.delivery_method not in ("pickup", "delivery", "post"):
            raise errors.InvalidInput(
                errors=[{"field": "deliveryMethod", "message": "请选择自取、送达或邮寄"}]
            )
        return {"delivered_at": now, "delivery_method": data.delivery_method}, data.reason, None
    if action == "confirm_receipt":
        return {"delivered_at": now, "delivery_method": "pickup"}, data.reason, None
    if action in ("cancel",):
        return {}, data.reason, None
    if action == "terminate":
        return {}, _require(data.reason), None
    raise IllegalTransition()


def _supplement_request(
    order: Order, version: ItemVersion, data: ActionInput
) -> tuple[dict[str, Any], str | None, dict[str, Any] | None]:
    """一次性告知: one notice listing every missing or unacceptable material with a reason."""
    slots = {m["code"]: m for m in version.materials}
    problems = []
    if not data.missing:
        problems.append({"field": "missing", "message": "请列出需要补正的全部材料"})
    for i, entry in enumerate(data.missing):
        if entry.get("code") not in slots:
            problems.append({"field": f"missing[{i}].code", "message": "该事项没有这项材料"})
        if not (entry.get("reason") or "").strip():
            problems.append({"field": f"missing[{i}].reason", "message": "请写明原因"})
    if problems:
        raise errors.InvalidInput(errors=problems)
    merged = dict(order.materials)
    for entry in data.missing:
        slot = merged[entry["code"]]
        merged[entry["code"]] = {
            **slot,
            "state": "rejected" if slot["uploads"] else "missing",
            "reason": entry["reason"].strip(),
        }
    listed = [
        {"code": e["code"], "name": slots[e["code"]]["name"], "reason": e["reason"].strip()}
        for e in data.missing
    ]
    return {"materials": merged}, data.reason, {"missing": listed}


def _completion(
    order: Order, version: ItemVersion, data: ActionInput, now: datetime
) -> tuple[dict[str, Any], str | None, dict[str, Any] | None]:
    if order.due_at is not None and now >= order.due_at and not order.delay_explanation:
        raise DelayExplanationRequired()
    problems = []
    if data.outcome not in ("approved", "denied"):
        problems.append({"field": "outcome", "message": "请选择办理结果:准予或不予"})
    if data.outcome == "denied" and not (data.reason or "").strip():
        problems.append({"field": "reason", "message": "不予办理须写明理由"})
    # 免费代办: only the item's official fees may be collected, never a service fee.
    if not 0 <= data.fees_collected_fen <= version.fee_fen:
        problems.append(
            {
                "field": "feesCollectedFen",
                "message": f"代收费用不能超过该事项的法定收费 {version.fee_fen} 分",
            }
        )
    if problems:
        raise errors.InvalidInput(errors=problems)
    return (
        {
            "completed_at": now,
            "outcome": data.outcome,
            "outcome_note": data.reason,
            "fees_collected_fen": data.fees_collected_fen,
        },
        data.reason,
        {"resultUploadIds": data.result_upload_ids} if data.result_upload_ids else None,
    )


async def _agent_of_town(session: AsyncSession, agent_id: int | None, town_id: int) -> Account:
    if agent_id is None:
        raise errors.InvalidInput(errors=[{"field": "agentId", "message": "请选择代办员"}])
    row = (
        await session.execute(
            select(Account)
            .join(Region, Region.id == Account.region_id)
            .where(
                Account.id == agent_id,
                Account.role == "agent",
                Account.disabled_at.is_(None),
                Region.town_id == town_id,
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise errors.NotFound("本镇没有该代办员")
    return row


async def explain_delay(
    session: AsyncSession, ctx: Context, principal: Principal, order_id: int, text: str
) -> None:
    """延期说明: required once overdue, shown to the resident; an event, not a status."""
    order = await order_in_scope(session, principal, order_id)
    if principal.role != "agent" or order.agent_id != principal.account_id:
        raise errors.Forbidden("该办件不是派给您的")
    if order.status not in ("accepted", "on_hold"):
        raise illegal(order, "explain_delay")
    text = _require(text, "explanation", "请填写延期说明")
    now = ctx.now()
    await session.execute(
        update(Order).where(Order.id == order.id).values(delay_explanation=text, updated_at=now)
    )
    await _event(
        session, order.id, principal, now, "explain_delay", order.status, order.status, text
    )


async def reassign(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    order_id: int,
    agent_id: int,
    reason: str | None,
) -> None:
    """A dispatcher hands an open order to another agent of the town: an event, not a status."""
    order = await order_in_scope(session, principal, order_id)
    if principal.role != "dispatcher":
        raise errors.Forbidden()
    if order.status not in OPEN_FOR_REASSIGN or order.agent_id is None:
        raise illegal(order, "reassign")
    agent = await _agent_of_town(session, agent_id, order.town_id)
    reason = _require(reason)
    now = ctx.now()
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == order.status)
        .values(agent_id=agent.id, updated_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict()
    await _event(
        session,
        order.id,
        principal,
        now,
        "reassign",
        order.status,
        order.status,
        reason,
        {"agentId": agent.id, "agentName": agent.name},
    )
