"""What an order shows: list rows, the full detail with checklist, acceptance slip, timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from app.kinds import DeliveryMethod, OrderChannel, Outcome
from app.orders.states import STATUS_NAMES, ActorRole, OrderEventAction, OrderStatus

RIGHTS_AND_DUTIES = (
    "本事项由代办员免费代办,不收取任何服务费用;依法应缴的税费由您本人承担,代收时出具票据。"
    "您有权随时查询办理进度,有权对服务进行评价和投诉;"
    "您应保证所提供材料真实有效,并按告知及时补正材料。"
)


class OrderSummary(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    number: str
    item_code: str
    item_name: str
    status: OrderStatus
    status_name: str
    green_channel: bool
    home_visit: bool
    appointment_at: datetime | None
    submitted_at: datetime
    due_at: datetime | None
    overdue: bool


class OrderPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[OrderSummary]
    next_cursor: int | None


class ChecklistSlot(msgspec.Struct, rename="camel", kw_only=True):
    code: str
    name: str
    required: bool
    count: int
    form: str
    upload_ids: list[int]
    state: Literal["empty", "submitted", "accepted", "missing", "rejected"]
    reason: str | None
    may_follow: bool = False  # 容缺: may be missing at submission and acceptance


class AcceptanceSlip(msgspec.Struct, rename="camel", kw_only=True):
    """受理单: what the resident gets when the agent accepts."""

    number: str
    item_name: str
    accepted_at: datetime
    due_at: datetime | None
    due_provisional: bool
    promised_days: int
    fees_fen: int
    fee_basis: str | None
    handler_name: str | None  # who accepted (受理人), as on the day of acceptance
    handler_phone: str | None
    materials_to_follow: list[str] = msgspec.field(
        default_factory=list
    )  # 容缺受理: accepted as owed
    rights_and_duties: str = RIGHTS_AND_DUTIES


class TimelineEntry(msgspec.Struct, rename="camel", kw_only=True):
    at: datetime
    action: OrderEventAction
    action_name: str
    actor_role: ActorRole
    actor_name: str | None
    from_status: OrderStatus | None
    to_status: OrderStatus
    note: str | None
    data: dict[str, Any] | None


class AgentContact(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    name: str | None
    work_phone: str | None


class OrderDetail(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    number: str
    item_code: str
    item_name: str
    item_version: int
    status: OrderStatus
    status_name: str
    channel: OrderChannel
    green_channel: bool
    home_visit: bool
    appointment_at: datetime | None
    note: str | None
    submitted_at: datetime
    accepted_at: datetime | None
    promised_days: int
    due_at: datetime | None
    due_provisional: bool
    remaining_working_days: int | None
    overdue: bool
    delay_explanation: str | None
    outcome: Outcome | None
    outcome_note: str | None
    fees_collected_fen: int
    completed_at: datetime | None
    delivered_at: datetime | None
    delivery_method: DeliveryMethod | None
    agent: AgentContact | None  # who handles it now, with the duty phone to call
    first_contact: AgentContact | None  # 首问负责: who first received it
    checklist: list[ChecklistSlot]
    acceptance_slip: AcceptanceSlip | None
    timeline: list[TimelineEntry]
    next_actions: list[OrderEventAction]


def status_name(status: str) -> str:
    return STATUS_NAMES[status]
