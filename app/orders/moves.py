"""Every move of the transition table (app/orders/states.py) and the events that are not
moves (delay explanation, re-assignment). STEPS gives each action of the table what it
writes and whom it then tells. A move is a compare-and-set on what it was decided from;
submission's automatic assignment is the same move applied to the new order before it is
written (`assign_on_submission`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, get_args

from sqlalchemy import ColumnElement, Row, Update, select, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.kinds import DeliveryMethod, Outcome
from app.models import Account, ItemVersion, Order, Region
from app.models.tables import ORDERS
from app.notifications import messages
from app.orders import notices
from app.orders.progress import check_parts_settled
from app.orders.records import (
    GAP_REASON,
    INSERT_EVENT,
    ORDER_BY_ID,
    STATUS_AND_AGENT_BY_ID,
    DelayExplanationRequired,
    DisputeWindowOver,
    GapsOutstanding,
    NotOverdue,
    OrderRow,
    attach_uploads,
    check_materials,
    dispute_open,
    event_values,
    gaps,
    guide_version,
    illegal,
    is_overdue,
    may_follow,
    order_in_scope,
    own_order,
    record_event,
    upload_problems,
)
from app.orders.states import ACTIONS, ALLOWED_TRANSITIONS, FINAL, OPEN, RUNNING, Move
from app.regions.service import within
from app.security.tokens import Principal
from app.uploads import prereviews
from app.work_calendar import work_calendar

MAX_DISPUTE_REASON = 500  # characters: as the API's bodies bound a reason


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
    photo_upload_ids: list[int] = field(default_factory=list)


@dataclass
class Change:
    """What an action writes: order columns, the timeline note and data, files to attach,
    and the system's events that follow the move's own on the timeline (action, note, data:
    events, not moves, such as `pool`)."""

    values: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    data: dict[str, Any] | None = None
    attach: list[int] = field(default_factory=list)
    then: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Attempt:
    """A person's action on an order, as its step reads it."""

    session: Session
    ctx: Context
    principal: Principal
    order: OrderRow
    version: ItemVersion
    data: ActionInput
    now: datetime


def act(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    action: str,
    data: ActionInput,
) -> None:
    order = order_in_scope(session, principal, order_id)
    move = _allowed(order.status, action, principal.role)
    if principal.role == "agent" and order.agent_id != principal.account_id:
        raise errors.Forbidden("该办件不是派给您的")
    _make(session, ctx, principal, order, action, move.to, data)


def _make(
    session: Session,
    ctx: Context,
    principal: Principal,
    order: OrderRow,
    action: str,
    to: str,
    data: ActionInput,
) -> None:
    """A person's move the table allowed: its step's change, then the write."""
    now = ctx.now()
    version = guide_version(session, ctx, order.item_version_id)
    step = STEPS[action]
    attempt = Attempt(session, ctx, principal, order, version, data, now)
    change = step.change(attempt) if step.change else Change(note=data.reason)
    _write_move(session, ctx, principal, order, version, action, to, change, now)


def system_move(session: Session, ctx: Context, order: OrderRow, action: str, note: str) -> bool:
    """A move the table gives to the system (a scheduled job); False when the order has
    moved on meanwhile (another worker, or a person, got there first)."""
    now = ctx.now()
    version = guide_version(session, ctx, order.item_version_id)
    try:
        move = _allowed(order.status, action, "system")
        _write_move(session, ctx, None, order, version, action, move.to, Change(note=note), now)
    except errors.DomainError:
        return False
    return True


def recorded_for_resident(
    session: Session, ctx: Context, principal: Principal, order: OrderRow, action: str, note: str
) -> None:
    """A resident's move written by the staff member who records it from paper the resident
    signed (a rating card): the table's move as the resident's, the staff member its actor
    on the timeline."""
    move = _allowed(order.status, action, "resident")
    _make(session, ctx, principal, order, action, move.to, ActionInput(reason=note))


