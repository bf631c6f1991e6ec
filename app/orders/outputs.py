"""What an order shows: list rows, the full detail with checklist, acceptance slip, timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import msgspec

from app.kinds import (
    DeliveryMethod,
    GreenChannelSource,
    ItemKind,
    OrderChannel,
    Outcome,
    ProgressStep,
)
from app.orders.states import STATUS_NAMES, ActorRole, OrderEventAction, OrderStatus

# The timeline event of the entrustment signed on the phone (app/orders/entrustment.py),
# not a move.
SIGN_ENTRUSTMENT = "sign_entrustment"

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


class ProgressPart(msgspec.Struct, rename="camel", kw_only=True):
    """上报件 / 联办件: one department's part of the matter, as it stands."""

    department: str | None  # the catalogue's code; None for a body above the district
    name: str
    step: ProgressStep | None  # None: not yet begun (a joint order's pending part)
    step_name: str
    on: date | None


class AgentContact(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    name: str | None
    work_phone: str | None


class VoiceNote(msgspec.Struct, rename="camel", kw_only=True):
    """语音留言: one of the resident's voice notes; its file by GET /mp/v1/uploads/{id}/url."""

    upload_id: int
    duration_ms: int | None
    duration_seconds: int | None  # as the phone shows it: 12″ (rounded, at least 1)


class EntrustmentState(msgspec.Struct, rename="camel", kw_only=True):
    """委托书: photos of a paper form, and the one signed on the phone, if it was."""

    upload_ids: list[int]  # every file of it, photos and the signed PDF
    signed: bool
    signed_at: datetime | None
    upload_id: int | None  # the PDF signed on the phone
    sha256: str | None  # of the text signed, as printed on the PDF


class OrderDetail(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    number: str
    item_code: str
    item_name: str
    item_version: int
    kind: ItemKind  # 即办件, 承诺件, 联办件, 上报件
    kind_name: str
    status: OrderStatus
    status_name: str
    channel: OrderChannel
    green_channel: bool
    # Who set the flag as it stands: declared by the resident, from the age on the verified
    # ID number, or the agent who confirmed or withdrew it.
    green_channel_source: GreenChannelSource | None
    home_visit: bool
    appointment_at: datetime | None
    note: str | None
    submitted_at: datetime
    accepted_at: datetime | None
    supplement_rounds: int  # 一次性告知 notices so far: 2 or more means a rework round
    dispute_rounds: int  # 提出异议 so far: each reopened the order with a fresh clock
    # 全区通办: the resident's own village when another station serves them (null at home);
    # an item handled only there is handed over before 受理 (the agent's `transfer`).
    home_village_id: int | None
    progress: list[ProgressPart]  # 上报件 / 联办件 only; each department's part
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
    entrustment: EntrustmentState
    voice_notes: list[VoiceNote]
    acceptance_slip: AcceptanceSlip | None
    timeline: list[TimelineEntry]
    next_actions: list[OrderEventAction]


def status_name(status: str) -> str:
    return STATUS_NAMES[status]
