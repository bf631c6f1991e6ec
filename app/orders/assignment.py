"""An agent's duty status (在岗, 离岗, 请假) and who of a station receives new orders (AB岗)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.kinds import DutyStatus

DUTY_NAMES = {"on_duty": "在岗", "off_duty": "离岗", "on_leave": "请假"}


def duty_status(on_duty: bool, leave_until: date | None, today: date) -> DutyStatus:
    """Leave ends by itself after its last day; the agent is then as before it."""
    if leave_until is not None and today <= leave_until:
        return "on_leave"
    return "on_duty" if on_duty else "off_duty"


def takes_orders(agent: Any, today: date) -> bool:
    """An agent who can take an order today: in use, bound to WeChat (can log in), on duty.
    `agent` is an account row or model (role, disabled_at, openid, on_duty, leave_until)."""
    return (
        agent.role == "agent"
        and agent.disabled_at is None
        and agent.openid is not None
        and duty_status(agent.on_duty, agent.leave_until, today) == "on_duty"
    )


@dataclass(frozen=True)
class Dispatch:
    """Where a new order goes: an agent, or the town's pool; and the rule that said so."""

    rule: str
    note: str
    agent: Any | None = None  # a row with id, name, work_phone


def choose_agent(auto: bool, station: Sequence[Any], today: date) -> Dispatch:
    """The village's A agent when on duty, else its B agent (AB岗), else the town's pool.

    `station` rows carry id, name, work_phone, post, on_duty and leave_until."""
    if not auto:
        return Dispatch("manual_town", "本镇为人工派单,进入派单池等待调度员派单")
    on_duty = {
        row.post: row
        for row in sorted(station, key=lambda r: r.id, reverse=True)
        if duty_status(row.on_duty, row.leave_until, today) == "on_duty"
    }
    if "A" in on_duty:
        return Dispatch("auto_a", "自动派单给本村A岗代办员", on_duty["A"])
    if "B" in on_duty:
        return Dispatch("auto_b", "A岗不在岗,自动派单给本村B岗代办员", on_duty["B"])
    return Dispatch("pool_away", "本村A岗、B岗均不在岗,进入派单池等待调度员派单")
