"""Orders: one-tap submission and every move of the transition table, with the clock.

Plain synchronous functions on a Session, run by `Database.run_write` in one transaction:
on SQLite the whole unit of work is one hop to the writer thread, so the write lock is held
only while the statements run. Each use case is a handful of Core statements.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

import msgspec
from sqlalchemy import Date, Table, Update, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models import (
    Account,
    CatalogueItem,
    ItemEnablement,
    ItemVersion,
    Order,
    OrderEvent,
    Region,
    Upload,
)
from app.orders.calendar import work_calendar
from app.orders.states import ACTION_NAMES, ALLOWED_TRANSITIONS, STATUS_NAMES
from app.security.tokens import Principal

MAX_ID = 2**63 - 1
OPEN_FOR_REASSIGN = frozenset(
    {"submitted", "assigned", "reviewing", "supplement_required", "accepted", "on_hold"}
)
VERSION_CACHE_SIZE = 2000
ORDERS: Table = Order.__table__  # type: ignore[assignment]
EVENTS: Table = OrderEvent.__table__  # type: ignore[assignment]
UPLOADS: Table = Upload.__table__  # type: ignore[assignment]
ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
REGIONS: Table = Region.__table__  # type: ignore[assignment]
ITEMS: Table = CatalogueItem.__table__  # type: ignore[assignment]
ENABLED: Table = ItemEnablement.__table__  # type: ignore[assignment]

# An order as a plain row of the orders table (attribute names are the model's), or those
# values in a SimpleNamespace for an order just written: cheaper than an ORM object.
OrderRow: TypeAlias = Any

# The hot paths' statements, built once: SQLAlchemy then only binds and runs them (building
# a statement costs more than SQLite takes to run it).
ORDER_BY_ID = select(ORDERS).where(ORDERS.c.id == bindparam("id"))
STATUS_BY_ID = select(ORDERS.c.status).where(ORDERS.c.id == bindparam("id"))
# Everything a submission checks before writing, in one statement: an earlier order with
# the same Idempotency-Key, the resident's profile and village, the item and whether the
# village offers it.
_SAME_KEY = (
    ORDERS.c.resident_id == bindparam("account"),
    ORDERS.c.idempotency_key == bindparam("key"),
)
SUBMISSION_CONTEXT = (
    select(
        select(ORDERS.c.id).where(*_SAME_KEY).scalar_subquery().label("existing_id"),
        select(ORDERS.c.request_hash).where(*_SAME_KEY).scalar_subquery().label("existing_hash"),
        ACCOUNTS.c.name,
        ACCOUNTS.c.phone_enc,
        ACCOUNTS.c.id_number_enc,
        REGIONS.c.id.label("village_id"),
        REGIONS.c.town_id,
        REGIONS.c.district_id,
        ITEMS.c.id.label("item_id"),
        ITEMS.c.current_version_id,
        ENABLED.c.item_id.label("enabled"),
    )
    .select_from(
        ACCOUNTS.outerjoin(REGIONS, REGIONS.c.id == ACCOUNTS.c.region_id)
        .outerjoin(ITEMS, (ITEMS.c.code == bindparam("code")) & ITEMS.c.retired_at.is_(None))
        .outerjoin(
            ENABLED, (ENABLED.c.item_id == ITEMS.c.id) & (ENABLED.c.region_id == REGIONS.c.id)
        )
    )
    .where(ACCOUNTS.c.id == bindparam("account"), ACCOUNTS.c.disabled_at.is_(None))
)
UPLOADS_BY_ID = select(
    UPLOADS.c.id, UPLOADS.c.owner_id, UPLOADS.c.status, UPLOADS.c.order_id
).where(UPLOADS.c.id.in_(bindparam("ids", expanding=True)))
ATTACH = (
    update(UPLOADS)
    .where(UPLOADS.c.id.in_(bindparam("ids", expanding=True)), UPLOADS.c.order_id.is_(None))
    .values(order_id=bindparam("order_id"))
)
INSERT_ORDER = insert(ORDERS).returning(ORDERS.c.id)
INSERT_EVENT = insert(EVENTS)

IllegalTransition = errors.error("illegal_transition", 409, "当前状态下不能进行该操作")
IdempotencyConflict = errors.error("idempotency_conflict", 422, "同一请求标识已用于另一份委托")
ProfileIncomplete = errors.error(
    "profile_incomplete", 409, "请先完善姓名、身份证号、手机号和所在村"
)
ItemNotOnline = errors.error("item_not_online", 422, "该事项须本人到场办理,不能线上委托")
DelayExplanationRequired = errors.error(
    "delay_explanation_required", 409, "已超过承诺时限,请先填写延期说明"
)
NotOverdue = errors.error("not_overdue", 409, "办件尚未超期,不需要延期说明")
UploadInUse = errors.error("upload_in_use", 409, "有文件刚被用于其他办件,请重新选择")


def illegal(status: str, action: str) -> errors.DomainError:
    """409 naming the order's current status, so the phone can refresh to the truth."""
    return IllegalTransition(
        f"办件当前为“{STATUS_NAMES[status]}”,不能{ACTION_NAMES.get(action, action)}",
        currentStatus=status,
        currentStatusName=STATUS_NAMES[status],
    )


