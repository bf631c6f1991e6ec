"""What each notification says, in Chinese for the inbox, with the values a WeChat
subscription template can show (number, item, status, dueAt, note, time, name, phone)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app import workdays
from app.notifications.outbox import Message

DELIVERY_NAMES = {"pickup": "自取", "delivery": "送达", "post": "邮寄"}
OUTCOME_NAMES = {"approved": "准予办理", "denied": "不予办理"}


def full_day(day: date) -> str:
    """A date as printed on paper: 2026年11月30日."""
    return f"{day.year}年{day.month}月{day.day}日"


def local_day(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local.month}月{local.day}日"


def last_day(due_at: datetime | None, zone: ZoneInfo) -> str:
    """The due date as people say it: the last day (due_at is the midnight after it)."""
    if due_at is None:
        return ""
    day = workdays.last_day(due_at, zone)
    return f"{day.month}月{day.day}日"


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local.month}月{local.day}日{local:%H:%M}"


class OrderFacts:
    """The few facts of an order every message names."""

    def __init__(
        self,
        order_id: int,
        number: str,
        item: str,
        status_name: str,
        due_at: datetime | None,
        zone: ZoneInfo,
    ) -> None:
        self.order_id = order_id
        self.number = number
        self.item = item
        self.status_name = status_name  # 办理中, 已办结, …
        self.due_at = due_at
        self.zone = zone

    def message(self, kind: str, title: str, body: str, **extra: Any) -> Message:
        data: dict[str, Any] = {
            "number": self.number,
            "item": self.item,
            "status": self.status_name,
            "dueAt": self.due_at.isoformat() if self.due_at else None,
            "title": title,
            **{k: v for k, v in extra.items() if v is not None},
        }
        return Message(kind, title, body, data, self.order_id)


def accepted(o: OrderFacts, at: datetime) -> Message:
    return o.message(
        "accepted",
        "办件已受理",
        f"您委托的“{o.item}”已受理,办件号{o.number},承诺{last_day(o.due_at, o.zone)}前办结。",
        time=at.isoformat(),
    )


def supplement_requested(o: OrderFacts, missing: list[dict[str, str]]) -> Message:
    listed = ";".join(f"{m['name']}({m['reason']})" for m in missing)
    return o.message(
        "supplement_requested",
        "请补正材料",
        f"您委托的“{o.item}”需要补正以下材料:{listed}。请在小程序中上传。",
        note=listed,
    )


def with_reason(o: OrderFacts, kind: str, title: str, text: str, reason: str | None) -> Message:
    body = f"您委托的“{o.item}”{text}" + (f",原因:{reason}" if reason else "") + "。"
    return o.message(kind, title, body, note=reason)


def completed(o: OrderFacts, outcome: str | None, note: str | None) -> Message:
    result = OUTCOME_NAMES.get(outcome or "", OUTCOME_NAMES["denied"])
    body = f"您委托的“{o.item}”已办结:{result}" + (f"({note})" if note else "") + "。"
    return o.message("completed", "办件已办结", body + "代办员将把结果交回给您。", note=result)


def delivered(o: OrderFacts, method: str | None) -> Message:
    how = DELIVERY_NAMES.get(method or "", "交回")
    return o.message(
        "delivered",
        "办理结果已交回",
        f"您委托的“{o.item}”办理结果已{how}。",
        note=how,
    )


def rating_invite(o: OrderFacts, window_days: int) -> Message:
    return o.message(
        "rating_invite",
        "请评价本次代办服务",
        f"您委托的“{o.item}”已交回结果,请为本次代办服务评价;{window_days}天内未评价默认为基本满意。",
    )


def rating_reminder(o: OrderFacts, days_left: int) -> Message:
    return o.message(
        "rating_reminder",
        "别忘了评价",
        f"您委托的“{o.item}”还没有评价,{days_left}天后将默认为基本满意。",
    )


def delay_explained(o: OrderFacts, explanation: str) -> Message:
    return o.message(
        "delay_explained",
        "延期说明",
        f"您委托的“{o.item}”已超过承诺时限,代办员说明:{explanation}",
        note=explanation,
    )


def progressed(o: OrderFacts, said: str) -> Message:
    """上报件 / 联办件: a step of the matter's journey (已报送区民政局审核, …)."""
    return o.message("progressed", "办理进度", f"您委托的“{o.item}”:{said}。", note=said)


