"""提出异议: within the rating window after hand-back the resident says the matter was not
resolved, with a reason and photos. The order runs again (办理中) with a fresh clock of
DAIBAN_ORDERS_DISPUTE_DAYS (5) working days from the day of the dispute: the first time with
its agent, a second time in the town's pool for a dispatcher to dispatch. The first round's
due date and completion stay as the figures counted them; the figures count the disputes.

resident2 (西集村) is served by 吴秀芳 (agent4a); 西集镇's dispatchers are dispatcher2a and
dispatcher2b. The clock starts Monday 23 Nov 2026, 10:00 in Shanghai."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from jobs import tasks
from tests.conftest import demo_service, make_settings
from tests.factories import agent_id, delivered, upload_photo
from tests.notifications.test_reminders import at, messages

REASON = "社保卡上的名字印错了一个字,还没有改过来"
WHOLE_MONTH = "from=2026-11-01&to=2026-12-31"


async def _dispute(client, login, order_id: int, **body: Any):
    body.setdefault("reason", REASON)
    return await client.post(
        f"/mp/v1/orders/{order_id}/dispute", json=body, headers=await login("resident2")
    )


async def _detail(client, login, order_id: int, handle: str = "resident2") -> dict[str, Any]:
    prefix = {"resident2": "/mp/v1/orders", "dispatcher2a": "/mp/v1/dispatch/orders"}.get(
        handle, "/mp/v1/agent/orders"
    )
    response = await client.get(f"{prefix}/{order_id}", headers=await login(handle))
    assert response.status_code == 200, response.text
    return response.json()


async def _hand_back(client, login, order_id: int, handle: str = "agent4a") -> dict[str, Any]:
    """The order's agent completes it again and hands it back."""
    agent = await login(handle)
    for action, body in (
        ("complete", {"outcome": "approved"}),
        (
            "deliver",
            {"deliveryMethod": "pickup", "proofUploadIds": [await upload_photo(client, agent)]},
        ),
    ):
        moved = await client.post(
            f"/mp/v1/agent/orders/{order_id}/{action}", json=body, headers=agent
        )
        assert moved.status_code == 200, (action, moved.text)
    return moved.json()


async def test_a_dispute_reopens_the_order_to_its_agent_and_it_is_rated_after_hand_back(
    client, demo, login, clock, ctx
):
    order_id = await delivered(client, login)
    first = await _detail(client, login, order_id)
    first_due = first["dueAt"]
    assert {"rating", "dispute"} <= set(first["nextActions"])
    clock.current = at(2026, 11, 25, 10, 0)  # Wednesday
    photo = await upload_photo(client, await login("resident2"))
    disputed = await _dispute(client, login, order_id, photoUploadIds=[photo])
    assert disputed.status_code == 200, disputed.text
    order = disputed.json()
    assert order["status"] == "accepted" and order["statusName"] == "办理中"
    assert order["disputeRounds"] == 1
    assert order["agent"]["name"] == "吴秀芳"
    # 5 working days after Wednesday 25 Nov: 26, 27, 30 Nov, 1 and 2 Dec; due at its end.
    assert order["dueAt"] == "2026-12-02T16:00:00Z" and order["dueAt"] != first_due
    assert order["remainingWorkingDays"] == 5 and order["overdue"] is False
    assert order["completedAt"] is None and order["outcome"] is None
    assert order["deliveredAt"] is None
    assert "dispute" not in order["nextActions"] and "rating" not in order["nextActions"]
    event = order["timeline"][-1]
    assert (event["action"], event["actionName"], event["actorRole"]) == (
        "dispute",
        "提出异议",
        "resident",
    )
    assert (event["fromStatus"], event["toStatus"], event["note"]) == (
        "delivered",
        "accepted",
        REASON,
    )
    assert event["data"]["round"] == 1 and event["data"]["photoUploadIds"] == [photo]
    assert event["data"]["dueAt"] == "2026-12-02T16:00:00+00:00"

    # The agent and the town's dispatchers are told; the resident is told who and by when.
    told = await messages(ctx, "agent4a", "disputed")
    assert len(told) == 1 and told[0].title == "群众提出异议" and REASON in told[0].body
    assert "12月2日前办结" in told[0].body
    for dispatcher in ("dispatcher2a", "dispatcher2b"):
        said = await messages(ctx, dispatcher, "disputed")
        assert len(said) == 1 and "已退回吴秀芳重新办理" in said[0].body
    assert await messages(ctx, "dispatcher1a", "disputed") == []  # another town
    receipt = await messages(ctx, "resident2", "dispute_received")
    assert len(receipt) == 1 and "已交代办员重新办理" in receipt[0].body

    # The agent works it again; the photo is on the order for them to see.
    agent_view = await _detail(client, login, order_id, "agent4a")
    assert "complete" in agent_view["nextActions"]
    link = await client.get(f"/mp/v1/uploads/{photo}/url", headers=await login("agent4a"))
    assert link.status_code == 200, link.text

    # Handed back again on Friday: the rating window starts again from this hand-back.
    clock.current = at(2026, 11, 27, 10, 0)
    again = await _hand_back(client, login, order_id)
    assert again["status"] == "delivered" and again["deliveredAt"] is not None
    # The first hand-back's window ends on 30 Nov: its default rating no longer applies.
    clock.current = at(2026, 11, 30, 11, 0)
    await tasks.remind(ctx)
    now = await _detail(client, login, order_id)
    assert now["status"] == "delivered"
    assert {"rating", "dispute"} <= set(now["nextActions"])
    invites = await messages(ctx, "resident2", "rating_invite")
    assert len(invites) == 2
    rated = await client.post(
        f"/mp/v1/orders/{order_id}/rating", json={"grade": 4}, headers=await login("resident2")
    )
    assert rated.status_code in (200, 201), rated.text
    closed = await _detail(client, login, order_id)
    assert closed["status"] == "closed" and closed["nextActions"] == []
    late = await _dispute(client, login, order_id)
    assert late.status_code == 409 and late.json()["code"] == "illegal_transition"
    assert late.json()["currentStatus"] == "closed"


