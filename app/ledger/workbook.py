"""The ledger's rows (register, work log, ratings) and the .xlsx built from them (openpyxl,
write-only: memory stays flat however many rows)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from app.catalogue.outputs import KIND_NAMES
from app.context import Context
from app.ledger.figures import Figures, completed_on_time, first_round_of
from app.models import Account, Order, OrderEvent, Rating, Rectification
from app.models.tables import VERSIONS
from app.orders.progress import progress_label
from app.orders.states import ACTION_NAMES, STATUS_NAMES
from app.ratings.outputs import GRADE_NAMES
from app.security.pii import mask_id_number, mask_name, mask_phone
from app.text import sheet_row
from app.workdays import last_day

OUTCOMES = {"approved": "准予", "denied": "不予"}
MAX_EXPORT_ROWS = 50_000

REGISTER_HEADER = [
    "办件号",
    "委托日期",
    "群众",
    "身份证号",
    "手机号",
    "事项",
    "代办员",
    "渠道",
    "状态",
    "受理时间",
    "承诺期限",
    "办结时间",
    "是否按期",
    "办理结果",
    "评价",
    "事项类型",
    "绿色通道",
    "补正轮次",
    "上报联办进度",
    "异议次数",
    "异议重办期限",
]
LOG_HEADER = ["时间", "办件号", "操作", "操作人", "角色", "原状态", "新状态", "说明"]
RATING_HEADER = ["办件号", "事项", "代办员", "评价", "标签", "默认评价", "评价时间", "差评整改"]
CHANNELS = {"mini_program": "小程序", "agent": "代办员录入"}
ROLES = {"resident": "群众", "agent": "代办员", "dispatcher": "调度员", "admin": "管理员"}


@dataclass(frozen=True)
class Sheets:
    """The ledger's sheets; an export of an order list has the register alone."""

    register: list[list[Any]]
    log: list[list[Any]] | None = None
    ratings: list[list[Any]] | None = None


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}" if moment else ""


def _last_day(due: datetime | None, zone: ZoneInfo) -> str:
    return f"{last_day(due, zone):%Y-%m-%d}" if due else ""


def register_rows(
    session: Session, ctx: Context, where: list[Any], *, unmasked: bool = False
) -> list[list[Any]]:
    """One row per order: the resident masked unless an admin asked otherwise."""
    zone = ctx.settings.zone
    resident, agent = aliased(Account), aliased(Account)
    rows = session.execute(
        select(
            Order,
            VERSIONS.c.name.label("item_name"),
            VERSIONS.c.kind,
            resident.name.label("resident_name"),
            resident.id_number_enc,
            resident.phone_enc,
            agent.name.label("agent_name"),
            Rating.grade,
            Rating.is_default,
        )
        .join(VERSIONS, VERSIONS.c.id == Order.item_version_id)
        .join(resident, resident.id == Order.resident_id)
        .outerjoin(agent, agent.id == Order.agent_id)
        .outerjoin(Rating, Rating.order_id == Order.id)
        .where(*where)
        .order_by(Order.id)
        .limit(MAX_EXPORT_ROWS)
    ).all()
    out = []
    for row in rows:
        order: Order = row.Order
        id_number = (
            ctx.cipher.decrypt(row.id_number_enc, context="id_number")
            if row.id_number_enc
            else None
        )
        phone = ctx.cipher.decrypt(row.phone_enc, context="phone") if row.phone_enc else None
        # A disputed order's due date, completion and timeliness are its first round's (as
        # the figures count them); its reopened work's due date has a column of its own.
        first = first_round_of(order)
        on_time = ""
        if first.completed_at is not None:
            on_time = "是" if completed_on_time(first) else "否"
        grade = ""
        if row.grade is not None:
            grade = GRADE_NAMES[row.grade] + ("(默认)" if row.is_default else "")
        out.append(
            [
                order.number,
                f"{order.submitted_at.astimezone(zone):%Y-%m-%d}",
                row.resident_name if unmasked else mask_name(row.resident_name),
                id_number if unmasked else mask_id_number(id_number),
                phone if unmasked else mask_phone(phone),
                row.item_name,
                row.agent_name or "",
                CHANNELS.get(order.channel, order.channel),
                STATUS_NAMES[order.status],
                _local(order.accepted_at, zone),
                _last_day(first.due_at, zone),
                _local(first.completed_at, zone),
                on_time,
                OUTCOMES.get(order.outcome or "", ""),
                grade,
                KIND_NAMES[row.kind],
                "是" if order.green_channel else "",
                order.supplement_rounds or 0,
                "; ".join(progress_label(p) for p in (order.progress or {}).get("parts", [])),
                order.dispute_rounds or 0,
                _last_day(order.due_at, zone) if order.dispute_rounds else "",
            ]
        )
    return out


