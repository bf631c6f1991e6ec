"""上报件 and 联办件 after 受理 (seed 000): the steps of the matter's journey, recorded by its
agent as events that are not moves. The status stays 办理中 (or 中止) and the clock keeps the
item's rules: the promised days run from 受理 and no step stops them.

- 上报件 (escalated): the matter goes up to a department or a higher level and comes back:
  报送 (with the receipt, 回执), 受理, 答复, 退回/返回. Steps name the department of the
  catalogue or, for a level above the district, the office by name ("市民政局").
- 联办件 (joint): the guide names the lead department (主办) and its co-departments; the order
  keeps each one's part. 办结 waits until every part is done (答复 or 返回) or records why a
  department did not act (未参与, with the reason).

Each step is a timeline event in plain Chinese, and `orders.progress` keeps each
department's part as it stands for the detail, the board and the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models import Department, ItemVersion, Order
from app.notifications import messages
from app.notifications.outbox import notify
from app.orders import notices
from app.orders.records import (
    attach_uploads,
    guide_version,
    illegal,
    own_order,
    record_event,
    upload_problems,
)
from app.orders.states import RUNNING
from app.security.tokens import Principal

STEP_NAMES = {
    "sent": "报送",
    "received": "受理",
    "replied": "答复",
    "returned": "返回",
    "not_acted": "未参与",
}
# Which step may follow which, for one department (None: its first step).
FOLLOWS: dict[str, set[str | None]] = {
    "sent": {None, "returned"},  # sent again after it came back (e.g. for corrections)
    "received": {"sent"},
    "replied": {"sent", "received"},
    "returned": {"sent", "received", "replied"},
    "not_acted": {None, "sent", "received"},
}
# A joint order's part is settled once its department has done it or did not act.
SETTLED = frozenset({"replied", "returned", "not_acted"})
TRACKED_KINDS = frozenset({"escalated", "joint"})
# The steps the resident is told of (the rest are on the timeline).
TOLD = frozenset({"sent", "replied", "returned"})
OFFICE_MAX = 40


ProgressNotTracked = errors.error("progress_not_tracked", 409, "只有上报件和联办件记录办理进度")
PartsOutstanding = errors.error("joint_parts_outstanding", 409, "联办部门尚未全部办结")


@dataclass
class ProgressInput:
    step: str
    on: date
    department: str | None = None  # a department code of the catalogue
    office: str | None = None  # 上报件: a body above the district, by name
    note: str | None = None
    receipt_upload_ids: list[int] = field(default_factory=list)


def texts(kind: str, step: str, name: str, note: str | None) -> str:
    """What the resident reads on the timeline, in plain Chinese."""
    if kind == "joint":
        said = {
            "sent": f"已交{name}协同办理",
            "received": f"{name}已受理",
            "replied": f"{name}已办结承办部分",
            "returned": f"{name}已办结并退回材料",
            "not_acted": f"{name}未参与办理",
        }[step]
    else:
        said = {
            "sent": f"已报送{name}审核",
            "received": f"{name}已受理",
            "replied": f"{name}已作出答复",
            "returned": f"办理结果已从{name}返回",
            "not_acted": f"{name}未参与办理",
        }[step]
    return f"{said}:{note}" if note else said


def _catalogue_departments(
    session: Session, ctx: Context, ids: Sequence[int], codes: Sequence[str]
) -> tuple[dict[int, str], dict[str, str]]:
    """The catalogue's departments (id -> code, code -> name), kept for the process and read
    again when one asked for is not known yet (a department added by an import)."""
    by_id: dict[int, str] = ctx.caches.setdefault("department_codes", {})
    names: dict[str, str] = ctx.caches.setdefault("department_names", {})
    if any(i not in by_id for i in ids) or any(c not in names for c in codes):
        for row in session.execute(select(Department.id, Department.code, Department.name)):
            by_id[row.id] = row.code
            names[row.code] = row.name
    return by_id, names


def departments_of(session: Session, ctx: Context, version: ItemVersion) -> list[tuple[str, str]]:
    """(code, name) of the departments a joint order's parts are: the lead, then the others."""
    ids, codes = [version.department_id], version.co_departments
    by_id, names = _catalogue_departments(session, ctx, ids, codes)
    lead = by_id[version.department_id]
    return [(code, names.get(code, code)) for code in [lead, *codes]]


def parts_of(
    session: Session, ctx: Context, order: Any, version: ItemVersion
) -> list[dict[str, Any]]:
    """Each department's part as it stands; a joint order lists every department of its
    guide, those without a step yet as pending (step None)."""
    recorded: list[dict[str, Any]] = list((order.progress or {}).get("parts", []))
    if version.kind != "joint":
        return recorded
    by_key = {p["key"]: p for p in recorded}
    out = []
    for code, name in departments_of(session, ctx, version):
        out.append(by_key.get(code) or {"key": code, "department": code, "name": name})
    return out


