"""Reminder jobs with injected time: each fires once, at the right working time, never on a
rest day; re-runs add nothing; stale reminders are dropped.

In the demo 西集镇 dispatches by itself: resident2's orders go to 吴秀芳 (agent4a, A post),
whose station partner is 郑海涛 (agent4b). The clock starts Monday 23 Nov 2026, 10:00.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Account, Notification, Order, Reminder
from jobs import tasks
from tests.conftest import Clock
from tests.factories import submit

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)


async def messages(ctx, handle: str, kind: str | None = None) -> list[Notification]:
    def find(session: Session) -> list[Notification]:
        account = session.scalar(select(Account.id).where(Account.openid == f"dev_{handle}"))
        query = select(Notification).where(Notification.recipient_id == account)
        if kind:
            query = query.where(Notification.kind == kind)
        return list(session.scalars(query.order_by(Notification.id)).all())

    return await ctx.db.run_read(find)


async def order_row(ctx, order_id: int) -> Order:
    order = await ctx.db.run_read(lambda s: s.get(Order, order_id))
    assert order is not None
    return order


async def tick(ctx, clock: Clock, moment: datetime) -> int:
    clock.current = moment
    return await tasks.remind(ctx)


async def _submitted(client, login) -> int:
    response = await submit(client, await login("resident2"))
    assert response.status_code == 201, response.text
    assert response.json()["agent"]["name"] == "吴秀芳"
    return int(response.json()["id"])


async def _accepted(client, login) -> int:
    order_id = await _submitted(client, login)
    agent = await login("agent4a")
    for action in ("take", "accept"):
        moved = await client.post(
            f"/mp/v1/agent/orders/{order_id}/{action}", json={}, headers=agent
        )
        assert moved.status_code == 200, moved.text
    return order_id


async def test_an_untaken_order_reminds_its_agent_after_two_working_hours_once(
    client, demo, login, ctx, clock
):
    order_id = await _submitted(client, login)
    assert [m.kind for m in await messages(ctx, "agent4a")] == ["assigned"]
    await tick(ctx, clock, at(2026, 11, 23, 11, 59))
    assert await messages(ctx, "agent4a", "take_reminder") == []
    await tick(ctx, clock, at(2026, 11, 23, 12, 0))
    await tick(ctx, clock, at(2026, 11, 23, 12, 30))  # again: nothing more
    reminded = await messages(ctx, "agent4a", "take_reminder")
    assert len(reminded) == 1 and reminded[0].order_id == order_id
    assert "请尽快接单" in reminded[0].body


async def test_working_hours_skip_the_weekend(client, demo, login, ctx, clock):
    clock.current = at(2026, 11, 27, 16, 30)  # Friday, half an hour before closing
    await _submitted(client, login)
    await tick(ctx, clock, at(2026, 11, 28, 12, 0))  # Saturday
    await tick(ctx, clock, at(2026, 11, 30, 10, 29))  # Monday, 1 h 59 min of working time
    assert await messages(ctx, "agent4a", "take_reminder") == []
    await tick(ctx, clock, at(2026, 11, 30, 10, 30))
    assert len(await messages(ctx, "agent4a", "take_reminder")) == 1


async def test_no_reminder_during_the_national_day_holiday(client, demo, login, ctx, clock):
    clock.current = at(2026, 9, 30, 16, 0)  # the last working afternoon before 1–7 October
    await _submitted(client, login)
    for day in range(1, 8):
        await tick(ctx, clock, at(2026, 10, day, 12, 0))
    assert await messages(ctx, "agent4a", "take_reminder") == []
    await tick(ctx, clock, at(2026, 10, 8, 9, 59))
    assert await messages(ctx, "agent4a", "take_reminder") == []
    await tick(ctx, clock, at(2026, 10, 8, 10, 0))  # 1 h on 30 Sept + 1 h on 8 Oct
    assert len(await messages(ctx, "agent4a", "take_reminder")) == 1


async def test_after_a_working_day_untaken_it_goes_to_b_and_the_dispatchers_hear(
    client, demo, login, ctx, clock
):
    order_id = await _submitted(client, login)
    await tick(ctx, clock, at(2026, 11, 24, 9, 59))
    assert (await order_row(ctx, order_id)).status == "assigned"
    assert await messages(ctx, "dispatcher2a", "take_escalated") == []
    await tick(ctx, clock, at(2026, 11, 24, 10, 0))
    order = await order_row(ctx, order_id)
    b_agent = await messages(ctx, "agent4b", "assigned")
    assert [m.order_id for m in b_agent] == [order_id]
    for handle in ("dispatcher2a", "dispatcher2b"):
        told = await messages(ctx, handle, "take_escalated")
        assert len(told) == 1 and "已自动改派给郑海涛" in told[0].body
    detail = (
        await client.get(f"/mp/v1/agent/orders/{order_id}", headers=await login("agent4b"))
    ).json()
    assert detail["agent"]["name"] == "郑海涛"
    assert detail["timeline"][-1]["data"]["rule"] == "take_escalation"
    assert order.assigned_at == at(2026, 11, 24, 10, 0)
    # The new assignment has its own reminders: B is reminded two working hours later.
    await tick(ctx, clock, at(2026, 11, 24, 12, 0))
    assert len(await messages(ctx, "agent4b", "take_reminder")) == 1
    assert len(await messages(ctx, "agent4a", "take_reminder")) == 1  # A's, from Monday


async def test_with_nobody_to_take_over_the_dispatchers_are_asked_to_reassign(
    client, demo, login, ctx, clock
):
    order_id = await _submitted(client, login)
    off = await client.patch(
        "/mp/v1/agent/duty", json={"status": "off_duty"}, headers=await login("agent4b")
    )
    assert off.status_code == 200
    await tick(ctx, clock, at(2026, 11, 24, 10, 0))
    assert (await order_row(ctx, order_id)).agent_id is not None
    told = await messages(ctx, "dispatcher2a", "take_escalated")
    assert len(told) == 1 and "请改派" in told[0].body


async def test_a_taken_order_drops_its_take_reminders(client, demo, login, ctx, clock):
    order_id = await _submitted(client, login)
    take = await client.post(
        f"/mp/v1/agent/orders/{order_id}/take", json={}, headers=await login("agent4a")
    )
    assert take.status_code == 200
    await tick(ctx, clock, at(2026, 11, 24, 12, 0))
    assert await messages(ctx, "agent4a", "take_reminder") == []
    assert await messages(ctx, "dispatcher2a", "take_escalated") == []
    outcomes = await ctx.db.run_read(
        lambda s: s.scalars(select(Reminder.outcome).where(Reminder.order_id == order_id)).all()
    )
    assert sorted(outcomes) == ["stale", "stale"]


async def test_due_soon_on_the_last_day_then_overdue_every_working_morning_until_explained(
    client, demo, login, ctx, clock
):
    # RS-0001: 5 working days. Accepted Monday 23 Nov: the last day is Monday 30 Nov.
    order_id = await _accepted(client, login)
    await tick(ctx, clock, at(2026, 11, 27, 16, 0))
    assert await messages(ctx, "agent4a", "due_soon") == []
    await tick(ctx, clock, at(2026, 11, 30, 9, 0))
    soon = await messages(ctx, "agent4a", "due_soon")
    assert len(soon) == 1 and "11月30日到期" in soon[0].body
    await tick(ctx, clock, at(2026, 12, 1, 8, 59))  # past due at midnight, before opening
    assert await messages(ctx, "agent4a", "overdue") == []
    await tick(ctx, clock, at(2026, 12, 1, 9, 0))
    assert len(await messages(ctx, "agent4a", "overdue")) == 1
    assert len(await messages(ctx, "dispatcher2a", "overdue")) == 1
    assert (await order_row(ctx, order_id)).overdue_at == at(2026, 12, 1, 0, 0)
    await tick(ctx, clock, at(2026, 12, 1, 16, 0))  # the same day: nothing more
    await tick(ctx, clock, at(2026, 12, 2, 9, 0))  # the next working morning: again
    assert len(await messages(ctx, "agent4a", "overdue")) == 2
    explained = await client.post(
        f"/mp/v1/agent/orders/{order_id}/explain-delay",
        json={"explanation": "区社保中心系统升级,顺延两日"},
        headers=await login("agent4a"),
    )
    assert explained.status_code == 200, explained.text
    assert len(await messages(ctx, "resident2", "delay_explained")) == 1
    for day in (3, 4, 7):
        await tick(ctx, clock, at(2026, 12, day, 10, 0))
    assert len(await messages(ctx, "agent4a", "overdue")) == 2


async def test_a_resident_is_reminded_to_supplement_and_the_order_lapses_after_30_days(
    client, demo, login, ctx, clock
):
    order_id = await _submitted(client, login)
    agent = await login("agent4a")
    await client.post(f"/mp/v1/agent/orders/{order_id}/take", json={}, headers=agent)
    asked = await client.post(
        f"/mp/v1/agent/orders/{order_id}/request-supplement",
        json={"missing": [{"code": "id_card", "reason": "照片反光看不清"}]},
        headers=agent,
    )
    assert asked.status_code == 200, asked.text
    told = await messages(ctx, "resident2", "supplement_requested")
    assert len(told) == 1 and "照片反光看不清" in told[0].body
    await tick(ctx, clock, at(2026, 11, 26, 9, 59))
    assert await messages(ctx, "resident2", "supplement_reminder") == []
    await tick(ctx, clock, at(2026, 11, 26, 10, 0))
    assert len(await messages(ctx, "resident2", "supplement_reminder")) == 1
    await tick(ctx, clock, at(2026, 12, 23, 9, 59))
    assert (await order_row(ctx, order_id)).status == "supplement_required"
    await tick(ctx, clock, at(2026, 12, 23, 10, 0))  # 30 days after the notice
    assert (await order_row(ctx, order_id)).status == "cancelled"
    assert len(await messages(ctx, "resident2", "expired")) == 1
    detail = (
        await client.get(f"/mp/v1/orders/{order_id}", headers=await login("resident2"))
    ).json()
    assert detail["timeline"][-1]["action"] == "expire"
    assert detail["timeline"][-1]["actorRole"] == "system"


async def test_an_appointment_is_recalled_the_working_day_before(client, demo, login, ctx, clock):
    response = await submit(
        client, await login("resident2"), homeVisit=True, appointmentAt="2026-11-30T09:30:00+08:00"
    )
    assert response.status_code == 201, response.text
    assert "【上门】【预约】" in (await messages(ctx, "agent4a", "assigned"))[0].body
    order_id = response.json()["id"]
    take = await client.post(
        f"/mp/v1/agent/orders/{order_id}/take", json={}, headers=await login("agent4a")
    )
    assert take.status_code == 200
    await tick(ctx, clock, at(2026, 11, 26, 17, 0))
    assert await messages(ctx, "resident2", "appointment_reminder") == []
    await tick(ctx, clock, at(2026, 11, 27, 9, 0))  # Friday, the working day before Monday
    for handle in ("resident2", "agent4a"):
        recalled = await messages(ctx, handle, "appointment_reminder")
        assert len(recalled) == 1 and "11月30日09:30上门" in recalled[0].body


async def test_two_workers_at_once_do_everything_once(client, demo, login, ctx, clock):
    for _ in range(3):
        await _submitted(client, login)
    clock.current = at(2026, 11, 24, 12, 0)
    await asyncio.gather(tasks.remind(ctx), tasks.remind(ctx))
    await tasks.remind(ctx)
    assert len(await messages(ctx, "agent4a", "take_reminder")) == 3
    assert len(await messages(ctx, "agent4b", "assigned")) == 3
    assert len(await messages(ctx, "dispatcher2a", "take_escalated")) == 3


async def test_a_reminder_that_fails_is_closed_as_an_error_and_the_rest_fire_once(
    client, demo, login, ctx, clock, caplog
):
    """A batch runs whole first; when a reminder fails, the batch is rolled back and run
    again one by one: the failing reminder is closed as "error", the others fire, once."""
    caplog.set_level("WARNING", logger="daiban.reminders")
    order_id = await _submitted(client, login)  # its take reminder is due at 12:00

    def damaged(session: Session) -> int:
        # due at the same time and made later, so it comes after the take reminder: a
        # reminder whose order is missing, as a damaged row would be
        row = Reminder(order_id=None, kind="due_soon", basis="", due_at=at(2026, 11, 23, 12, 0))
        session.add(row)
        session.flush()
        return row.id

    bad = await ctx.db.run_write(damaged)
    assert await tick(ctx, clock, at(2026, 11, 23, 12, 0)) == 2
    reminded = await messages(ctx, "agent4a", "take_reminder")
    assert [m.order_id for m in reminded] == [order_id]
    failed = await ctx.db.run_read(lambda s: s.get(Reminder, bad))
    assert failed is not None and (failed.status, failed.outcome) == ("done", "error")
    said = [r.getMessage() for r in caplog.records]
    assert "a reminder failed: its batch is run again one by one" in said
    assert said.count("reminder failed") == 1
    assert await tick(ctx, clock, at(2026, 11, 23, 12, 30)) == 0  # nothing left to fire


async def test_job_runs_are_recorded_for_admins(client, demo, login, ctx, clock):
    await _submitted(client, login)
    await tick(ctx, clock, at(2026, 11, 23, 12, 0))
    response = await client.get("/mp/v1/admin/jobs", headers=await login("admin"))
    assert response.status_code == 200, response.text
    runs = response.json()
    latest = {r["job"]: r for r in runs["latest"]}
    assert latest["reminders"]["items"] == 1 and latest["reminders"]["error"] is None
    assert latest["reminders"]["finishedAt"] is not None
    assert runs["remindersDue"] == 0
    denied = await client.get("/mp/v1/admin/jobs", headers=await login("dispatcher2a"))
    assert denied.status_code == 403


@pytest.mark.parametrize("handle", ["resident2", "agent4a"])
async def test_the_inbox_counts_unread_and_marks_read(client, demo, login, ctx, clock, handle):
    await _accepted(client, login)
    headers = await login(handle)
    inbox = (await client.get("/mp/v1/me/messages", headers=headers)).json()
    assert inbox["unread"] == len(inbox["items"]) >= 1
    first = inbox["items"][0]["id"]
    other = await login("resident1")
    await client.post("/mp/v1/me/messages/read", json={"ids": [first]}, headers=other)
    assert (await client.get("/mp/v1/me/messages", headers=headers)).json()["unread"] == inbox[
        "unread"
    ]
    read = await client.post("/mp/v1/me/messages/read", json={"ids": [first]}, headers=headers)
    assert read.json()["unread"] == inbox["unread"] - 1
    everything = await client.post("/mp/v1/me/messages/read", json={"all": True}, headers=headers)
    assert everything.json()["unread"] == 0