def log_rows(
    session: Session, ctx: Context, where: list[Any], low: datetime, high: datetime
) -> list[list[Any]]:
    """The work log (工作日志): every timeline event of the period on those orders, by whom:
    a resident masked as in the register (李**), staff by name as on their public cards."""
    zone = ctx.settings.zone
    rows = session.execute(
        select(OrderEvent, Order.number, Account.name)
        .join(Order, Order.id == OrderEvent.order_id)
        .outerjoin(Account, Account.id == OrderEvent.actor_id)
        .where(*where, OrderEvent.at >= low, OrderEvent.at < high)
        .order_by(OrderEvent.id)
        .limit(MAX_EXPORT_ROWS)
    ).all()
    return [
        [
            _local(event.at, zone),
            number,
            ACTION_NAMES.get(event.action, event.action),
            _actor(event.actor_role, name),
            ROLES.get(event.actor_role, "系统"),
            STATUS_NAMES.get(event.from_status or "", ""),
            STATUS_NAMES.get(event.to_status, event.to_status),
            event.note or "",
        ]
        for event, number, name in rows
    ]


def _actor(role: str, name: str | None) -> str:
    if role == "system":
        return name or "系统"
    if role == "resident":
        return mask_name(name) or ""
    return name or ""


def rating_rows(session: Session, ctx: Context, where: list[Any]) -> list[list[Any]]:
    zone = ctx.settings.zone
    rows = session.execute(
        select(Rating, Order.number, VERSIONS.c.name, Account.name, Rectification.status)
        .join(Order, Order.id == Rating.order_id)
        .join(VERSIONS, VERSIONS.c.id == Order.item_version_id)
        .outerjoin(Account, Account.id == Rating.agent_id)
        .outerjoin(Rectification, Rectification.rating_id == Rating.id)
        .where(*where)
        .order_by(Rating.id)
        .limit(MAX_EXPORT_ROWS)
    ).all()
    return [
        [
            number,
            item,
            agent or "",
            GRADE_NAMES[rating.grade],
            "、".join(rating.tags),
            "是" if rating.is_default else "否",
            _local(rating.rated_at, zone),
            {"open": "待核实", "verified": "已核实", "answered": "已答复", "closed": "已回访"}.get(
                case or "", ""
            ),
        ]
        for rating, number, item, agent, case in rows
    ]


def summary_rows(title: str, f: Figures, *, state: str | None = None) -> list[list[Any]]:
    """The 汇总 sheet: the title, then `state` (a ledger's 未定稿, 定稿 or 更正 line, with
    when it was made), then the figures."""

    def pct(value: float | None) -> str:
        return f"{value * 100:.1f}%" if value is not None else "—"

    return [
        [title],
        *([[state]] if state else []),
        ["统计期间", f"{f.start} 至 {f.end}"],
        ["受理登记(委托)件数", f.received],
        ["受理件数", f.accepted],
        ["不予受理件数", f.rejected],
        ["办结件数", f.completed],
        ["按期办结件数", f.completed_on_time],
        ["超期办结件数", f.completed_late],
        ["办结率", pct(f.completion_rate)],
        ["按期办结率", pct(f.on_time_rate)],
        ["平均办理工作日", f.average_working_days if f.average_working_days is not None else "—"],
        [
            "90%办件在以下工作日内办结",
            f.p90_working_days if f.p90_working_days is not None else "—",
        ],
        ["补正率", pct(f.supplement_rate)],
        ["需要第二轮补正件数", f.second_rounds],
        ["群众提出异议件数", f.disputed],
        ["其中再次异议(转调度员派单)", f.second_disputes],
        ["绿色通道占比", pct(f.green_channel_share)],
        ["绿色通道按期办结率", pct(f.green_channel_on_time_rate)],
        *[[f"{name}件数", f.by_kind.get(kind, 0)] for kind, name in KIND_NAMES.items()],
        ["上报、联办进度环节数", f.progress_steps],
        ["小程序委托", f.channels.get("mini_program", 0)],
        ["代办员录入", f.channels.get("agent", 0)],
        ["评价件数", f.ratings],
        ["其中默认评价", f.default_ratings],
        ["满意率", pct(f.satisfaction_rate)],
        ["满意率(主动评价)", pct(f.satisfaction_rate_given)],
        ["不予受理、终止办理件评价数", f.unserved_ratings],
        ["其中满意率", pct(f.unserved_satisfaction_rate)],
        ["当前在办", f.in_progress_now],
        ["当前超期", f.overdue_now],
        [],
        ["高频事项", "件数"],
        *[[f"{i.name}({i.code})", i.count] for i in f.top_items],
    ]


def build_workbook(summary: list[list[Any]] | None, sheets: Sheets) -> bytes:
    """CPU work: call it off the event loop."""
    book = Workbook(write_only=True)
    parts: list[tuple[str, list[str] | None, list[list[Any]]]] = []
    if summary is not None:
        parts.append(("汇总", None, summary))
    parts.append(("办件登记", REGISTER_HEADER, sheets.register))
    if sheets.log is not None:
        parts.append(("工作日志", LOG_HEADER, sheets.log))
    if sheets.ratings is not None:
        parts.append(("评价", RATING_HEADER, sheets.ratings))
    for title, header, rows in parts:
        sheet = book.create_sheet(title)
        if header:
            sheet.append(header)
        for row in rows:
            sheet.append(sheet_row(sheet, row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