def _allowed(status: str, action: str, role: str) -> Move:
    """The table's move of `action` from `status`: 409 if there is none, 403 if it is not
    `role`'s to make."""
    move = ALLOWED_TRANSITIONS.get((status, action))
    if move is None:
        raise illegal(status, action)
    if role not in move.roles:
        raise errors.Forbidden()
    return move


@dataclass
class Assignment:
    """Submission's automatic assignment (the town's rule, or the agent who entered the
    order): the table's ("submitted", "assign") move by the system, applied to the new
    order's values before they are written, so the order is inserted as it stands after the
    move (there is nothing yet to compare and set). Its event and what it tells whom follow
    the insert (`event`, `announce`), as for any move."""

    submitted: dict[str, Any]  # the order's values as submitted, before the move
    to: str
    change: Change

    def event(self, order_id: int, now: datetime) -> dict[str, Any]:
        note, data = self.change.note, self.change.data
        return event_values(order_id, None, now, "assign", "submitted", self.to, note, data)

    def announce(
        self, session: Session, ctx: Context, order_id: int, item: str, now: datetime
    ) -> None:
        order = SimpleNamespace(**self.submitted, id=order_id)
        _after(session, ctx, None, order, item, "assign", self.to, self.change, now)


def assign_on_submission(
    values: dict[str, Any], agent: Any, rule: str, note: str, now: datetime
) -> Assignment:
    """Move the new order `values` (status "submitted") to `agent` by the table, in place;
    `rule` and `note` say why it went to them."""
    move = _allowed(values["status"], "assign", "system")
    assigned = _assignment(agent, now)
    change = Change(assigned.values, note, {"rule": rule, **(assigned.data or {})})
    assignment = Assignment(dict(values), move.to, change)
    values.update(status=move.to, **change.values)
    return assignment


def _write_move(
    session: Session,
    ctx: Context,
    principal: Principal | None,
    order: OrderRow,
    version: ItemVersion,
    action: str,
    to: str,
    change: Change,
    now: datetime,
) -> None:
    """The compare-and-set, the files, the timeline event and the notifications: together
    in the caller's transaction."""
    values = {"status": to, "updated_at": now, **change.values}
    if to in FINAL:
        values["ended_at"] = now  # from here the retention rules count (app/retention)
    _guarded_update(session, order, update(Order).values(**values), action)
    if change.attach:
        assert principal is not None, "only a person's move attaches files"
        attach_uploads(session, principal, order.id, change.attach)
    record_event(
        session, order.id, principal, now, action, order.status, to, change.note, change.data
    )
    for then, note, data in change.then:
        record_event(session, order.id, None, now, then, to, to, note, data)
    _after(session, ctx, principal, order, version.name, action, to, change, now)


