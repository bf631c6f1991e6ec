"""The closed sets of words the service uses beyond an order's own (app/orders/states.py):
one Literal each, for the API's enums and for type checking. The database's CHECK
constraints and the tables of Chinese names say the same; tests/api/test_openapi.py holds
them together."""

from __future__ import annotations

from typing import Literal

Role = Literal["resident", "agent", "dispatcher", "admin"]
StaffRole = Literal["agent", "dispatcher", "admin"]
Post = Literal["A", "B"]  # AB岗: the station's first and second agent
DutyStatus = Literal["on_duty", "off_duty", "on_leave"]  # 在岗, 离岗, 请假
RegionLevel = Literal["district", "town", "village"]
ItemLevel = Literal["village", "town", "district"]  # where an item is handled
ItemKind = Literal["immediate", "promised", "joint", "escalated"]  # 即办, 承诺, 联办, 上报
ItemMode = Literal["full", "proxy", "consult"]  # 全程代办, 代理, 咨询
# `voice`: a resident's voice note (语音留言) on a request, audio only; `entrustment`: a photo
# of a signed paper form, the signature drawn on the phone (PNG), or the signed PDF the
# service makes of it (app/orders/entrustment.py).
UploadPurpose = Literal[
    "material", "entrustment", "result", "receipt", "proof", "complaint", "staff_photo", "voice"
]
UploadStatus = Literal["pending", "ready", "rejected"]
CaseStatus = Literal["open", "verified", "answered", "closed"]  # 差评整改
ComplaintStatus = Literal["open", "answered", "closed"]
AppealStatus = Literal["pending", "upheld", "dismissed"]
AppealReason = Literal["mistaken", "malicious"]  # 误评, 恶意差评
# Where a rating came from: the mini-program, the public progress page, a paper rating card
# typed in by staff, or the default after the window.
RatingChannel = Literal["app", "web", "paper", "default"]
AnswerKind = Literal["fixed", "explained"]  # 已整改, 作出说明
OrderChannel = Literal["mini_program", "agent"]  # 小程序, 代办员录入
Outcome = Literal["approved", "denied"]  # 准予办理, 不予办理 (what the department decided)
DeliveryMethod = Literal["pickup", "delivery", "post"]  # 自取, 送达, 邮寄
# 上报件 / 联办件 (app/orders/progress.py): 报送, 受理, 答复, 返回, 未参与 (joint only)
ProgressStep = Literal["sent", "received", "replied", "returned", "not_acted"]
# Who set an order's green channel flag: the resident, the age on the ID number, the agent
GreenChannelSource = Literal["declared", "age", "agent"]