def guide_version(session: Session, ctx: Context, version_id: int) -> ItemVersion:
    """Guide versions never change once written (an edit makes a new one): cache them."""
    cache: dict[int, ItemVersion] = ctx.caches.setdefault("guide_versions", {})
    version = cache.get(version_id)
    if version is None:
        version = session.get(ItemVersion, version_id)
        assert version is not None, version_id
        session.expunge(version)
        if len(cache) >= VERSION_CACHE_SIZE:
            cache.clear()
        cache[version_id] = version
    return version


# --- submission -------------------------------------------------------------------------


@dataclass
class SubmitInput:
    item_code: str
    materials: dict[str, list[int]]
    idempotency_key: str
    note: str | None = None
    green_channel: bool = False


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


@dataclass
class Submitted:
    """A submission's outcome: the order id and, when it is new, what was written, so the
    answer can be built without reading it back (None on an idempotent retry)."""

    order_id: int
    values: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    actor_name: str | None = None


def submit(session: Session, ctx: Context, principal: Principal, data: SubmitInput) -> Submitted:
    """Submit a request for the resident (the same order again on a retry)."""
    digest = request_hash(data)
    found = session.execute(
        SUBMISSION_CONTEXT,
        {"account": principal.account_id, "key": data.idempotency_key, "code": data.item_code},
    ).one_or_none()
    if found is None:
        raise errors.Unauthenticated()
    if found.existing_id is not None:  # a retry on a weak signal: the same order
        if found.existing_hash != digest:
            raise IdempotencyConflict()
        return Submitted(int(found.existing_id))
    name, village_id, town_id, district_id = (
        found.name,
        found.village_id,
        found.town_id,
        found.district_id,
    )
    if not all((name, found.phone_enc, found.id_number_enc, village_id, town_id, district_id)):
        raise ProfileIncomplete()
    if found.enabled is None or found.current_version_id is None:
        raise errors.NotFound("本村暂不能办理该事项")
    item_id, version_id = found.item_id, found.current_version_id
    version = guide_version(session, ctx, version_id)
    if version.mode == "consult" or version.in_person:
        raise ItemNotOnline()
    materials = _check_materials(session, principal, version, data.materials, at_submit=True)
    now = ctx.now()
    # Plain Core statements on the table: SQLAlchemy caches their compiled form (the dialect
    # upsert constructs are compiled afresh every time, which cost more than the SQL).
    values = {
        "number": next_number(session, ctx, now),
        "resident_id": principal.account_id,
        "village_id": village_id,
        "town_id": town_id,
        "district_id": district_id,
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
        "due_provisional": False,
        "fees_collected_fen": 0,
        "updated_at": now,
    }
    order_id = int(session.execute(INSERT_ORDER, values).scalar_one())
    _attach_uploads(session, order_id, [i for ids in data.materials.values() for i in ids])
    event = _event(session, order_id, principal, now, "submit", None, "submitted", data.note)
    return Submitted(order_id, {**values, "id": order_id}, event, name)