def _after(
    session: Session,
    ctx: Context,
    principal: Principal | None,
    order: OrderRow,
    item: str,
    action: str,
    to: str,
    change: Change,
    now: datetime,
) -> None:
    """What the action's step tells whom once it is written (`order` as it was before)."""
    after = STEPS[action].after
    if after is not None:
        by = principal.role if principal else "system"
        after(
            notices.Moved(
                session, ctx, by, order, item, to, change.values, change.note, change.data, now
            )
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
        raise _lost(session, order, action)


def _lost(session: Session, order: OrderRow, action: str) -> errors.DomainError:
    """The 409 for a compare-and-set another move won: it names where the order now is."""
    now = session.execute(STATUS_AND_AGENT_BY_ID, {"id": order.id}).one()
    if now.status == order.status:  # the same status: it went to another agent meanwhile
        return illegal(now.status, action, "办件刚刚改派给了其他代办员,请刷新后再操作")
    return illegal(now.status, action)


def _require(reason: str | None, field_name: str = "reason", message: str = "请填写原因") -> str:
    if not reason or not reason.strip():
        raise errors.InvalidInput(message, errors=[{"field": field_name, "message": message}])
    return reason.strip()


def _own_files(
    session: Session, principal: Principal, ids: list[int], field_name: str
) -> list[int]:
    problems = upload_problems(session, principal, {field_name: ids})
    if problems:
        raise errors.InvalidInput(errors=problems)
    return ids


def _assign(a: Attempt) -> Change:
    """派单: an order in the pool, or a disputed one running with nobody on it (a second
    dispute goes to the dispatchers); one with an agent is re-assigned, not dispatched."""
    if a.order.agent_id is not None:
        raise illegal(a.order.status, "assign", "办件已有代办员,如需换人请改派")
    return _assignment(_agent_of_town(a.session, a.data.agent_id, a.order.town_id), a.now)


def _assignment(agent: Any, now: datetime) -> Change:
    """`agent` (id and name) gets the order."""
    return Change(
        {"agent_id": agent.id, "assigned_at": now},
        data={"agentId": agent.id, "agentName": agent.name},
    )


def _decline(a: Attempt) -> Change:
    return Change({"agent_id": None, "assigned_at": None}, _require(a.data.reason))


def _take(a: Attempt) -> Change:
    """首问负责: whoever first takes it stays named as the first contact."""
    return Change({"first_contact_id": a.order.first_contact_id or a.principal.account_id})


def _rejection(a: Attempt) -> Change:
    reason = _require(a.data.reason)
    return Change({"outcome_note": reason}, reason)


def _hold(a: Attempt) -> Change:
    """中止: the clock stops, keeping the working days that are left."""
    order, now = a.order, a.now
    assert order.due_at is not None
    remaining = work_calendar(a.session, a.ctx).remaining_working_days(order.due_at, now)
    values: dict[str, Any] = {"remaining_days": remaining}
    if now >= order.due_at and order.overdue_at is None:
        values["overdue_at"] = order.due_at
    return Change(values, _require(a.data.reason), {"remainingDays": remaining})


def _resume(a: Attempt) -> Change:
    return _resumption(a.session, a.ctx, a.order, a.now, a.data.reason)


def _delivery(a: Attempt) -> Change:
    """回交: with the proof photos (the signed slip or the postal receipt)."""
    data = a.data
    proof = _own_files(a.session, a.principal, data.proof_upload_ids, "proofUploadIds")
    if not proof:
        raise errors.InvalidInput(
            errors=[{"field": "proofUploadIds", "message": "请拍照上传签收单或寄递凭证"}]
        )
    if data.delivery_method not in get_args(DeliveryMethod):
        raise errors.InvalidInput(
            errors=[{"field": "deliveryMethod", "message": "请选择自取、送达或邮寄"}]
        )
    return Change(
        {"delivered_at": a.now, "delivery_method": data.delivery_method},
        data.reason,
        {"proofUploadIds": proof},
        attach=proof,
    )


def _receipt(a: Attempt) -> Change:
    return Change({"delivered_at": a.now, "delivery_method": "pickup"}, a.data.reason)


def _rating(a: Attempt) -> Change:
    return Change({"closed_at": a.now}, a.data.reason)


def _termination(a: Attempt) -> Change:
    return Change({}, _require(a.data.reason))


def _dispute(a: Attempt) -> Change:
    """提出异议: within the rating window after hand-back the resident says the matter was not
    resolved, with a reason and photos if any. The order runs again (办理中) with a fresh
    clock: due at the end of DAIBAN_ORDERS_DISPUTE_DAYS working days after today, not
    overdue, no delay explained, no result yet. The first dispute keeps the first round's
    due time, overdue mark and completion apart (the figures count its 办结 by them) and
    leaves the order with its agent; a later one takes it off its agent into the town's
    pool (a `pool` event), for a dispatcher to dispatch again."""
    session, ctx, order, data, now = a.session, a.ctx, a.order, a.data, a.now
    if not dispute_open(order, now, timedelta(days=ctx.settings.ratings.window_days)):
        raise DisputeWindowOver()
    problems = []
    reason = (data.reason or "").strip()
    if not reason:
        problems.append({"field": "reason", "message": "请写明哪里没有办好"})
    elif len(reason) > MAX_DISPUTE_REASON:
        message = f"异议理由请控制在{MAX_DISPUTE_REASON}字以内"
        problems.append({"field": "reason", "message": message})
    photos = data.photo_upload_ids
    problems += upload_problems(session, a.principal, {"photoUploadIds": photos})
    if problems:
        raise errors.InvalidInput("异议内容有误", errors=problems)
    rounds = (order.dispute_rounds or 0) + 1
    days = ctx.settings.orders.dispute_days
    due = work_calendar(session, ctx).due(now, days)
    values: dict[str, Any] = {
        "dispute_rounds": rounds,
        "due_at": due.due_at,
        "due_provisional": due.provisional,
        "clock_started_at": now,
        "clock_days": days,
        "overdue_at": None,
        "remaining_days": None,
        "delay_explanation": None,
        "completed_at": None,
        "outcome": None,
        "outcome_note": None,
        "delivered_at": None,
        "delivery_method": None,
    }
    if rounds == 1:
        values |= {
            "first_due_at": order.due_at,
            "first_overdue_at": order.overdue_at,
            "first_completed_at": order.completed_at,
        }
    then: list[tuple[str, str, dict[str, Any] | None]] = []
    if rounds > 1:  # again: to the dispatchers, who choose who handles it now
        values |= {"agent_id": None, "assigned_at": None}
        why = f"群众第{rounds}次提出异议,转调度员重新派单"
        then.append(("pool", why, {"rule": "dispute_again"}))
    said: dict[str, Any] = {"round": rounds, "dueAt": due.due_at.isoformat()}
    said |= {"agentId": order.agent_id} if order.agent_id is not None else {}
    said |= {"photoUploadIds": photos} if photos else {}
    return Change(values, reason, said, attach=list(photos), then=then)


HandleAtHome = errors.error(
    "handle_at_home", 409, "该事项须在群众户籍所在地办理,请先转户籍地便民服务站"
)


def must_go_home(session: Session, order: Any, version: ItemVersion) -> bool:
    """全区通办: whether the item must be handled where the resident is registered: a
    village-level item at their own village's station, a town-level one in their own town;
    a district-level one anywhere in the district."""
    if order.home_village_id is None or version.level == "district":
        return False
    if version.level == "village":
        return True
    home_town = session.scalar(select(Region.town_id).where(Region.id == order.home_village_id))
    return bool(home_town != order.town_id)


def _transfer(a: Attempt) -> Change:
    """转户籍地办理: the station that served the resident first (首问, kept) hands the request,
    before 受理, to the station of the village where they are registered, which dispatches
    it as a new request (the town's rule, AB岗, or the pool)."""
    order = a.order
    if order.home_village_id is None:
        raise illegal(order.status, "transfer", "群众在户籍所在村办理,无需转办")
    home = a.session.execute(
        select(Region.id, Region.name, Region.town_id).where(Region.id == order.home_village_id)
    ).one()
    note = f"转至户籍地{home.name}便民服务站办理"
    if a.data.reason and a.data.reason.strip():
        note += f"({a.data.reason.strip()})"
    values = {
        "village_id": home.id,
        "town_id": home.town_id,
        "home_village_id": None,
        "agent_id": None,
        "assigned_at": None,
    }
    data = {"fromVillageId": order.village_id, "toVillageId": home.id}
    return Change(values, note, data)


def system_assign(session: Session, ctx: Context, order_id: int, agent: Any, note: str) -> None:
    """The table's ("submitted", "assign") made by the system for an order already written
    (a transfer's dispatch at its new station): `agent` (id, name) gets it."""
    order: OrderRow = ORDER_BY_ID.one(session.connection(), {"id": order_id})
    version = guide_version(session, ctx, order.item_version_id)
    move = _allowed(order.status, "assign", "system")
    now = ctx.now()
    change = _assignment(agent, now)
    change.note = note
    _write_move(session, ctx, None, order, version, "assign", move.to, change, now)


def _acceptance(a: Attempt) -> Change:
    """受理: the clock starts; due at the end of the Nth working day after today. On an item
    that allows 容缺受理 the materials that may follow are accepted as owed, the rest must be
    there."""
    session, ctx, order, version, now = a.session, a.ctx, a.order, a.version, a.now
    if must_go_home(session, order, version):
        raise HandleAtHome()
    empty = [
        m
        for m in version.materials
        if m.get("required", True) and not order.materials.get(m["code"], {}).get("uploads")
    ]
    blocking = [m["code"] for m in empty if not may_follow(version, m)]
    if blocking:
        raise errors.InvalidInput(
            "必需材料不全,请一次性告知补正",
            errors=[{"field": f"materials.{c}", "message": "缺少"} for c in blocking],
        )
    owed = {m["code"] for m in empty}
    due = work_calendar(session, ctx).due(now, version.promised_days)
    materials = {
        c: {**s, "state": "missing", "reason": GAP_REASON}
        if c in owed
        else {**s, "state": "accepted" if s["uploads"] else s["state"]}
        for c, s in order.materials.items()
    }
    prereviews.record_decisions(
        session,
        ctx,
        a.principal,
        order,
        {
            u: "accepted"
            for s in materials.values()
            if s["state"] == "accepted"
            for u in s["uploads"]
        },
        now,
    )
    data: dict[str, Any] = {"dueAt": due.due_at.isoformat()}
    if owed:
        data["gaps"] = [{"code": m["code"], "name": m["name"]} for m in empty]
    return Change(
        {
            "accepted_at": now,
            "due_at": due.due_at,
            "due_provisional": due.provisional,
            "clock_started_at": now,
            "clock_days": version.promised_days,
            "materials": materials,
        },
        data=data,
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


def _supplement_request(a: Attempt) -> Change:
    """一次性告知: ONE notice listing every missing or unacceptable material with a reason."""
    order, version, data = a.order, a.version, a.data
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
        owed = slot.get("required", True) and not may_follow(version, slot)  # 容缺 may wait
        if owed and empty and code not in listed:
            problems.append(
                {"field": "missing", "message": f"{slot['name']}还没有提交,须在同一次告知中列出"}
            )
    if order.supplement_requested_at is not None:
        # A later notice names only what was supplied or changed since the last one: what
        # was there then and not named then was accepted by that notice (一次性告知).
        for i, entry in enumerate(data.missing):
            code = entry.get("code") or ""
            if code in slots and not order.materials.get(code, {}).get("since_notice", True):
                name = slots[code]["name"]
                problems.append(
                    {
                        "field": f"missing[{i}].code",
                        "message": f"{name}上次告知时已提交且此后未更改,不能再次要求补正",
                    }
                )
    if problems:
        raise errors.InvalidInput("补正告知须一次列全", errors=problems)
    # From this notice on, a material counts as changed only once it is supplied again.
    merged = {code: {**slot, "since_notice": False} for code, slot in order.materials.items()}
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
    named = {e["code"] for e in data.missing}
    decided: dict[int, prereviews.Decision] = {}
    for code, slot in order.materials.items():
        photos = slot.get("uploads") or []
        for u in photos:
            decided[u] = (
                "accepted"
                if code not in named
                else "rejected"
                if len(photos) == 1
                else "material_rejected"
            )
    prereviews.record_decisions(a.session, a.ctx, a.principal, order, decided, a.now)
    rounds = (order.supplement_rounds or 0) + 1  # a second notice is a rework round
    return Change(
        {"materials": merged, "supplement_requested_at": a.now, "supplement_rounds": rounds},
        data.reason,
        {"missing": notice, "round": rounds},
    )


def _supplement(a: Attempt) -> Change:
    """补正: new photos for every listed slot; on a hold, any slot, and the clock resumes;
    on an order accepted with gaps (容缺受理), any of the slots it still owes."""
    session, principal, order, version, data = a.session, a.principal, a.order, a.version, a.data
    if order.status == "on_hold":
        if not data.materials:
            raise errors.InvalidInput(errors=[{"field": "materials", "message": "请上传材料"}])
        listed = set(data.materials)
        materials_in = check_materials(
            session, principal, version, data.materials, at_submit=False, only=set()
        )
    else:
        if order.status == "accepted":
            owed = set(gaps(order))
            if not owed:
                raise illegal(order.status, "supplement")
            if not data.materials:
                raise errors.InvalidInput(
                    errors=[{"field": "materials", "message": "请上传需要补正的材料"}]
                )
            listed = set(data.materials) & owed
        else:
            owed = listed = {
                c for c, s in order.materials.items() if s["state"] in ("missing", "rejected")
            }
        materials_in = check_materials(
            session, principal, version, data.materials, at_submit=False, only=listed
        )
        extra_codes = set(data.materials) - owed
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
            "since_notice": True,  # a later notice may name it again (一次性告知)
        }
    change = Change({"materials": merged}, data.reason, {"codes": sorted(listed)})
    if order.status == "on_hold":
        resumed = _resumption(session, a.ctx, order, a.now, data.reason)
        change.values.update(resumed.values)
    change.attach = [i for code in listed for i in materials_in[code]["uploads"]]
    return change


def _completion(a: Attempt) -> Change:
    """办结: the outcome, the result and receipt photos, and official fees only (免费代办)."""
    session, principal, order, version, data = a.session, a.principal, a.order, a.version, a.data
    now = a.now
    if is_overdue(order, now) and not order.delay_explanation:
        raise DelayExplanationRequired()
    if data.outcome == "approved":  # 联办件: every department's part done, or why not
        check_parts_settled(session, a.ctx, order, version)
    owed = gaps(order)
    if owed and data.outcome == "approved":
        slots = {m["code"]: m["name"] for m in version.materials}
        raise GapsOutstanding(
            errors=[{"field": f"materials.{c}", "message": f"{slots[c]}尚未补正"} for c in owed]
        )
    problems = []
    if data.outcome not in get_args(Outcome):
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
    problems += upload_problems(session, principal, files)
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


def town_agent(session: Session, town_id: int, agent_id: int) -> Account | None:
    """An agent in use of the town, at a village station or at the town centre."""
    return session.scalar(
        select(Account)
        .join(Region, Region.id == Account.region_id)
        .where(
            Account.id == agent_id,
            Account.role == "agent",
            Account.disabled_at.is_(None),
            within(town_id),  # at a village station or at the town centre
        )
    )


def _agent_of_town(session: Session, agent_id: int | None, town_id: int) -> Account:
    if agent_id is None:
        raise errors.InvalidInput(errors=[{"field": "agentId", "message": "请选择代办员"}])
    row = town_agent(session, town_id, agent_id)
    if row is None:
        raise errors.NotFound("本镇没有该代办员")
    return row


@dataclass(frozen=True)
class Step:
    """What an action of the table does besides moving the status: `change` says what it
    writes, raising when the rules do not allow it now (None: nothing but its note, the
    reason given or the system's); `after` whom it then tells and which reminders it sets."""

    change: Callable[[Attempt], Change] | None
    after: Callable[[notices.Moved], None] | None = None


# Each action of the table (app/orders/states.py) and what it does, in one place: an action
# added to the table needs its step here (and its route, mini_program_api/moves.py).
STEPS: dict[str, Step] = {
    "assign": Step(_assign, notices.assigned),
    "take": Step(_take),
    "decline": Step(_decline, notices.declined),
    "accept": Step(_acceptance, notices.accepted),
    "request_supplement": Step(_supplement_request, notices.supplement_requested),
    "supplement": Step(_supplement, notices.supplemented),
    "reject": Step(_rejection, notices.rejected),
    "hold": Step(_hold, notices.held),
    "resume": Step(_resume, notices.resumed),
    "complete": Step(_completion, notices.completed),
    "deliver": Step(_delivery, notices.delivered),
    "confirm_receipt": Step(_receipt, notices.receipt_confirmed),
    "rate": Step(_rating),
    "close": Step(None),
    "cancel": Step(None, notices.cancelled),
    "terminate": Step(_termination, notices.terminated),
    "dispute": Step(_dispute, notices.disputed),
    "transfer": Step(_transfer, notices.transferred),
    "expire": Step(None, notices.expired),
}
assert set(STEPS) == ACTIONS, "every action of the table has its step, and only those"


def explain_delay(
    session: Session, ctx: Context, principal: Principal, order_id: int, text: str
) -> None:
    """延期说明: required once overdue, shown to the resident; an event, not a status."""
    order = own_order(session, principal, order_id)
    if order.status not in RUNNING:
        raise illegal(order.status, "explain_delay")
    now = ctx.now()
    if not is_overdue(order, now):
        raise NotOverdue()
    text = _require(text, "explanation", "请填写延期说明")
    values: dict[str, Any] = {"delay_explanation": text, "updated_at": now}
    if order.overdue_at is None and order.due_at is not None:
        values["overdue_at"] = order.due_at
    _guarded_update(session, order, update(Order).values(**values), "explain_delay")
    record_event(
        session, order.id, principal, now, "explain_delay", order.status, order.status, text
    )
    version = guide_version(session, ctx, order.item_version_id)
    o = notices.facts(ctx, order, version.name, order.status, order.due_at)
    notices.send(session, ctx, [order.resident_id], messages.delay_explained(o, text), now)


def reassign(
    session: Session,
    ctx: Context,
    principal: Principal | None,
    which: Sequence[ColumnElement[bool]],
    agent: Any,
    note: str | None,
    data: dict[str, Any] | None,
    now: datetime,
) -> list[Row[Any]]:
    """改派, the one way an order changes hands without a move (its status stays): the open
    orders `which` picks go to `agent` (id, name) in one statement, each with its timeline
    event (by `principal`, or the system) and the notice and take reminders of a new
    assignment. `which` is the caller's guard: a dispatcher's compare-and-set on one order,
    the take escalation's on the assignment its reminder was for, a hand-over's every order
    of an agent. Returns the orders moved, as they now are (none when the guard failed)."""
    assert which, "a guard picks the orders: never every open order"
    moved = list(
        session.execute(
            update(Order)
            .where(Order.status.in_(OPEN), *which)
            .values(agent_id=agent.id, assigned_at=now, updated_at=now)
            .returning(*ORDERS.c)
            .execution_options(synchronize_session=False)
        ).all()
    )
    for row in moved:
        item = guide_version(session, ctx, row.item_version_id).name
        notices.new_assignment(session, ctx, row, item, agent.id, now)
    if moved:
        data = {"agentId": agent.id, "agentName": agent.name} | (data or {})
        events = [
            event_values(row.id, principal, now, "reassign", row.status, row.status, note, data)
            for row in moved
        ]
        INSERT_EVENT.many(session.connection(), events)
    return moved


def reassign_order(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    agent_id: int,
    reason: str | None,
) -> None:
    """A dispatcher hands an open order to another agent of the town, with a reason."""
    order = order_in_scope(session, principal, order_id)
    if principal.role != "dispatcher":
        raise errors.Forbidden()
    if order.status not in OPEN or order.agent_id is None:
        raise illegal(order.status, "reassign")
    agent = _agent_of_town(session, agent_id, order.town_id)
    reason = _require(reason)
    decided_from = (
        Order.id == order.id,
        Order.status == order.status,
        Order.agent_id == order.agent_id,
    )
    if not reassign(session, ctx, principal, decided_from, agent, reason, None, ctx.now()):
        raise _lost(session, order, "reassign")


def decide_green_channel(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    grant: bool,
    reason: str | None,
) -> None:
    """绿色通道 (老弱病残孕): the order's agent confirms a flag (declared or from the age) or
    grants one, or withdraws it, always with a reason; an event, not a status."""
    order = own_order(session, principal, order_id)
    if order.status not in OPEN:
        raise illegal(order.status, "green_channel")
    reason = _require(reason)
    now = ctx.now()
    priority = int(grant or order.home_visit or order.appointment_at is not None)
    values = {
        "green_channel": grant,
        "green_channel_source": "agent",
        "priority": priority,
        "updated_at": now,
    }
    _guarded_update(session, order, update(Order).values(**values), "green_channel")
    data = {"grant": grant, "was": order.green_channel, "wasSource": order.green_channel_source}
    note = ("确认绿色通道:" if grant else "取消绿色通道:") + reason
    record_event(
        session, order.id, principal, now, "green_channel", order.status, order.status, note, data
    )
