"""Provisional due dates (a year chinese-calendar does not publish) once the admin enters
that year's schedule: running orders and orders on hold, with a timeline event each."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.asgi import create_app
from app.demo import seed_demo
from app.models import Reminder
from tests.conftest import Clock
from tests.factories import submit, taken_by_agent1a

NEW_YEAR_2027 = {"days": [{"day": "2027-01-01", "isWorkday": False, "note": "元旦"}]}


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 12, 30, 2, 0, tzinfo=UTC))  # Wednesday 30 Dec, 10:00 Shanghai


async def _accepted(client, login) -> int:
    """RS-0001 (5 working days) for resident1, accepted by agent1a now."""
    order_id = (await submit(client, await login("resident1"))).json()["id"]
    agent = await taken_by_agent1a(client, login, order_id)
    accepted = await client.post(f"/mp/v1/agent/orders/{order_id}/accept", json={}, headers=agent)
    assert accepted.status_code == 200, accepted.text
    return int(order_id)


async def test_entering_the_year_recomputes_what_an_order_on_hold_kept(client, demo, login, clock):
    order_id = await _accepted(client, login)
    resident = await login("resident1")
    guessed = (await client.get(f"/mp/v1/orders/{order_id}", headers=resident)).json()
    # 31 Dec, then 2027 guessed Monday to Friday: Fri 1, Mon 4, Tue 5, Wed 6 January.
    assert guessed["dueAt"] == "2027-01-06T16:00:00Z" and guessed["dueProvisional"] is True
    clock.advance(days=5)  # Monday 4 January 2027
    agent = await login("agent1a")
    held = await client.post(
        f"/mp/v1/agent/orders/{order_id}/hold", json={"reason": "等待申请人补签"}, headers=agent
    )
    assert held.json()["remainingWorkingDays"] == 2  # Tue 5, Wed 6: 1 January counted as used

    entered = await client.put(
        "/mp/v1/admin/calendar/2027",
        json={**NEW_YEAR_2027, "complete": True},
        headers=await login("admin"),
    )
    assert entered.status_code == 200, entered.text
    resident = await login("resident1")
    detail = (await client.get(f"/mp/v1/orders/{order_id}", headers=resident)).json()
    # 1 January is a holiday: 31 Dec, 4, 5, 6, 7 January; held on the 4th, three are left.
    assert detail["status"] == "on_hold" and detail["remainingWorkingDays"] == 3
    assert detail["dueAt"] == "2027-01-07T16:00:00Z" and detail["dueProvisional"] is False
    event = detail["timeline"][-1]
    assert event["action"] == "recompute_due" and event["actorRole"] == "system"
    assert event["actionName"] == "按正式节假日安排重算期限"
    assert event["fromStatus"] == event["toStatus"] == "on_hold"
    assert event["data"] == {
        "previousDueAt": "2027-01-06T16:00:00+00:00",
        "dueAt": "2027-01-07T16:00:00+00:00",
        "remainingDays": 3,
    }
    clock.advance(days=1)  # Tuesday 5 January: resumed, the three days count from the 6th
    resumed = await client.post(
        f"/mp/v1/orders/{order_id}/resume", json={}, headers=await login("resident1")
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["remainingWorkingDays"] == 3
    assert resumed.json()["dueAt"] == "2027-01-08T16:00:00Z"
    assert resumed.json()["dueProvisional"] is False


async def test_a_running_order_gets_its_new_due_time_an_event_and_its_reminders(
    client, demo, login, clock, ctx
):
    order_id = await _accepted(client, login)
    admin = await login("admin")
    again = await client.put(
        "/mp/v1/admin/calendar/2027", json={**NEW_YEAR_2027, "complete": True}, headers=admin
    )
    assert again.status_code == 200, again.text
    detail = (
        await client.get(f"/mp/v1/orders/{order_id}", headers=await login("resident1"))
    ).json()
    assert detail["dueAt"] == "2027-01-07T16:00:00Z" and detail["dueProvisional"] is False
    recomputed = [e for e in detail["timeline"] if e["action"] == "recompute_due"]
    assert len(recomputed) == 1 and recomputed[0]["data"]["dueAt"] == "2027-01-07T16:00:00+00:00"
    marks = await ctx.db.run_read(
        lambda s: {
            (kind, basis)
            for kind, basis in s.execute(
                select(Reminder.kind, Reminder.basis).where(Reminder.order_id == order_id)
            )
        }
    )
    new_due = "2027-01-07T16:00:00+00:00"
    assert {("due_soon", new_due), ("overdue", new_due)} <= marks  # 催办 and 督办 follow it
    # Entering the same schedule again changes nothing and writes nothing more.
    same = await client.put(
        "/mp/v1/admin/calendar/2027", json={**NEW_YEAR_2027, "complete": True}, headers=admin
    )
    assert same.status_code == 200
    detail = (
        await client.get(f"/mp/v1/orders/{order_id}", headers=await login("resident1"))
    ).json()
    assert [e["action"] for e in detail["timeline"]].count("recompute_due") == 1


async def test_from_november_the_start_warns_until_next_years_schedule_is_entered(
    ctx, settings, client, login
):
    """30 December 2026, and the library knows nothing of 2027: the service says so at start
    (as it would from 1 November); once an admin has entered 2027 as complete, it is quiet."""

    async def started_with_warning() -> bool:
        seen: list[str] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("daiban").addHandler(handler)
        try:
            async with create_app(settings, ctx=ctx).lifespan():  # in this event loop
                pass
        finally:
            logging.getLogger("daiban").removeHandler(handler)
        return any("schedule of 2027 is not entered" in message for message in seen)

    assert await started_with_warning()
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))
    entered = await client.put(
        "/mp/v1/admin/calendar/2027",
        json={**NEW_YEAR_2027, "complete": True},
        headers=await login("admin"),
    )
    assert entered.status_code == 200, entered.text
    assert not await started_with_warning()