async def test_the_reopened_work_is_due_in_working_days(client, demo, login, clock):
    """Disputed on Wednesday 30 Sept 2026, before National Day: 8, 9, 10 (the make-up
    Saturday), 12 and 13 Oct are the five working days."""
    clock.current = at(2026, 9, 30, 9, 0)
    order_id = await delivered(client, login)
    disputed = await _dispute(client, login, order_id)
    assert disputed.status_code == 200, disputed.text
    assert disputed.json()["dueAt"] == "2026-10-13T16:00:00Z"
    assert disputed.json()["dueProvisional"] is False


async def test_the_working_days_of_the_reopened_work_are_a_setting(
    database_url: str, tmp_path: Path, clock
):
    settings = make_settings(tmp_path / "var", database_url, DAIBAN_ORDERS_DISPUTE_DAYS="2")
    clock.current = at(2026, 9, 30, 9, 0)
    async with demo_service(settings, clock) as (_, client, _outside):

        async def login(handle: str) -> dict[str, str]:
            answer = await client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
            return {"Authorization": f"Bearer {answer.json()['accessToken']}"}

        order_id = await delivered(client, login)
        disputed = await _dispute(client, login, order_id)
        assert disputed.status_code == 200, disputed.text
        assert disputed.json()["dueAt"] == "2026-10-09T16:00:00Z"  # 8 and 9 Oct


