"""Request bodies: strict (unknown fields refused), camelCase on the wire, and checked once
at the boundary: every integer fits a database id, no text carries control characters."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from app.kinds import DutyStatus, Post, ProgressStep, StaffRole, UploadPurpose
from app.prereview import ExpectedKind
from app.text import text_problem

MAX_ID = 2**63 - 1  # a BIGINT; anything larger is refused as input, never passed to a driver
# Fields whose text may run over several lines (tab and line breaks allowed): notes, reasons,
# answers. Every other text is one line.
MULTILINE: dict[str, Any] = {"multiline": True}
# How a text problem travels through msgspec's ValidationError to mini_program_api/problems.py.
TEXT_PROBLEM = "text-problem:"

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
UploadIds = Annotated[list[Id], msgspec.Meta(max_length=20)]
MaterialCode = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Materials = Annotated[dict[MaterialCode, UploadIds], msgspec.Meta(max_length=40)]


Note = Annotated[str, msgspec.Meta(max_length=500, extra=MULTILINE)]
Reason = Annotated[str, msgspec.Meta(max_length=200, extra=MULTILINE)]


class Input(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Every request body: its text is checked after decoding, field by field."""

    def __post_init__(self) -> None:
        for name, encode_name, multiline in _text_fields(type(self)):
            problem = field_text_problem(getattr(self, name), multiline=multiline)
            if problem:
                raise ValueError(f"{TEXT_PROBLEM}{encode_name}:{problem}")


def field_text_problem(value: Any, *, multiline: bool) -> str | None:
    """The first problem of any text in a field's value, or None."""
    for text in _strings(value):
        problem = text_problem(text, multiline=multiline)
        if problem:
            return problem
    return None


def multiline_fields(struct: type[msgspec.Struct]) -> dict[str, bool]:
    """Each field's name on the wire, and whether its text may hold several lines."""
    return {encode_name: multiline for _, encode_name, multiline in _text_fields(struct)}


@functools.cache
def _text_fields(struct: type[msgspec.Struct]) -> tuple[tuple[str, str, bool], ...]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = msgspec.structs.fields(struct)
    return tuple(
        (f.name, i.encode_name, _multiline(i.type))
        for f, i in zip(fields, info.fields, strict=True)
    )


def _multiline(type_: msgspec.inspect.Type) -> bool:
    if isinstance(type_, msgspec.inspect.Metadata):
        return bool((type_.extra or {}).get("multiline")) or _multiline(type_.type)
    if isinstance(type_, msgspec.inspect.UnionType):
        return any(_multiline(t) for t in type_.types)
    return False


