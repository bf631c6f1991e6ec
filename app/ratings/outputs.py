"""What ratings, cases, appeals and complaints show, role by role."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.kinds import (
    AnswerKind,
    AppealReason,
    AppealStatus,
    CaseStatus,
    ComplaintStatus,
    RatingChannel,
)
from app.models.ratings import AnsweredVia, ComplaintChannel

GRADE_NAMES = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
FOLLOW_UP_NAMES = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}
# Where a rating came from (ratings.channel).
RATING_CHANNEL_NAMES = {
    "app": "小程序",
    "web": "进度查询页",
    "paper": "纸质评价卡",
    "default": "默认评价",
}
CHANNEL_NAMES = {"mini_program": "小程序", "phone": "电话", "in_person": "来访", "letter": "信件"}
ANSWERED_VIA_NAMES = {
    "phone": "电话回复",
    "in_person": "当面答复",
    "letter": "书面答复",
    "notice": "公示答复",
}


class RatingView(msgspec.Struct, rename="camel", kw_only=True):
    """A rating as staff see it: the comment only once it passed the text check; the
    resident's identity never (the dispatcher handling a bad rating sees it on the case)."""

    id: int
    grade: int
    grade_name: str
    tags: list[str]
    comment: str | None
    is_default: bool
    excluded: bool
    rated_at: datetime
    item_name: str
    channel: RatingChannel  # 小程序, 进度查询页, 纸质评价卡 (staff-recorded), 默认评价
    channel_name: str
    recorded_by_name: str | None = None  # who typed in a paper card
    card_upload_ids: list[int] | None = None  # the card's photo (not shown to the agent rated)
    agent_id: int | None = None
    agent_name: str | None = None
    order_id: int | None = None  # not shown to the agent rated
    order_number: str | None = None
    case_id: int | None = None
    case_status: CaseStatus | None = None


class MyRating(msgspec.Struct, rename="camel", kw_only=True):
    """The resident's own rating of an order, and the follow-up of its case if any."""

    order_id: int
    grade: int
    grade_name: str
    tags: list[str]
    comment: str | None
    is_default: bool
    rated_at: datetime
    channel: RatingChannel
    channel_name: str
    case_status: CaseStatus | None = None
    case_answer: str | None = None
    follow_up: str | None = None


class CaseView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    status: CaseStatus
    order_id: int
    order_number: str
    item_name: str
    agent_name: str | None
    grade: int
    grade_name: str
    tags: list[str]
    comment: str | None
    opened_at: datetime
    due_at: datetime
    overdue: bool
    verified_at: datetime | None
    verify_note: str | None
    answered_at: datetime | None
    answer_kind: AnswerKind | None
    answer: str | None
    follow_up: str | None
    follow_up_name: str | None
    followed_up_at: datetime | None
    escalated_at: datetime | None
    # For the call-back (回访): who rated, in full, to the dispatcher handling the case.
    resident_name: str | None = None
    resident_phone: str | None = None


class AppealView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    rating_id: int
    status: AppealStatus
    reason: AppealReason
    evidence: str
    evidence_upload_ids: list[int]
    appealed_at: datetime
    appealed_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    rating: RatingView | None = None


class ComplaintView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    status: ComplaintStatus
    # 小程序, or recorded by staff: 电话, 来访, 信件
    channel: ComplaintChannel
    channel_name: str
    anonymous: bool
    # The complainant has their own mini-program account: the answer reaches them there.
    in_app: bool
    order_id: int | None
    order_number: str | None
    agent_id: int | None
    agent_name: str | None
    text: str
    upload_ids: list[int]
    submitted_at: datetime
    # 当日或次日: the end of the next natural or working day (DAIBAN_RATINGS_COMPLAINT_NEXT_DAY)
    due_at: datetime
    overdue: bool
    answer: str | None
    answered_at: datetime | None
    answered_on_time: bool | None
    resolved: bool | None
    feedback: str | None
    escalated_at: datetime | None
    # To staff only: who complained, who took it, how the answer reached them.
    resident_name: str | None = None
    received_by_name: str | None = None
    contact_name: str | None = None  # one without an account: masked in lists
    contact_phone: str | None = None  # masked in lists, in full on the detail (audited)
    contact_id_number: str | None = None  # always masked
    answered_via: AnsweredVia | None = None
    answered_via_name: str | None = None
    answered_note: str | None = None