async def test_a_second_dispute_goes_to_the_dispatchers_not_the_agent(
    client, demo, login, clock, ctx
):
    order_id = await delivered(client, login)
    assert (await _dispute(client, login, order_id)).status_code == 200
    await _hand_back(client, login, order_id)
    clock.current = at(2026, 11, 24, 10, 0)
    second = await _dispute(client, login, order_id, reason="还是没有改好")
    assert second.status_code == 200, second.text
    order = second.json()
    assert order["status"] == "accepted" and order["disputeRounds"] == 2
    assert order["agent"] is None
    assert order["dueAt"] == "2026-12-01T16:00:00Z"  # 25, 26, 27, 30 Nov, 1 Dec
    dispute, pooled = order["timeline"][-2:]
    assert (dispute["action"], dispute["note"], dispute["data"]["round"]) == (
        "dispute",
        "还是没有改好",
        2,
    )
    assert (pooled["action"], pooled["actionName"], pooled["actorRole"]) == (
        "pool",
        "进入派单池",
        "system",
    )
    assert pooled["note"] == "群众第2次提出异议,转调度员重新派单"
    assert (pooled["fromStatus"], pooled["toStatus"]) == ("accepted", "accepted")

    # The agent who had it is told, and can no longer work it.
    told = await messages(ctx, "agent4a", "disputed")
    assert [m.title for m in told] == ["群众提出异议", "群众再次提出异议"]
    assert "已转调度员重新派单" in told[-1].body
    refused = await client.post(
        f"/mp/v1/agent/orders/{order_id}/complete",
        json={"outcome": "approved"},
        headers=await login("agent4a"),
    )
    assert refused.status_code == 403, refused.text
    assert (await _detail(client, login, order_id, "agent4a"))["nextActions"] == []

    # The dispatchers find it in the pool with why, and dispatch it (not re-assign it).
    dispatcher = await login("dispatcher2a")
    said = await messages(ctx, "dispatcher2a", "disputed")
    assert said[-1].title == "群众再次提出异议" and "请重新派单" in said[-1].body
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    pool = {o["id"]: o for o in board["pool"]}
    assert pool[order_id]["why"] == "群众第2次提出异议,转调度员重新派单"
    assert board["poolTotal"] == 1
    seen = await _detail(client, login, order_id, "dispatcher2a")
    assert "assign" in seen["nextActions"] and "reassign" not in seen["nextActions"]
    zheng = await agent_id(client, dispatcher, "郑海涛")
    wrong = await client.post(
        f"/mp/v1/dispatch/orders/{order_id}/reassign",
        json={"agentId": zheng, "reason": "换人办理"},
        headers=dispatcher,
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "illegal_transition"
    assigned = await client.post(
        f"/mp/v1/dispatch/orders/{order_id}/assign", json={"agentId": zheng}, headers=dispatcher
    )
    assert assigned.status_code == 200, assigned.text
    order = assigned.json()
    assert order["status"] == "accepted" and order["agent"]["name"] == "郑海涛"
    assert order["dueAt"] == "2026-12-01T16:00:00Z"  # the clock runs from the dispute
    assert "assign" not in order["nextActions"] and "reassign" in order["nextActions"]
    assert order["timeline"][-1]["action"] == "assign"
    new_agent = await messages(ctx, "agent4b", "assigned")
    assert new_agent[-1].title == "异议办件派给您" and "12月1日前办结" in new_agent[-1].body
    twice = await client.post(
        f"/mp/v1/dispatch/orders/{order_id}/assign", json={"agentId": zheng}, headers=dispatcher
    )
    assert twice.status_code == 409 and twice.json()["code"] == "illegal_transition"
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    assert board["poolTotal"] == 0
    handed = await _hand_back(client, login, order_id, "agent4b")
    assert handed["status"] == "delivered" and handed["disputeRounds"] == 2


async def test_a_dispute_is_refused_after_the_window_and_on_a_closed_order(
    client, demo, login, clock, ctx
):
    window = ctx.settings.ratings.window_days
    in_time = await delivered(client, login)
    too_late = await delivered(client, login)
    clock.advance(days=window, seconds=-1)
    assert (await _dispute(client, login, in_time)).status_code == 200
    clock.advance(seconds=1)
    before = await _detail(client, login, too_late)
    assert "dispute" not in before["nextActions"] and "rating" in before["nextActions"]
    refused = await _dispute(client, login, too_late)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "dispute_window_over" and problem["title"] == "已超过提出异议的期限"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await _detail(client, login, too_late) == before

    # The default rating closes it at the window's end: then it cannot be disputed at all.
    await tasks.remind(ctx)
    closed = await _detail(client, login, too_late)
    assert closed["status"] == "closed"
    refused = await _dispute(client, login, too_late)
    assert refused.status_code == 409 and refused.json()["code"] == "illegal_transition"
    assert refused.json()["currentStatus"] == "closed"


async def test_only_the_orders_resident_may_dispute_and_only_after_hand_back(
    client, demo, login, clock
):
    order_id = await delivered(client, login)
    other = await client.post(
        f"/mp/v1/orders/{order_id}/dispute",
        json={"reason": REASON},
        headers=await login("resident1"),
    )
    assert other.status_code == 404 and other.json()["code"] == "not_found"
    staff = await client.post(
        f"/mp/v1/orders/{order_id}/dispute",
        json={"reason": REASON},
        headers=await login("agent4a"),
    )
    assert staff.status_code == 403
    assert (await _detail(client, login, order_id))["status"] == "delivered"
    # Before hand-back there is nothing to dispute.
    await _dispute(client, login, order_id)
    early = await _dispute(client, login, order_id)
    assert early.status_code == 409 and early.json()["currentStatus"] == "accepted"


async def test_bad_input_is_refused_and_changes_nothing(client, demo, login, clock):
    order_id = await delivered(client, login)
    before = await _detail(client, login, order_id)
    foreign = await upload_photo(client, await login("resident1"))
    for body, field in (
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "没" * 501}, "reason"),
        ({"reason": REASON, "photoUploadIds": [foreign]}, "photoUploadIds"),
        ({"reason": REASON, "photoUploadIds": [987654321]}, "photoUploadIds"),
        ({"reason": 12}, "reason"),
        ({"reason": REASON, "photoUploadIds": "1201"}, "photoUploadIds"),
        ({"reason": REASON, "photoUploadIds": [0]}, "photoUploadIds[0]"),
        ({"reason": REASON, "grade": 1}, "grade"),
        ({}, "reason"),
    ):
        refused = await client.post(
            f"/mp/v1/orders/{order_id}/dispute", json=body, headers=await login("resident2")
        )
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["code"] == "invalid_input", problem
        assert field in [e["field"] for e in problem["errors"]], (body, problem)
    assert await _detail(client, login, order_id) == before
    # The foreign photo is still its owner's to use.
    link = await client.get(f"/mp/v1/uploads/{foreign}/url", headers=await login("resident1"))
    assert link.status_code == 200


