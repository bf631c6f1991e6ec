"""The one transition table of an order: which action, by whom, moves which status where;
and the sets of statuses the rest of the service asks about, each named here once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import text

from app.models.orders import OPEN_PREDICATE

# The closed sets as types (the API's enums); each is checked against its table below.
OrderStatus = Literal[
    "submitted",
    "assigned",
    "reviewing",
    "supplement_required",
    "accepted",
    "on_hold",
    "completed",
    "delivered",
    "closed",
    "rejected",
    "cancelled",
]
# What the timeline records: the moves of the table and the events that are not moves.
OrderEventAction = Literal[
    "accept",
    "assign",
    "cancel",
    "claim",
    "close",
    "complete",
    "confirm_receipt",
    "decline",
    "deliver",
    "dispute",
    "expire",
    "explain_delay",
    "green_channel",
    "hold",
    "pool",
    "progress",
    "rate",
    "reassign",
    "recompute_due",
    "reject",
    "request_supplement",
    "resume",
    "sign_entrustment",
    "submit",
    "supplement",
    "take",
    "terminate",
    "transfer",
]
ActorRole = Literal["resident", "agent", "dispatcher", "admin", "system"]

STATUS_NAMES = {
    "submitted": "待派单",
    "assigned": "待接单",
    "reviewing": "审核中",
    "supplement_required": "待补正",
    "accepted": "办理中",
    "on_hold": "中止",
    "completed": "已办结",
    "delivered": "已回交",
    "closed": "已归档",
    "rejected": "不予受理",
    "cancelled": "已取消",
}


@dataclass(frozen=True)
class Move:
    to: str
    roles: frozenset[str]
    name: str  # the Chinese name of the action, for the timeline


def _move(to: str, roles: str, name: str) -> Move:
    return Move(to, frozenset(roles.split()), name)


# (from status, action) -> where it goes and who may do it.
ALLOWED_TRANSITIONS: dict[tuple[str, str], Move] = {
    ("submitted", "assign"): _move("assigned", "dispatcher system", "派单"),
    ("assigned", "take"): _move("reviewing", "agent", "接单"),
    ("assigned", "decline"): _move("submitted", "agent", "退回"),
    ("reviewing", "accept"): _move("accepted", "agent", "受理"),
    ("reviewing", "request_supplement"): _move("supplement_required", "agent", "一次性告知补正"),
    ("supplement_required", "supplement"): _move("reviewing", "resident agent", "补正材料"),
    ("on_hold", "supplement"): _move("accepted", "resident agent", "补正材料"),
    # 容缺受理: what the order still owes follows while the clock runs (records.gaps).
    ("accepted", "supplement"): _move("accepted", "resident agent", "补正材料"),
    ("reviewing", "reject"): _move("rejected", "agent", "不予受理"),
    ("accepted", "hold"): _move("on_hold", "agent", "中止办理"),
    ("on_hold", "resume"): _move("accepted", "resident agent", "恢复办理"),
    ("accepted", "complete"): _move("completed", "agent", "办结"),
    ("completed", "deliver"): _move("delivered", "agent", "回交"),
    ("completed", "confirm_receipt"): _move("delivered", "resident", "确认收到"),
    ("delivered", "rate"): _move("closed", "resident", "评价"),
    ("delivered", "close"): _move("closed", "system", "默认评价,归档"),
    # 提出异议: within the rating window the resident says the matter was not resolved; it
    # reopens with a fresh clock, the first time to its agent, a later time to the town's
    # dispatchers (nobody assigned: a `pool` event follows), who dispatch it again.
    ("delivered", "dispute"): _move("accepted", "resident", "提出异议"),
    ("accepted", "assign"): _move("accepted", "dispatcher", "派单"),  # only with nobody on it
    # 全区通办: another station served the resident first (首问); an item that must be handled
    # where they are registered goes there before 受理, into that station's dispatch.
    ("reviewing", "transfer"): _move("submitted", "agent", "转户籍地办理"),
    ("submitted", "cancel"): _move("cancelled", "resident", "撤回委托"),
    ("assigned", "cancel"): _move("cancelled", "resident", "撤回委托"),
    ("reviewing", "cancel"): _move("cancelled", "resident", "撤回委托"),
    ("supplement_required", "cancel"): _move("cancelled", "resident", "撤回委托"),
    ("supplement_required", "expire"): _move("cancelled", "system", "逾期未补正,自动撤回"),
    ("accepted", "terminate"): _move("cancelled", "agent dispatcher", "终止办理"),
    ("on_hold", "terminate"): _move("cancelled", "agent dispatcher", "终止办理"),
}

ACTIONS = frozenset(action for _, action in ALLOWED_TRANSITIONS)
ACTION_NAMES = {action: move.name for (_, action), move in ALLOWED_TRANSITIONS.items()} | {
    "submit": "提交委托",
    "pool": "进入派单池",
    "reassign": "改派",
    "explain_delay": "延期说明",
    "recompute_due": "按正式节假日安排重算期限",
    "claim": "本人微信账号认领",
    "progress": "办理进度",
    "green_channel": "绿色通道",
    "sign_entrustment": "签署委托书",
}


# The sets of statuses the rest of the service asks about, each named here once.
# Final: nothing more happens; no move of the table leaves these.
FINAL = frozenset({"closed", "rejected", "cancelled"})
# Done (办结, 回交): the result is with the resident or on its way; only the rating is left.
DONE = frozenset({"completed", "delivered"})
# Not final, in the table's order: what the dispatcher's board counts.
ACTIVE = tuple(s for s in STATUS_NAMES if s not in FINAL)
# Open: an agent still has work to do on it (or it waits for one). It may be re-assigned
# or handed over, counts in an agent's workload, and an appointment for it still stands.
OPEN = frozenset(ACTIVE) - DONE
# Open, spelt as the predicate of the open orders' index (ix_orders_agent_open), so that
# both databases read an agent's open orders through it.
OPEN_ORDER = text(f"orders.{OPEN_PREDICATE}")
# Accepted (受理) and not yet done: the clock runs (accepted) or a hold stopped it; it may
# be overdue, or owe materials accepted as gaps (容缺受理).
RUNNING = frozenset({"accepted", "on_hold"})
# Not yet taken: an agent given it now is reminded to take it.
UNTAKEN = frozenset({"submitted", "assigned"})


def actions_from(status: str, role: str) -> list[str]:
    """What `role` may do next on an order in `status` (for the "what can I do" list)."""
    return [a for (s, a), move in ALLOWED_TRANSITIONS.items() if s == status and role in move.roles]


assert set(get_args(OrderStatus)) == set(STATUS_NAMES), "OrderStatus and STATUS_NAMES differ"
assert set(get_args(OrderEventAction)) == set(ACTION_NAMES), "OrderEventAction and ACTION_NAMES"
assert FINAL == set(STATUS_NAMES) - {s for s, _ in ALLOWED_TRANSITIONS}, "FINAL: no move leaves"
assert RUNNING | UNTAKEN <= OPEN, "accepted or untaken orders are open"
