"""Request bodies: strict (unknown fields refused), camelCase on the wire."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]


class Input(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class LoginInput(Input):
    code: Code


class RefreshInput(Input):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class BindStaffInput(Input):
    code: Annotated[str, msgspec.Meta(min_length=4, max_length=32)]


class PhoneCodeInput(Input):
    code: Code


class ProfileInput(Input):
    """Only the fields present change."""

    name: Name | None = None
    village_id: int | None = None
    phone: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    id_number: Annotated[str, msgspec.Meta(max_length=18)] | None = None


class StaffInput(Input):
    role: Literal["agent", "dispatcher", "admin"]
    name: Name
    region_id: int
    work_phone: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    service_hours: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    post: Literal["A", "B"] | None = None


class UploadInput(Input):
    purpose: Literal[
        "material", "entrustment", "result", "receipt", "proof", "complaint", "staff_photo"
    ]
    content_type: Annotated[str, msgspec.Meta(max_length=40)]
    size: Annotated[int, msgspec.Meta(ge=1)]


# Database ids: anything outside a BIGINT is refused as input, never passed to the driver.
Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
UploadIds = Annotated[list[Id], msgspec.Meta(max_length=20)]


class SubmitOrderInput(Input):
    item_code: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    materials: Annotated[dict[str, UploadIds], msgspec.Meta(max_length=40)] = {}
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    green_channel: bool = False  # 绿色通道: elderly, sick, disabled, pregnant
    home_visit: bool = False  # 上门: the agent comes to the resident's home
    # 预约: a time agreed with the agent, with its offset (2026-12-03T09:30:00+08:00)
    appointment_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class PersonInput(Input):
    name: Name
    id_number: Annotated[str, msgspec.Meta(max_length=18)]
    phone: Annotated[str, msgspec.Meta(max_length=20)]


class EnteredOrderInput(SubmitOrderInput, kw_only=True):
    """An order an agent enters for a resident who phoned or came to the station."""

    resident: PersonInput
    entrustment_upload_ids: UploadIds  # photos of the signed entrustment form (委托书)


class DutyInput(Input):
    status: Literal["on_duty", "off_duty", "on_leave"]
    leave_until: date | None = None  # the last day of leave
    hand_over: bool = False  # hand my open orders to my station's other agent now


class HandOverInput(Input):
    to_agent_id: Id | None = None  # default: the station's other agent on duty
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class TownRuleInput(Input):
    auto_dispatch: bool


class MissingMaterial(Input):
    code: Annotated[str, msgspec.Meta(max_length=40)]
    reason: Annotated[str, msgspec.Meta(max_length=200)]


class OrderActionInput(Input):
    """One body for every action; each action reads the fields it needs."""

    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    agent_id: Id | None = None
    missing: Annotated[list[MissingMaterial], msgspec.Meta(max_length=40)] = []
    materials: Annotated[dict[str, UploadIds], msgspec.Meta(max_length=40)] = {}
    outcome: Literal["approved", "denied"] | None = None
    fees_collected_fen: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0
    result_upload_ids: UploadIds = []
    receipt_upload_ids: UploadIds = []  # the official receipt for fees collected
    delivery_method: Literal["pickup", "delivery", "post"] | None = None
    proof_upload_ids: UploadIds = []  # the signed hand-over slip, delivery or postal receipt


class ExplanationInput(Input):
    explanation: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class CalendarDayInput(Input):
    day: date
    is_workday: bool
    note: Annotated[str, msgspec.Meta(max_length=60)] | None = None


class CalendarYearInput(Input):
    days: Annotated[list[CalendarDayInput], msgspec.Meta(max_length=366)]
    complete: bool


class MarkReadInput(Input):
    ids: Annotated[list[Id], msgspec.Meta(max_length=200)] = []
    all: bool = False


class SubscribeInput(Input):
    # The template ids the person accepted in wx.requestSubscribeMessage, one per tap.
    template_ids: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]],
        msgspec.Meta(min_length=1, max_length=20),
    ]