def _strings(value: Any) -> Iterator[str]:
    """Every text in a field's value, dictionary keys included (nested bodies check their own)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)


class LoginInput(Input):
    code: Code


class RefreshInput(Input):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class BindStaffInput(Input):
    code: Annotated[str, msgspec.Meta(min_length=4, max_length=32)]


class OrderSearchInput(Input):
    # By order number, or by the person: name, ID number or phone (audited, with a purpose).
    by: Literal["number", "name", "id_number", "phone"]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    purpose: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class ConsoleSignInInput(Input):
    # What the console's QR code holds (app/accounts/console.py: new_secret, URL-safe).
    code: Annotated[str, msgspec.Meta(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class PhoneCodeInput(Input):
    code: Code


class CloseAccountInput(Input):
    """The resident types 注销 to confirm: the account cannot be brought back."""

    confirm: Literal["注销"]


class ProfileInput(Input):
    """Only the fields present change."""

    name: Name | None = None
    village_id: Id | None = None
    phone: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    id_number: Annotated[str, msgspec.Meta(max_length=18)] | None = None


class StaffInput(Input):
    role: StaffRole
    name: Name
    region_id: Id
    work_phone: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    service_hours: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    post: Post | None = None


class UploadInput(Input):
    purpose: UploadPurpose
    content_type: Annotated[str, msgspec.Meta(max_length=40)]
    size: Annotated[int, msgspec.Meta(ge=1)]
    # 智能预审: the identity document this photo should show; it is then read on the server
    # and the upload's `prereview` says what was found.
    document: ExpectedKind | None = None


class SubmitOrderInput(Input):
    item_code: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    materials: Materials = {}
    note: Note | None = None
    green_channel: bool = False  # 绿色通道: elderly, sick, disabled, pregnant
    home_visit: bool = False  # 上门: the agent comes to the resident's home
    # 预约: a time agreed with the agent, with its offset (2026-12-03T09:30:00+08:00)
    appointment_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    # 语音留言: recordings (uploads of purpose voice) for a resident who cannot type
    voice_note_upload_ids: Annotated[list[Id], msgspec.Meta(max_length=3)] = []
    # The entrustment (委托书) will be signed on the phone before 受理: its material may be
    # left empty now (POST /mp/v1/orders/{id}/entrustment/sign)
    sign_entrustment: bool = False
    # 全区通办: another village station of the district to serve the resident (where they
    # work, where family lives); left out, their own village's. An agent's entry ignores it.
    station_id: Id | None = None


class PersonInput(Input):
    name: Name
    id_number: Annotated[str, msgspec.Meta(max_length=18)]
    phone: Annotated[str, msgspec.Meta(max_length=20)]
    # the resident's village: a town centre's agent gives it; a station's is its own village
    village_id: Id | None = None


class EnteredOrderInput(SubmitOrderInput, kw_only=True):
    """An order an agent enters for a resident who phoned or came to the station."""

    resident: PersonInput
    entrustment_upload_ids: UploadIds  # photos of the signed entrustment form (委托书)


class SignEntrustmentInput(Input):
    """The resident's signature, drawn on the phone and uploaded as a PNG (purpose
    entrustment)."""

    signature_upload_id: Id


class DutyInput(Input):
    status: DutyStatus
    leave_until: date | None = None  # the last day of leave
    hand_over: bool = False  # hand my open orders to my station's other agent now


class HandOverInput(Input):
    to_agent_id: Id | None = None  # default: the station's other agent on duty
    reason: Reason | None = None


class TownRuleInput(Input):
    auto_dispatch: bool


class MissingMaterial(Input):
    code: MaterialCode
    reason: Reason


# --- the moves of an order: one body per action, each with just what the action reads -----

RequiredReason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, extra=MULTILINE)]


class MoveInput(Input):
    """A move that needs nothing; a note may go on the timeline. The body may be empty."""

    reason: Note | None = None


class ReasonInput(Input):
    """A move that must say why (退回, 不予受理, 中止, 终止): the resident reads it."""

    reason: RequiredReason


class AssignInput(Input):
    agent_id: Id


class SupplementRequestInput(Input):
    """一次性告知: every missing or wrong material at once, each with why."""

    missing: Annotated[list[MissingMaterial], msgspec.Meta(min_length=1, max_length=40)]
    reason: Note | None = None


class SupplementInput(Input):
    """The photos asked for, by material code."""

    materials: Materials
    reason: Note | None = None


class CompletionInput(Input):
    outcome: Literal["approved", "denied"]  # 准予, 不予
    reason: Note | None = None  # required when denied: the department's reason
    fees_collected_fen: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0
    result_upload_ids: UploadIds = []  # the result document (证照, 批复), photographed
    receipt_upload_ids: UploadIds = []  # the official receipt for fees collected


class DeliveryInput(Input):
    delivery_method: Literal["pickup", "delivery", "post"]  # 自取, 送达, 邮寄
    proof_upload_ids: UploadIds  # the signed hand-over slip, delivery or postal receipt
    reason: Note | None = None


class DisputeInput(Input):
    """提出异议: what was not resolved, in the resident's words, with photos if any."""

    reason: RequiredReason
    photo_upload_ids: UploadIds = []


class ProgressInput(Input):
    """上报件 / 联办件: one step of the matter's journey (app/orders/progress.py)."""

    step: ProgressStep  # sent 报送, received 受理, replied 答复, returned 返回, not_acted 未参与
    on: date  # the day it happened (not before 受理, not after today)
    department: Annotated[str, msgspec.Meta(min_length=1, max_length=30)] | None = None
    office: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | None = None  # 上级机关
    note: Note | None = None  # required for not_acted: why the department did not act
    receipt_upload_ids: UploadIds = []  # 回执: required when an escalated matter is sent


class GreenChannelInput(Input):
    """绿色通道: the agent confirms or grants (true) or withdraws (false) the flag."""

    grant: bool
    reason: RequiredReason


class ExplanationInput(Input):
    explanation: Annotated[str, msgspec.Meta(min_length=1, max_length=1000, extra=MULTILINE)]


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


class KeepInput(Input, kw_only=True):
    """Keep a material of my own order, as the agent accepted it, in my wallet."""

    order_id: Id
    material: MaterialCode  # id_card, hukou_book, disability_cert, …
    # The resident's explicit yes to the text the mini-program shows (wallet.CONSENT_TEXT).
    consent: Literal[True]
    valid_until: date | None = None  # the document's own validity, e.g. the ID card's back