NEXT_NUMBER = text(
    "INSERT INTO order_number_counters (day, last) VALUES (:day, 1) "
    "ON CONFLICT (day) DO UPDATE SET last = order_number_counters.last + 1 RETURNING last"
).bindparams(bindparam("day", type_=Date))


def next_number(session: Session, ctx: Context, now: datetime) -> str:
    """DB + business date + a 6-digit daily sequence, unique across processes (one statement;
    the upsert is the same SQL on SQLite and PostgreSQL)."""
    day = now.astimezone(ctx.settings.zone).date()
    sequence = session.execute(NEXT_NUMBER, {"day": day}).scalar_one()
    return f"DB{day:%Y%m%d}{sequence:06d}"


def _check_materials(
    session: Session,
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
    problems += _upload_problems(
        session, principal, {f"materials.{c}": ids for c, ids in given.items()}
    )
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


def _upload_problems(
    session: Session, principal: Principal, given: dict[str, list[int]]
) -> list[dict[str, str]]:
    """Each id must be the caller's own finished upload, not yet part of any order."""
    ids = sorted({i for values in given.values() for i in values})
    if not ids:
        return []
    found = {row.id: row for row in session.execute(UPLOADS_BY_ID, {"ids": ids})}
    problems = []
    for field_name, values in given.items():
        for upload_id in values:
            upload = found.get(upload_id)
            if upload is None or upload.owner_id != principal.account_id:
                problems.append({"field": field_name, "message": f"没有找到文件 {upload_id}"})
            elif upload.status != "ready":
                problems.append({"field": field_name, "message": "文件还没有上传完成"})
            elif upload.order_id is not None:
                problems.append({"field": field_name, "message": "该文件已用于其他办件"})
    return problems


def _attach_uploads(session: Session, order_id: int, ids: list[int]) -> None:
    """Guarded: a file another order took in the meantime fails the whole move."""
    unique = set(ids)
    if not unique:
        return
    result = session.execute(ATTACH, {"ids": sorted(unique), "order_id": order_id})
    if result.rowcount != len(unique):  # type: ignore[attr-defined]
        raise UploadInUse()


def _event(
    session: Session,
    order_id: int,
    principal: Principal | None,
    at: datetime,
    action: str,
    from_status: str | None,
    to_status: str,
    note: str | None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    values = {
        "order_id": order_id,
        "at": at,
        "actor_id": principal.account_id if principal else None,
        "actor_role": principal.role if principal else "system",
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
        "data": data,
    }
    session.execute(INSERT_EVENT, values)
    return values


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
    receipt_upload_ids: list[int] = field(default_factory=list)
    delivery_method: str | None = None
    proof_upload_ids: list[int] = field(default_factory=list)


@dataclass
class Change:
    """What an action writes: order columns, the timeline note and data, files to attach."""

    values: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    data: dict[str, Any] | None = None
    attach: list[int] = field(default_factory=list)


def order_in_scope(session: Session, principal: Principal, order_id: int) -> OrderRow:
    """Residents: their own; agents: assigned to them or in their village; dispatchers: their
    town; admins: their district. Anything else is 404."""
    order = (
        session.execute(ORDER_BY_ID, {"id": order_id}).one_or_none()
        if 0 < order_id <= MAX_ID
        else None
    )
    if order is None or not in_scope(principal, order):
        raise errors.NotFound("没有找到该办件")
    return order


def in_scope(principal: Principal, order: OrderRow) -> bool:
    role = principal.role
    if role == "resident":
        return bool(order.resident_id == principal.account_id)
    if role == "agent":
        return bool(
            principal.account_id == order.agent_id or principal.region_id == order.village_id
        )
    if role == "dispatcher":
        return bool(order.town_id == principal.region_id)
    return role == "admin" and bool(order.district_id == principal.region_id)


def is_overdue(order: OrderRow, now: datetime) -> bool:
    """Past due while the clock runs, or found overdue before a hold stopped it."""
    if order.status not in ("accepted", "on_hold"):
        return False
    if order.overdue_at is not None:
        return True
    return order.status == "accepted" and order.due_at is not None and now >= order.due_at


def act(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    action: str,
    data: ActionInput,
) -> None:
    order = order_in_scope(session, principal, order_id)
    move = ALLOWED_TRANSITIONS.get((order.status, action))
    if move is None:
        raise illegal(order.status, action)
    if principal.role not in move.roles:
        raise errors.Forbidden()
    if principal.role == "agent" and order.agent_id != principal.account_id:
        raise errors.Forbidden("该办件不是派给您的")
    now = ctx.now()
    change = _apply(session, ctx, principal, order, action, data, now)
    _guarded_update(
        session,
        order,
        update(Order).values(status=move.to, updated_at=now, **change.values),
        action,
    )
    _attach_uploads(session, order.id, change.attach)
    _event(
        session, order.id, principal, now, action, order.status, move.to, change.note, change.data
    )


def _guarded_update(session: Session, order: OrderRow, statement: Update, action: str) -> None:
    """Compare-and-set on what the move was decided from (status and agent): of two moves
    at once exactly one wins; the other gets 409 with the status it lost to."""
    agent_unchanged = (
        Order.agent_id.is_(None) if order.agent_id is None else Order.agent_id == order.agent_id
    )
    result = session.execute(
        statement.where(
            Order.id == order.id, Order.status == order.status, agent_unchanged
        ).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = session.scalar(STATUS_BY_ID, {"id": order.id})
        raise illegal(current or order.status, action)


def _require(reason: str | None, field_name: str = "reason", message: str = "请填写原因") -> str:
    if not reason or not reason.strip():
        raise errors.InvalidInput(message, errors=[{"field": field_name, "message": message}])
    return reason.strip()


def _own_files(
    session: Session, principal: Principal, ids: list[int], field_name: str
) -> list[int]:
    problems = _upload_problems(session, principal, {field_name: ids})
    if problems:
        raise errors.InvalidInput(errors=problems)
    return ids


def _apply(
    session: Session,
    ctx: Context,
    principal: Principal,
    order: OrderRow,
    action: str,
    data: ActionInput,
    now: datetime,
) -> Change:
    """What an action changes; raises if the rules do not allow it now."""
    version = guide_version(session, ctx, order.item_version_id)
    if action == "assign":
        agent = _agent_of_town(session, data.agent_id, order.town_id)
        return Change(
            {"agent_id": agent.id, "first_contact_id": order.first_contact_id or agent.id},
            data={"agentId": agent.id, "agentName": agent.name},
        )
    if action == "decline":
        return Change({"agent_id": None}, _require(data.reason))
    if action == "take":
        return Change({"first_contact_id": order.first_contact_id or principal.account_id})
    if action == "accept":
        return _acceptance(session, ctx, order, version, now)
    if action == "request_supplement":
        return _supplement_request(order, version, data)
    if action == "supplement":
        return _supplement(session, ctx, principal, order, version, data, now)
    if action == "reject":
        reason = _require(data.reason)
        return Change({"outcome_note": reason}, reason)
    if action == "hold":
        assert order.due_at is not None
        remaining = work_calendar(session, ctx).remaining_working_days(order.due_at, now)
        values: dict[str, Any] = {"remaining_days": remaining}
        if now >= order.due_at and order.overdue_at is None:
            values["overdue_at"] = order.due_at
        return Change(values, _require(data.reason), {"remainingDays": remaining})
    if action == "resume":
        return _resumption(session, ctx, order, now, data.reason)
    if action == "complete":
        return _completion(session, principal, order, version, data, now)
    if action == "deliver":
        proof = _own_files(session, principal, data.proof_upload_ids, "proofUploadIds")
        if not proof:
            raise errors.InvalidInput(
                errors=[{"field": "proofUploadIds", "message": "请拍照上传签收单或寄递凭证"}]
            )
        if data.delivery_method not in ("pickup", "delivery", "post"):
            raise errors.InvalidInput(
                errors=[{"field": "deliveryMethod", "message": "请选择自取、送达或邮寄"}]
            )
        return Change(
            {"delivered_at": now, "delivery_method": data.delivery_method},
            data.reason,
            {"proofUploadIds": proof},
            attach=proof,
        )
    if action == "confirm_receipt":
        return Change({"delivered_at": now, "delivery_method": "pickup"}, data.reason)
    if action == "close":
        return Change({"closed_at": now}, data.reason)
    if action == "cancel":
        return Change({}, data.reason)
    if action == "terminate":
        return Change({}, _require(data.reason))
    raise illegal(order.status, action)


def _acceptance(
    session: Session, ctx: Context, order: OrderRow, version: ItemVersion, now: datetime
) -> Change:
    """受理: the clock starts; due at the end of the Nth working day after today."""
    required = [m["code"] for m in version.materials if m.get("required", True)]
    empty = [c for c in required if not order.materials.get(c, {}).get("uploads")]
    if empty and not version.allow_accept_with_gaps:
        raise errors.InvalidInput(
            "必需材料不全,请一次性告知补正",
            errors=[{"field": f"materials.{c}", "message": "缺少"} for c in empty],
        )
    due = work_calendar(session, ctx).due(now, version.promised_days)
    materials = {
        c: {**s, "state": "accepted" if s["uploads"] else s["state"]}
        for c, s in order.materials.items()
    }
    return Change(
        {
            "accepted_at": now,
            "due_at": due.due_at,
            "due_provisional": due.provisional,
            "clock_started_at": now,
            "clock_days": version.promised_days,
            "materials": materials,
        },
        data={"dueAt": due.due_at.isoformat()},
    )


def _resumption(
    session: Session, ctx: Context, order: OrderRow, now: datetime, note: str | None
) -> Change:
    """The clock runs again with exactly the working days that were left; an order that was
    already overdue stays overdue against its old due time."""
    if order.overdue_at is not None:
        return Change({"remaining_days": None}, note, {"dueAt": _iso(order.due_at)})
    remaining = order.remaining_days or 0
    due = work_calendar(session, ctx).resume_due(remaining, now)
    return Change(
        {
            "due_at": due.due_at,
            "due_provisional": due.provisional,
            "remaining_days": None,
            "clock_started_at": now,
            "clock_days": remaining,
        },
        note,
        {"dueAt": due.due_at.isoformat()},
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _supplement_request(order: OrderRow, version: ItemVersion, data: ActionInput) -> Change:
    """一次性告知: ONE notice listing every missing or unacceptable material with a reason."""
    slots = {m["code"]: m for m in version.materials}
    problems = []
    if not data.missing:
        problems.append({"field": "missing", "message": "请列出需要补正的全部材料"})
    for i, entry in enumerate(data.missing):
        if entry.get("code") not in slots:
            problems.append({"field": f"missing[{i}].code", "message": "该事项没有这项材料"})
        if not (entry.get("reason") or "").strip():
            problems.append({"field": f"missing[{i}].reason", "message": "请写明原因"})
    listed = {e.get("code") for e in data.missing}
    for code, slot in slots.items():
        empty = not order.materials.get(code, {}).get("uploads")
        if slot.get("required", True) and empty and code not in listed:
            problems.append(
                {"field": "missing", "message": f"{slot['name']}还没有提交,须在同一次告知中列出"}
            )
    if problems:
        raise errors.InvalidInput("补正告知须一次列全", errors=problems)
    merged = dict(order.materials)
    for entry in data.missing:
        slot = merged[entry["code"]]
        merged[entry["code"]] = {
            **slot,
            "state": "rejected" if slot["uploads"] else "missing",
            "reason": entry["reason"].strip(),
        }
    notice = [
        {"code": e["code"], "name": slots[e["code"]]["name"], "reason": e["reason"].strip()}
        for e in data.missing
    ]
    return Change({"materials": merged}, data.reason, {"missing": notice})


def _supplement(
    session: Session,
    ctx: Context,
    principal: Principal,
    order: OrderRow,
    version: ItemVersion,
    data: ActionInput,
    now: datetime,
) -> Change:
    """补正: new photos for every listed slot; on a hold, any slot, and the clock resumes."""
    if order.status == "on_hold":
        if not data.materials:
            raise errors.InvalidInput(errors=[{"field": "materials", "message": "请上传材料"}])
        listed = set(data.materials)
        materials_in = _check_materials(
            session, principal, version, data.materials, at_submit=False, only=set()
        )
    else:
        listed = {c for c, s in order.materials.items() if s["state"] in ("missing", "rejected")}
        materials_in = _check_materials(
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
    change = Change({"materials": merged}, data.reason, {"codes": sorted(listed)})
    if order.status == "on_hold":
        resumed = _resumption(session, ctx, order, now, data.reason)
        change.values.update(resumed.values)
    change.attach = [i for code in listed for i in materials_in[code]["uploads"]]
    return change


def _completion(
    session: Session,
    principal: Principal,
    order: OrderRow,
    version: ItemVersion,
    data: ActionInput,
    now: datetime,
) -> Change:
    if is_overdue(order, now) and not order.delay_explanation:
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
    if data.fees_collected_fen and not data.receipt_upload_ids:
        problems.append({"field": "receiptUploadIds", "message": "代收费用须上传票据照片"})
    files = {"resultUploadIds": data.result_upload_ids, "receiptUploadIds": data.receipt_upload_ids}
    problems += _upload_problems(session, principal, files)
    if problems:
        raise errors.InvalidInput(errors=problems)
    return Change(
        {
            "completed_at": now,
            "outcome": data.outcome,
            "outcome_note": data.reason,
            "fees_collected_fen": data.fees_collected_fen,
        },
        data.reason,
        {k: v for k, v in files.items() if v} or None,
        attach=data.result_upload_ids + data.receipt_upload_ids,
    )


def _agent_of_town(session: Session, agent_id: int | None, town_id: int) -> Account:
    if agent_id is None:
        raise errors.InvalidInput(errors=[{"field": "agentId", "message": "请选择代办员"}])
    row = session.execute(
        select(Account)
        .join(Region, Region.id == Account.region_id)
        .where(
            Account.id == agent_id,
            Account.role == "agent",
            Account.disabled_at.is_(None),
            Region.town_id == town_id,
        )
    ).scalar_one_or_none()
    if row is None:
        raise errors.NotFound("本镇没有该代办员")
    return row


def explain_delay(
    session: Session, ctx: Context, principal: Principal, order_id: int, text: str
) -> None:
    """延期说明: required once overdue, shown to the resident; an event, not a status."""
    order = order_in_scope(session, principal, order_id)
    if principal.role != "agent" or order.agent_id != principal.account_id:
        raise errors.Forbidden("该办件不是派给您的")
    if order.status not in ("accepted", "on_hold"):
        raise illegal(order.status, "explain_delay")
    now = ctx.now()
    if not is_overdue(order, now):
        raise NotOverdue()
    text = _require(text, "explanation", "请填写延期说明")
    values: dict[str, Any] = {"delay_explanation": text, "updated_at": now}
    if order.overdue_at is None and order.due_at is not None:
        values["overdue_at"] = order.due_at
    _guarded_update(session, order, update(Order).values(**values), "explain_delay")
    _event(session, order.id, principal, now, "explain_delay", order.status, order.status, text)


def reassign(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    agent_id: int,
    reason: str | None,
) -> None:
    """A dispatcher hands an open order to another agent of the town: an event, not a status."""
    order = order_in_scope(session, principal, order_id)
    if principal.role != "dispatcher":
        raise errors.Forbidden()
    if order.status not in OPEN_FOR_REASSIGN or order.agent_id is None:
        raise illegal(order.status, "reassign")
    agent = _agent_of_town(session, agent_id, order.town_id)
    reason = _require(reason)
    now = ctx.now()
    _guarded_update(
        session, order, update(Order).values(agent_id=agent.id, updated_at=now), "reassign"
    )
    _event(
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