async def test_the_figures_and_the_ledger_count_disputes_and_keep_the_first_round(
    client, demo, login, clock, ctx
):
    once = await delivered(client, login)  # accepted and done on Monday 23 Nov: due 30 Nov
    twice = await delivered(client, login)
    clock.current = at(2026, 11, 24, 10, 0)
    assert (await _dispute(client, login, once)).status_code == 200  # due 1 Dec
    assert (await _dispute(client, login, twice)).status_code == 200
    await _hand_back(client, login, twice)
    assert (await _dispute(client, login, twice)).status_code == 200
    # The reopened work of `once` runs late, with a delay explained, and is done again.
    clock.current = at(2026, 12, 3, 10, 0)
    agent = await login("agent4a")
    late = await _detail(client, login, once, "agent4a")
    assert late["overdue"] is True
    explained = await client.post(
        f"/mp/v1/agent/orders/{once}/explain-delay",
        json={"explanation": "等区人社局重新制卡"},
        headers=agent,
    )
    assert explained.status_code == 200, explained.text
    await _hand_back(client, login, once)

    dispatcher = await login("dispatcher2a")
    stats = (await client.get(f"/mp/v1/dispatch/stats?{WHOLE_MONTH}", headers=dispatcher)).json()
    assert stats["disputed"] == 2 and stats["secondDisputes"] == 1
    assert stats["disputedByAgent"] == [
        {"agentId": await agent_id(client, dispatcher, "吴秀芳"), "name": "吴秀芳", "count": 2}
    ]
    # Each order counts once as done, on time, by its first round: the rework is no 办结.
    assert stats["completed"] == 2 and stats["completedOnTime"] == 2
    assert stats["onTimeRate"] == 1.0 and stats["completionRate"] == 1.0
    admin = (
        await client.get(f"/mp/v1/admin/stats?{WHOLE_MONTH}", headers=await login("admin"))
    ).json()
    assert admin["disputed"] == 2 and admin["secondDisputes"] == 1
    other_town = (
        await client.get(
            f"/mp/v1/dispatch/stats?{WHOLE_MONTH}", headers=await login("dispatcher1a")
        )
    ).json()
    assert other_town["disputed"] == 0 and other_town["disputedByAgent"] == []

    exported = await client.get(f"/mp/v1/dispatch/orders/export?{WHOLE_MONTH}", headers=dispatcher)
    assert exported.status_code == 200, exported.text
    sheet = load_workbook(io.BytesIO(exported.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header, by_number = rows[0], {row[0]: row for row in rows[1:]}
    row = by_number[(await _detail(client, login, once))["number"]]
    assert row[header.index("异议次数")] == 1 and row[header.index("是否按期")] == "是"
    assert row[header.index("承诺期限")] == "2026-11-30"  # the first round's
    assert row[header.index("异议重办期限")] == "2026-12-01"
    assert by_number[(await _detail(client, login, twice))["number"]][header.index("异议次数")] == 2

    clock.current = at(2026, 12, 5, 2, 0)
    await tasks.build_ledgers(ctx)
    files = await client.get("/mp/v1/dispatch/ledgers", headers=await login("dispatcher2a"))
    town = next(f for f in files.json() if f["regionName"] == "西集镇" and f["month"] == "2026-11")
    book = load_workbook(io.BytesIO((await client.get(town["url"])).content), read_only=True)
    summary = {r[0]: r[1] for r in book["汇总"].iter_rows(values_only=True) if len(r) > 1}
    assert summary["群众提出异议件数"] == 2 and summary["其中再次异议(转调度员派单)"] == 1
    assert summary["按期办结率"] == "100.0%"