def record_progress(
    session: Session, ctx: Context, principal: Principal, order_id: int, data: ProgressInput
) -> None:
    """One step of an escalated or joint order's journey, by its agent."""
    order = own_order(session, principal, order_id)
    version = guide_version(session, ctx, order.item_version_id)
    if version.kind not in TRACKED_KINDS:
        raise ProgressNotTracked()
    if order.status not in RUNNING:
        raise illegal(order.status, "progress")
    now = ctx.now()
    problems: list[dict[str, str]] = []
    if data.step not in STEP_NAMES:
        problems.append({"field": "step", "message": "请选择进度环节"})
    key, name = _department(session, ctx, version, data, problems)
    zone = ctx.settings.zone
    today = now.astimezone(zone).date()
    accepted = order.accepted_at.astimezone(zone).date() if order.accepted_at else today
    if data.on > today:
        problems.append({"field": "on", "message": "日期不能晚于今天"})
    elif data.on < accepted:
        problems.append({"field": "on", "message": "日期不能早于受理日期"})
    note = (data.note or "").strip() or None
    if data.step == "not_acted" and version.kind != "joint":
        problems.append({"field": "step", "message": "上报件没有\u201c未参与\u201d这一环节"})
    if data.step == "not_acted" and not note:
        problems.append({"field": "note", "message": "请写明该部门未参与办理的原因"})
    if data.step == "sent" and version.kind == "escalated" and not data.receipt_upload_ids:
        problems.append({"field": "receiptUploadIds", "message": "报送须上传回执照片"})
    problems += upload_problems(session, principal, {"receiptUploadIds": data.receipt_upload_ids})
    if problems:
        raise errors.InvalidInput(errors=problems)
    parts = [dict(p) for p in (order.progress or {}).get("parts", [])]
    current = next((p for p in parts if p["key"] == key), None)
    was = current["step"] if current else None
    follows = FOLLOWS[data.step]
    if version.kind == "joint" and data.step == "replied":
        follows = follows | {None}  # a part done with no hand-over to record (the lead's own)
    if was not in follows:
        before = f"{STEP_NAMES[was]}之后" if was else "尚未报送时"
        raise errors.InvalidInput(
            f"{name}{before}不能记录\u201c{STEP_NAMES[data.step]}\u201d",
            errors=[{"field": "step", "message": f"{name}当前环节:{_step_name(was)}"}],
        )
    part = {
        "key": key,
        "department": data.department,
        "name": name,
        "step": data.step,
        "on": data.on.isoformat(),
        "at": now.isoformat(),
    }
    if current is None:
        parts.append(part)
    else:
        parts[parts.index(current)] = part
    # Compare-and-set on the order as read: two steps at once, one wins, one gets 409.
    result = session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.status == order.status,
            Order.agent_id == order.agent_id,
            Order.updated_at == order.updated_at,
        )
        .values(progress={"parts": parts}, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict("办件刚刚有了变化,请刷新后再记录")
    if data.receipt_upload_ids:
        attach_uploads(session, principal, order.id, data.receipt_upload_ids)
    said = texts(version.kind, data.step, name, note)
    event: dict[str, Any] = {k: v for k, v in part.items() if k != "at"} | {"kind": version.kind}
    if data.receipt_upload_ids:
        event["receiptUploadIds"] = data.receipt_upload_ids
    record_event(
        session, order.id, principal, now, "progress", order.status, order.status, said, event
    )
    if data.step in TOLD:
        o = notices.facts(ctx, order, version.name, order.status, order.due_at)
        # Keyed by the step too: two steps recorded in one instant are two messages.
        dedupe = f"progressed:{order.id}:{key}:{data.step}:{now.timestamp():.6f}"
        notify(session, ctx, [order.resident_id], messages.progressed(o, said), dedupe, now)


def _department(
    session: Session,
    ctx: Context,
    version: ItemVersion,
    data: ProgressInput,
    problems: list[dict[str, str]],
) -> tuple[str, str]:
    """The part's key and the name the resident reads."""
    if version.kind == "joint":
        known = dict(departments_of(session, ctx, version))
        if data.office or data.department not in known:
            problems.append({"field": "department", "message": "请选择本事项的主办或协办部门"})
            return "", ""
        return data.department, known[data.department]
    if data.department and data.office:
        problems.append({"field": "office", "message": "部门和上级机关只填一项"})
        return "", ""
    if data.department:
        _, names = _catalogue_departments(session, ctx, (), (data.department,))
        if data.department not in names:
            problems.append({"field": "department", "message": f"未知部门 {data.department}"})
            return "", ""
        return data.department, names[data.department]
    office = (data.office or "").strip()
    if not office or len(office) > OFFICE_MAX:
        problems.append(
            {"field": "office", "message": f"请填写报送的部门或上级机关(不超过{OFFICE_MAX}字)"}
        )
        return "", ""
    return office, office


def check_parts_settled(session: Session, ctx: Context, order: Any, version: ItemVersion) -> None:
    """联办件: 办结 waits for every department's part, or the reason one did not act."""
    if version.kind != "joint":
        return
    open_parts = [p for p in parts_of(session, ctx, order, version) if p.get("step") not in SETTLED]
    if open_parts:
        raise PartsOutstanding(
            errors=[
                {"field": "progress", "message": f"{p['name']}尚未办结,也未记录未参与的原因"}
                for p in open_parts
            ]
        )


def _step_name(step: str | None) -> str:
    return STEP_NAMES.get(step or "", "未开始")


def progress_label(part: dict[str, Any]) -> str:
    """A part in a few words, for lists: 区民政局 · 报送 11月24日."""
    on = date.fromisoformat(part["on"]) if part.get("on") else None
    step = _step_name(part.get("step"))
    return f"{part['name']} · {step}" + (f" {on.month}月{on.day}日" if on else "")