def expired(o: OrderFacts, days: int) -> Message:
    return o.message(
        "expired",
        "委托已自动撤回",
        f"您委托的“{o.item}”{days}天内未补正材料,已自动撤回。如仍需办理,请重新提交。",
    )


def supplement_reminder(o: OrderFacts, expire_days: int) -> Message:
    return o.message(
        "supplement_reminder",
        "补正材料提醒",
        f"您委托的“{o.item}”还需补正材料,请尽快上传;{expire_days}天内未补正将自动撤回。",
    )


def appointment_reminder(o: OrderFacts, at: datetime, home_visit: bool, for_agent: bool) -> Message:
    where = "上门" if home_visit else "到站"
    who = f"办件{o.number}“{o.item}”" if for_agent else f"您委托的“{o.item}”"
    return o.message(
        "appointment_reminder",
        "预约提醒",
        f"{who}已预约{local_time(at, o.zone)}{where}办理,请做好准备。",
        time=at.isoformat(),
    )


def assigned(o: OrderFacts, village: str | None, marks: list[str]) -> Message:
    mark = "".join(f"【{m}】" for m in marks)
    place = f"{village}群众" if village else "群众"
    return o.message(
        "assigned", "新的代办任务", f"{mark}{place}委托“{o.item}”(办件号{o.number}),请及时接单。"
    )


def for_agent(o: OrderFacts, kind: str, title: str, text: str, note: str | None = None) -> Message:
    return o.message(kind, title, f"办件{o.number}“{o.item}”{text}", note=note)


def pool(o: OrderFacts, village: str | None, why: str) -> Message:
    return o.message(
        "pool",
        "有办件待派单",
        f"{village or ''}办件{o.number}“{o.item}”等待派单:{why}。",
        note=why,
    )


def declined(o: OrderFacts, agent: str | None, reason: str | None) -> Message:
    return o.message(
        "declined",
        "代办员退回办件",
        f"{agent or '代办员'}退回了办件{o.number}“{o.item}”,"
        f"原因:{reason or '未写明'}。请重新派单。",
        name=agent,
        note=reason,
    )


def dispute_received(o: OrderFacts, to_dispatchers: bool) -> Message:
    """提出异议, as the resident is told: who takes it up and by when."""
    who = "已转镇便民服务中心重新派单" if to_dispatchers else "已交代办员重新办理"
    return o.message(
        "dispute_received",
        "异议已提交",
        f"您对“{o.item}”提出的异议已提交,{who},承诺{last_day(o.due_at, o.zone)}前办结。",
    )


def disputed(
    o: OrderFacts,
    village: str | None,
    agent: str | None,
    reason: str | None,
    rounds: int,
    *,
    for_dispatcher: bool,
) -> Message:
    """提出异议, as staff are told: the order's agent and the town's dispatchers. The first
    dispute goes back to the agent; a later one waits for a dispatcher to dispatch it."""
    due = last_day(o.due_at, o.zone)
    said = f"群众第{rounds}次提出异议:{reason or '未写明'}"
    order = f"办件{o.number}“{o.item}”"
    if rounds == 1 and for_dispatcher:
        then = f"已退回{agent or '代办员'}重新办理,{due}前办结"
    elif rounds == 1:
        then = f"请重新办理,{due}前办结"
    elif for_dispatcher:
        then = f"原承办人{agent or '未定'},请重新派单,{due}前办结"
    else:
        then = "已转调度员重新派单"
    where = (village or "") if for_dispatcher else ""  # dispatchers see the whole town
    body = f"{where}{order}{said}。{then}。"
    title = "群众提出异议" if rounds == 1 else "群众再次提出异议"
    return o.message("disputed", title, body, note=reason, name=agent)


def overdue(o: OrderFacts, agent: str | None, for_dispatcher: bool) -> Message:
    due = last_day(o.due_at, o.zone)
    if for_dispatcher:
        body = f"办件{o.number}“{o.item}”已超过承诺时限({due}),承办人{agent or '未定'},请督办。"
    else:
        body = f"办件{o.number}“{o.item}”已超过承诺时限({due}),请尽快办结并填写延期说明。"
    return o.message("overdue", "超期督办", body, name=agent)
