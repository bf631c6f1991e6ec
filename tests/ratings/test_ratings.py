"""Ratings (好差评), their default, bad ratings' rectification, appeals, complaints and the
satisfaction figures, through the HTTP API with injected time.

resident2 lives in 西集村 (西集镇, dispatched by itself): its orders go to 吴秀芳 (agent4a).
The clock starts Monday 23 Nov 2026, 10:00 in Shanghai.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.models import Complaint, Order, Rating
from jobs import tasks
from tests.factories import delivered, submit
from tests.notifications.test_reminders import at, messages, tick


async def _rate(client, login, order_id, grade, handle="resident2", **extra):
    return await client.post(
        f"/mp/v1/orders/{order_id}/rating",
        json={"grade": grade, **extra},
        headers=await login(handle),
    )


async def test_only_the_orders_resident_only_once_only_after_hand_back(client, demo, login, ctx):
    early = (await submit(client, await login("resident2"))).json()["id"]
    too_early = await _rate(client, login, early, 5)
    assert too_early.status_code == 409 and too_early.json()["code"] == "illegal_transition"
    assert too_early.json()["currentStatus"] == "assigned"
    order_id = await delivered(client, login)
    invited = await messages(ctx, "resident2", "rating_invite")
    assert [m.order_id for m in invited] == [order_id]
    assert (await _rate(client, login, order_id, 5, handle="resident1")).status_code == 404
    staff = await client.post(
        f"/mp/v1/orders/{order_id}/rating", json={"grade": 5}, headers=await login("agent4a")
    )
    assert staff.status_code == 403
    rated = await _rate(client, login, order_id, 5, tags=["办事快", "态度好"], comment="很方便")
    assert rated.status_code == 201, rated.text
    assert rated.json()["gradeName"] == "非常满意" and rated.json()["isDefault"] is False
    again = await _rate(client, login, order_id, 1)
    assert again.status_code == 409 and again.json()["code"] == "already_rated"
    detail = (
        await client.get(f"/mp/v1/orders/{order_id}", headers=await login("resident2"))
    ).json()
    assert detail["status"] == "closed" and detail["timeline"][-1]["action"] == "rate"
    assert detail["nextActions"] == []


async def test_tags_must_fit_the_grade_and_bad_words_stay_hidden_from_staff(client, demo, login):
    order_id = await delivered(client, login)
    wrong = await _rate(client, login, order_id, 5, tags=["材料反复要"])
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "tags"
    rated = await _rate(client, login, order_id, 2, tags=["超时"], comment="办事太慢,什么垃圾东西")
    assert rated.status_code == 201
    assert rated.json()["comment"] == "办事太慢,什么垃圾东西"  # the resident sees their own
    for handle, path in (
        ("agent4a", "/mp/v1/agent/ratings"),
        ("dispatcher2a", "/mp/v1/dispatch/ratings"),
    ):
        [seen] = (await client.get(path, headers=await login(handle))).json()
        assert seen["grade"] == 2 and seen["tags"] == ["超时"] and seen["comment"] is None


async def test_a_kind_comment_reaches_staff_and_the_agent_never_sees_who(client, demo, login):
    order_id = await delivered(client, login)
    await _rate(client, login, order_id, 4, comment="吴书记跑了两趟,辛苦了")
    [mine] = (await client.get("/mp/v1/agent/ratings", headers=await login("agent4a"))).json()
    assert mine["comment"] == "吴书记跑了两趟,辛苦了"
    assert mine["orderId"] is None and mine["orderNumber"] is None and mine["agentName"] is None
    [town] = (
        await client.get("/mp/v1/dispatch/ratings", headers=await login("dispatcher2a"))
    ).json()
    assert town["orderId"] == order_id and town["agentName"] == "吴秀芳"
    assert (await client.get("/mp/v1/agent/ratings", headers=await login("agent4b"))).json() == []
    other = await client.get("/mp/v1/dispatch/ratings", headers=await login("dispatcher1a"))
    assert other.json() == []


async def test_unrated_after_seven_days_the_order_gets_the_default_and_closes(
    client, demo, login, ctx, clock
):
    order_id = await delivered(client, login)
    await tick(ctx, clock, at(2026, 11, 26, 9, 59))
    assert await messages(ctx, "resident2", "rating_reminder") == []
    await tick(ctx, clock, at(2026, 11, 26, 10, 0))  # 3 days after hand-back
    assert len(await messages(ctx, "resident2", "rating_reminder")) == 1
    await tick(ctx, clock, at(2026, 11, 30, 9, 59))
    assert (await ctx.db.run_read(lambda s: s.get(Order, order_id))).status == "delivered"
    await tick(ctx, clock, at(2026, 11, 30, 10, 0))  # 7 natural days
    assert (await ctx.db.run_read(lambda s: s.get(Order, order_id))).status == "closed"
    [default] = (
        await client.get("/mp/v1/dispatch/ratings", headers=await login("dispatcher2a"))
    ).json()
    assert default["grade"] == 3 and default["gradeName"] == "基本满意" and default["isDefault"]
    late = await _rate(client, login, order_id, 5)
    assert late.status_code == 409 and late.json()["code"] == "already_rated"
    mine = (
        await client.get(f"/mp/v1/orders/{order_id}/rating", headers=await login("resident2"))
    ).json()
    assert mine["isDefault"] is True


async def test_a_rating_before_the_window_ends_cancels_the_default(client, demo, login, ctx, clock):
    order_id = await delivered(client, login)
    await tick(ctx, clock, at(2026, 11, 27, 10, 0))
    assert (await _rate(client, login, order_id, 4)).status_code == 201
    await tick(ctx, clock, at(2026, 12, 1, 10, 0))
    [rating] = (
        await client.get("/mp/v1/dispatch/ratings", headers=await login("dispatcher2a"))
    ).json()
    assert rating["grade"] == 4 and rating["isDefault"] is False


async def test_a_bad_rating_opens_a_case_with_reminders_escalation_and_a_follow_up(
    client, demo, login, ctx, clock
):
    order_id = await delivered(client, login)
    rated = await _rate(client, login, order_id, 1, tags=["材料反复要"], comment="来回跑了三趟")
    assert rated.status_code == 201
    told = await messages(ctx, "dispatcher2a", "bad_rating")
    assert len(told) == 1 and "15个工作日" in told[0].body
    dispatcher = await login("dispatcher2a")
    [case] = (await client.get("/mp/v1/dispatch/rectifications", headers=dispatcher)).json()
    assert case["status"] == "open" and case["residentName"] is None  # not in lists
    # 15 working days from Monday 23 Nov: the last day is Monday 14 Dec.
    assert case["dueAt"] == "2026-12-14T16:00:00Z"
    detail = (
        await client.get(f"/mp/v1/dispatch/rectifications/{case['id']}", headers=dispatcher)
    ).json()
    assert detail["residentName"] == "李建国" and detail["residentPhone"] == "13706325678"
    await tick(ctx, clock, at(2026, 12, 11, 9, 0))  # two working days ahead: Friday 11 Dec
    assert len(await messages(ctx, "dispatcher2b", "rectify_reminder")) == 1
    await tick(ctx, clock, at(2026, 12, 15, 9, 0))  # past the deadline: the admin hears
    assert len(await messages(ctx, "admin", "rectify_overdue")) == 1
    dispatcher = await login("dispatcher2a")
    case_path = f"/mp/v1/dispatch/rectifications/{case['id']}"
    early = await client.post(
        f"/mp/v1/orders/{order_id}/rating/follow-up",
        json={"grade": "satisfied"},
        headers=await login("resident2"),
    )
    assert early.status_code == 409
    verified = await client.post(
        f"{case_path}/verify", json={"note": "电话回访:材料清单未一次说清"}, headers=dispatcher
    )
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    answered = await client.post(
        f"{case_path}/answer",
        json={"kind": "fixed", "answer": "已对代办员批评教育,并修订材料清单"},
        headers=dispatcher,
    )
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    assert len(await messages(ctx, "resident2", "rectification_answered")) == 1
    resident = await login("resident2")
    followed = await client.post(
        f"/mp/v1/orders/{order_id}/rating/follow-up", json={"grade": "basic"}, headers=resident
    )
    assert followed.status_code == 200 and followed.json()["status"] == "closed"
    mine = (await client.get(f"/mp/v1/orders/{order_id}/rating", headers=resident)).json()
    assert mine["caseStatus"] == "closed" and mine["followUp"] == "basic"
    other_town = await client.get(
        case_path.replace("2a", "1a"), headers=await login("dispatcher1a")
    )
    assert other_town.status_code == 404


async def test_an_upheld_appeal_leaves_the_rating_out_and_a_dismissed_one_keeps_it(
    client, demo, login
):
    first, second = await delivered(client, login), await delivered(client, login)
    await _rate(client, login, first, 1)
    await _rate(client, login, second, 1)
    dispatcher = await login("dispatcher2a")
    ratings = (await client.get("/mp/v1/dispatch/ratings", headers=dispatcher)).json()
    by_order = {r["orderId"]: r["id"] for r in ratings}
    appeals = []
    for order_id in (first, second):
        appealed = await client.post(
            f"/mp/v1/dispatch/ratings/{by_order[order_id]}/appeal",
            json={"reason": "malicious", "evidence": "该群众在办件前即声称要给差评,有通话录音"},
            headers=dispatcher,
        )
        assert appealed.status_code == 201, appealed.text
        appeals.append(appealed.json()["id"])
    twice = await client.post(
        f"/mp/v1/dispatch/ratings/{by_order[first]}/appeal",
        json={"reason": "mistaken", "evidence": "再次申诉"},
        headers=dispatcher,
    )
    assert twice.status_code == 409
    # The town's dispatchers see the appeals about its ratings; another town's none.
    theirs = (await client.get("/mp/v1/dispatch/appeals", headers=dispatcher)).json()
    assert sorted(a["id"] for a in theirs) == sorted(appeals)
    other = await client.get("/mp/v1/dispatch/appeals", headers=await login("dispatcher1a"))
    assert other.json() == []
    admin = await login("admin")
    for appeal_id, upheld in zip(appeals, (True, False), strict=True):
        decided = await client.post(
            f"/mp/v1/admin/appeals/{appeal_id}/decide",
            json={"upheld": upheld, "note": "核实录音" if upheld else "证据不足"},
            headers=admin,
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["status"] == ("upheld" if upheld else "dismissed")
    figures = (
        await client.get(
            "/mp/v1/dispatch/satisfaction?from=2026-11-01&to=2026-11-30&by=agent",
            headers=dispatcher,
        )
    ).json()
    total = figures["total"]
    assert total["ratings"] == 1 and total["excluded"] == 1 and total["grades"]["1"] == 1
    listed = (await client.get("/mp/v1/dispatch/ratings", headers=dispatcher)).json()
    assert sorted(r["excluded"] for r in listed) == [False, True]  # the trail stays


async def test_satisfaction_on_a_hand_made_month_equals_the_hand_computed_rate(
    client, demo, login, ctx, clock
):
    # Given: 5, 5, 4, 3, 2, 1 (吴秀芳); defaults: two orders left unrated past the window.
    given = [5, 5, 4, 3, 2, 1]
    rated = [await delivered(client, login) for _ in given]
    unrated = [await delivered(client, login) for _ in range(2)]
    for order_id, grade in zip(rated, given, strict=True):
        assert (await _rate(client, login, order_id, grade)).status_code == 201
    await tick(ctx, clock, at(2026, 11, 30, 10, 0))  # both defaults are recorded
    dispatcher = await login("dispatcher2a")
    figures = (
        await client.get(
            "/mp/v1/dispatch/satisfaction?from=2026-11-01&to=2026-11-30&by=agent",
            headers=dispatcher,
        )
    ).json()
    [agent] = figures["rows"]
    assert agent["name"] == "吴秀芳"
    assert agent["ratings"] == 8 and agent["given"] == 6 and agent["defaulted"] == 2
    assert agent["grades"] == {"5": 2, "4": 1, "3": 3, "2": 1, "1": 1}
    assert agent["satisfactionRate"] == 0.75  # (2 + 1 + 3) / 8
    assert agent["givenRate"] == round(4 / 6, 4) and agent["defaultRate"] == 1.0
    assert agent["bad"] == 2 and agent["cases"] == {"open": 2}
    assert agent["shares"]["3"] == 0.375
    assert figures["total"]["satisfactionRate"] == 0.75
    december = (
        await client.get(
            "/mp/v1/dispatch/satisfaction?from=2026-12-01&to=2026-12-31", headers=dispatcher
        )
    ).json()
    assert december["total"]["ratings"] == 0 and december["total"]["satisfactionRate"] is None
    assert len(unrated) == 2


@pytest.mark.parametrize("settings", ["working"], indirect=True)
async def test_next_working_day_a_complaint_made_on_friday_is_due_on_monday_escalates_tuesday(
    client, demo, login, ctx, clock
):
    """With DAIBAN_RATINGS_COMPLAINT_NEXT_DAY=working (the default, natural days, is in
    tests/ratings/test_complaint_channels.py)."""
    clock.current = at(2026, 11, 27, 15, 0)  # Friday afternoon
    order_id = (await submit(client, await login("resident2"))).json()["id"]
    resident = await login("resident2")
    made = await client.post(
        "/mp/v1/complaints",
        json={"orderId": order_id, "text": "代办员电话一直打不通"},
        headers=resident,
    )
    assert made.status_code == 201, made.text
    complaint = made.json()
    assert complaint["dueAt"] == "2026-11-30T16:00:00Z"  # the end of Monday 30 Nov
    assert complaint["agentName"] == "吴秀芳"
    assert len(await messages(ctx, "dispatcher2a", "complaint")) == 1
    await tick(ctx, clock, at(2026, 11, 30, 9, 0))
    assert len(await messages(ctx, "dispatcher2b", "complaint_reminder")) == 1
    await tick(ctx, clock, at(2026, 12, 1, 9, 0))
    assert len(await messages(ctx, "admin", "complaint_overdue")) == 1
    dispatcher = await login("dispatcher2a")
    answered = await client.post(
        f"/mp/v1/dispatch/complaints/{complaint['id']}/answer",
        json={"answer": "已核实,代办员当日下乡,已调整值班电话"},
        headers=dispatcher,
    )
    assert answered.status_code == 200 and answered.json()["answeredOnTime"] is False
    resident = await login("resident2")
    mine = (await client.get(f"/mp/v1/complaints/{complaint['id']}", headers=resident)).json()
    assert mine["answer"].startswith("已核实") and mine["residentName"] is None
    closed = await client.post(
        f"/mp/v1/complaints/{complaint['id']}/feedback", json={"resolved": True}, headers=resident
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["resolved"] is True


@pytest.mark.parametrize("settings", ["working"], indirect=True)
async def test_next_working_day_a_complaint_before_national_day_is_due_after_the_holiday(
    client, demo, login, clock
):
    clock.current = at(2026, 9, 30, 16, 0)  # the last working day before 1–7 October
    dispatcher = await login("dispatcher2a")
    agents = (await client.get("/mp/v1/dispatch/agents", headers=dispatcher)).json()
    agent = next(a["id"] for a in agents if a["name"] == "吴秀芳")
    made = await client.post(
        "/mp/v1/complaints",
        json={"agentId": agent, "text": "服务态度生硬"},
        headers=await login("resident2"),
    )
    assert made.status_code == 201, made.text
    assert made.json()["dueAt"] == "2026-10-08T16:00:00Z"  # the end of Thursday 8 October
    far = next(
        a["id"]
        for a in (
            await client.get("/mp/v1/dispatch/agents", headers=await login("dispatcher1a"))
        ).json()
    )
    other_town = await client.post(
        "/mp/v1/complaints",
        json={"agentId": far, "text": "x"},
        headers=await login("resident2"),
    )
    assert other_town.status_code == 404


async def test_complaints_are_the_residents_own_and_the_towns(client, demo, login, ctx):
    order_id = await delivered(client, login)
    made = await client.post(
        "/mp/v1/complaints",
        json={"orderId": order_id, "text": "结果送错了"},
        headers=await login("resident2"),
    )
    complaint_id = made.json()["id"]
    assert (
        await client.get(f"/mp/v1/complaints/{complaint_id}", headers=await login("resident1"))
    ).status_code == 404
    assert (
        await client.get(
            f"/mp/v1/dispatch/complaints/{complaint_id}", headers=await login("dispatcher1a")
        )
    ).status_code == 404
    foreign = await client.post(
        "/mp/v1/complaints",
        json={"orderId": order_id, "text": "x"},
        headers=await login("resident1"),
    )
    assert foreign.status_code == 404
    stored = await ctx.db.run_read(lambda s: s.scalars(select(Complaint.order_id)).all())
    assert stored == [order_id]  # the refused one left nothing behind


async def test_a_comment_left_unchecked_is_checked_by_the_job_and_then_shown(
    client, demo, login, ctx
):
    order_id = await delivered(client, login)
    await _rate(client, login, order_id, 5, comment="态度很好")
    # As if WeChat had been unreachable.
    await ctx.db.run_write(lambda s: s.execute(update(Rating).values(comment_status="pending")))
    dispatcher = await login("dispatcher2a")
    [hidden] = (await client.get("/mp/v1/dispatch/ratings", headers=dispatcher)).json()
    assert hidden["comment"] is None
    assert await tasks.check_comments(ctx) == 1
    [shown] = (await client.get("/mp/v1/dispatch/ratings", headers=dispatcher)).json()
    assert shown["comment"] == "态度很好"
