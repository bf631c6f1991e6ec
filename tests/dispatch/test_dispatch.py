"""Dispatch: A post, then B post, then the town's pool; duty and leave; decline; hand-over;
the board; agent-entered orders and how they reach the resident's own WeChat account.

In the demo, 西集镇 dispatches by itself and 店子镇 by hand. resident2 lives in 西集村,
whose station has 吴秀芳 (agent4a, A post) and 郑海涛 (agent4b, B post).
"""

from __future__ import annotations

import uuid

from app.demo import demo_id_number
from tests.factories import agent_id, guide, submit, upload_photo

A_NAME, B_NAME = "吴秀芳", "郑海涛"


def _dispatch_event(order: dict) -> dict:
    return next(e for e in order["timeline"] if e["action"] in ("assign", "pool"))


async def _set_duty(client, headers, body, agent=None):
    path = f"/mp/v1/dispatch/agents/{agent}/duty" if agent else "/mp/v1/agent/duty"
    response = await client.patch(path, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_new_order_goes_to_the_on_duty_a_agent(client, demo, login):
    response = await submit(client, await login("resident2"))
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "assigned"
    assert order["agent"]["name"] == A_NAME and order["agent"]["workPhone"]
    event = _dispatch_event(order)
    assert event["actorRole"] == "system" and event["data"]["rule"] == "auto_a"
    assert "A岗" in event["note"]


async def test_b_agent_covers_while_a_is_on_leave_and_a_is_back_after_it(
    client, demo, login, clock
):
    # Monday 23 Nov: A on leave up to and including Wednesday 25 Nov.
    duty = await _set_duty(
        client, await login("agent4a"), {"status": "on_leave", "leaveUntil": "2026-11-25"}
    )
    assert duty["dutyStatus"] == "on_leave" and duty["dutyStatusName"] == "请假"
    order = (await submit(client, await login("resident2"))).json()
    assert order["agent"]["name"] == B_NAME
    assert _dispatch_event(order)["data"]["rule"] == "auto_b"
    cards = (await client.get(f"/mp/v1/villages/{await _village(client, '西集村')}/agents")).json()
    assert {c["name"]: c["dutyStatus"] for c in cards} == {A_NAME: "on_leave", B_NAME: "on_duty"}
    clock.advance(days=3)  # Thursday: the leave is over by itself
    order = (await submit(client, await login("resident2"))).json()
    assert order["agent"]["name"] == A_NAME


async def test_with_a_and_b_away_the_order_waits_in_the_pool(client, demo, login):
    dispatcher = await login("dispatcher2a")
    await _set_duty(
        client,
        dispatcher,
        {"status": "on_leave", "leaveUntil": "2026-11-30"},
        await agent_id(client, dispatcher, A_NAME),
    )
    await _set_duty(
        client, dispatcher, {"status": "off_duty"}, await agent_id(client, dispatcher, B_NAME)
    )
    order = (await submit(client, await login("resident2"))).json()
    assert order["status"] == "submitted" and order["agent"] is None
    event = _dispatch_event(order)
    assert event["action"] == "pool" and event["data"]["rule"] == "pool_away"
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    assert board["poolTotal"] == 1
    assert board["pool"][0]["id"] == order["id"] and "均不在岗" in board["pool"][0]["why"]
    assert {a["name"]: a["dutyStatus"] for a in board["agents"]}[B_NAME] == "off_duty"


async def test_a_town_set_to_manual_dispatch_sends_everything_to_the_pool(client, demo, login):
    dispatcher = await login("dispatcher2a")
    rule = await client.put(
        "/mp/v1/dispatch/settings", json={"autoDispatch": False}, headers=dispatcher
    )
    assert rule.status_code == 200 and rule.json()["townName"] == "西集镇"
    assert rule.json()["autoDispatch"] is False
    order = (await submit(client, await login("resident2"))).json()
    assert order["status"] == "submitted"
    assert _dispatch_event(order)["data"]["rule"] == "manual_town"
    # The other town's rule is untouched, and an agent cannot change any.
    other = await client.get("/mp/v1/dispatch/settings", headers=await login("dispatcher1a"))
    assert other.json()["autoDispatch"] is False and other.json()["townName"] == "店子镇"
    denied = await client.put(
        "/mp/v1/dispatch/settings", json={"autoDispatch": True}, headers=await login("agent4a")
    )
    assert denied.status_code == 403


async def test_a_decline_goes_back_to_the_pool_and_the_dispatcher_sees_why(client, demo, login):
    order_id = (await submit(client, await login("resident2"))).json()["id"]
    agent = await login("agent4a")
    declined = await client.post(
        f"/mp/v1/agent/orders/{order_id}/decline",
        json={"reason": "本人明日外出培训,请改派"},
        headers=agent,
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "submitted" and declined.json()["agent"] is None
    board = (await client.get("/mp/v1/dispatch/board", headers=await login("dispatcher2a"))).json()
    assert [(p["id"], p["why"]) for p in board["pool"]] == [(order_id, "本人明日外出培训,请改派")]


async def test_dispatchers_stay_inside_their_town(client, demo, login):
    order_id = (await submit(client, await login("resident2"))).json()["id"]
    mine, other = await login("dispatcher2a"), await login("dispatcher1a")
    other_board = (await client.get("/mp/v1/dispatch/board", headers=other)).json()
    assert other_board["poolTotal"] == 0 and other_board["counts"] == []
    assert {a["villageName"] for a in other_board["agents"]} == {"店子村", "东庄村", "岩马村"}
    foreign_agent = await agent_id(client, mine, A_NAME)
    duty = await client.patch(
        f"/mp/v1/dispatch/agents/{foreign_agent}/duty", json={"status": "off_duty"}, headers=other
    )
    assert duty.status_code == 404
    hand = await client.post(
        f"/mp/v1/dispatch/agents/{foreign_agent}/hand-over", json={}, headers=other
    )
    assert hand.status_code == 404
    # The order's own dispatcher can re-assign only within the town.
    far_agent = await agent_id(client, other, "刘桂兰")
    moved = await client.post(
        f"/mp/v1/dispatch/orders/{order_id}/reassign",
        json={"agentId": far_agent, "reason": "试试"},
        headers=mine,
    )
    assert moved.status_code == 404


async def test_an_a_agent_going_on_leave_hands_every_open_order_to_b(client, demo, login):
    resident = await login("resident2")
    first = (await submit(client, resident)).json()["id"]
    second = (await submit(client, resident)).json()["id"]
    agent = await login("agent4a")
    took = await client.post(f"/mp/v1/agent/orders/{first}/take", json={}, headers=agent)
    assert took.status_code == 200
    duty = await _set_duty(
        client, agent, {"status": "on_leave", "leaveUntil": "2026-11-27", "handOver": True}
    )
    assert duty["handedOver"] == 2
    b_agent = await login("agent4b")
    listed = (await client.get("/mp/v1/agent/orders", headers=b_agent)).json()["items"]
    assert {o["id"] for o in listed} == {first, second}
    detail = (await client.get(f"/mp/v1/agent/orders/{first}", headers=b_agent)).json()
    assert detail["agent"]["name"] == B_NAME
    assert detail["firstContact"]["name"] == A_NAME  # 首问负责: who first took it stays named
    handed = detail["timeline"][-1]
    assert handed["action"] == "reassign" and handed["data"]["handOver"] is True
    assert (await client.get("/mp/v1/agent/orders", headers=agent)).json()["items"] == []


async def test_a_dispatcher_hands_over_to_a_chosen_agent(client, demo, login):
    order_id = (await submit(client, await login("resident2"))).json()["id"]
    dispatcher = await login("dispatcher2a")
    a_id = await agent_id(client, dispatcher, A_NAME)
    target = await agent_id(client, dispatcher, "冯淑珍")  # 孟庄村, the same town
    handed = await client.post(
        f"/mp/v1/dispatch/agents/{a_id}/hand-over",
        json={"toAgentId": target, "reason": "住院"},
        headers=dispatcher,
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["handedOver"] == 1
    detail = (await client.get(f"/mp/v1/dispatch/orders/{order_id}", headers=dispatcher)).json()
    assert detail["agent"]["id"] == target and "住院" in detail["timeline"][-1]["note"]


async def test_hand_over_without_anyone_on_duty_is_refused_and_changes_nothing(client, demo, login):
    order_id = (await submit(client, await login("resident2"))).json()["id"]
    await _set_duty(client, await login("agent4b"), {"status": "off_duty"})
    agent = await login("agent4a")
    refused = await client.patch(
        "/mp/v1/agent/duty",
        json={"status": "on_leave", "leaveUntil": "2026-11-27", "handOver": True},
        headers=agent,
    )
    assert refused.status_code == 409, refused.text
    assert (await client.get("/mp/v1/agent/duty", headers=agent)).json()["dutyStatus"] == "on_duty"
    detail = (await client.get(f"/mp/v1/agent/orders/{order_id}", headers=agent)).json()
    assert detail["agent"]["name"] == A_NAME


async def test_leave_needs_a_last_day_within_a_year(client, demo, login):
    agent = await login("agent4a")
    for body in (
        {"status": "on_leave"},
        {"status": "on_leave", "leaveUntil": "2026-11-20"},
        {"status": "on_leave", "leaveUntil": "2028-01-01"},
        {"status": "off_duty", "leaveUntil": "2026-11-27"},
    ):
        response = await client.patch("/mp/v1/agent/duty", json=body, headers=agent)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == "leaveUntil"
    wrong = await client.patch("/mp/v1/agent/duty", json={"status": "away"}, headers=agent)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "status"


async def test_flagged_orders_sort_first_in_the_pool_and_in_the_agents_list(client, demo, login):
    dispatcher = await login("dispatcher2a")
    await client.put("/mp/v1/dispatch/settings", json={"autoDispatch": False}, headers=dispatcher)
    resident = await login("resident2")
    plain = (await submit(client, resident)).json()["id"]
    green = (await submit(client, resident, greenChannel=True)).json()["id"]
    visit = (await submit(client, resident, homeVisit=True)).json()["id"]
    later = (await submit(client, resident)).json()["id"]
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    assert [p["id"] for p in board["pool"]] == [green, visit, plain, later]
    a_id = await agent_id(client, dispatcher, A_NAME)
    for order_id in (plain, green, visit, later):
        assigned = await client.post(
            f"/mp/v1/dispatch/orders/{order_id}/assign", json={"agentId": a_id}, headers=dispatcher
        )
        assert assigned.status_code == 200
    agent = await login("agent4a")
    first_page = (await client.get("/mp/v1/agent/orders?limit=3", headers=agent)).json()
    assert [o["id"] for o in first_page["items"]] == [visit, green, later]
    rest = await client.get(
        f"/mp/v1/agent/orders?limit=3&cursor={first_page['nextCursor']}", headers=agent
    )
    assert [o["id"] for o in rest.json()["items"]] == [plain]
    town = (await client.get("/mp/v1/dispatch/orders", headers=dispatcher)).json()["items"]
    assert [o["id"] for o in town] == [visit, green, later, plain]


async def test_an_appointment_must_be_in_the_coming_90_days(client, demo, login):
    resident = await login("resident2")
    past = await submit(client, resident, appointmentAt="2026-11-20T09:00:00+08:00")
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "appointmentAt"
    naive = await submit(client, resident, appointmentAt="2026-11-25T09:00:00")
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "appointmentAt"
    ok = await submit(client, resident, appointmentAt="2026-11-25T09:30:00+08:00")
    assert ok.status_code == 201 and ok.json()["appointmentAt"] == "2026-11-25T01:30:00Z"


async def test_the_board_counts_overdue_and_soon_due_work_and_each_agents_load(
    client, demo, login, clock
):
    resident, agent = await login("resident2"), await login("agent4a")
    ids = [(await submit(client, resident)).json()["id"] for _ in range(3)]
    for order_id in ids[:2]:
        for action in ("take", "accept"):
            moved = await client.post(
                f"/mp/v1/agent/orders/{order_id}/{action}", json={}, headers=agent
            )
            assert moved.status_code == 200, moved.text
    # RS-0001 promises 5 working days: accepted Monday 23 Nov, due end of Monday 30 Nov.
    clock.advance(days=6)  # Sunday 29 Nov: due by the end of the next working day
    dispatcher = await login("dispatcher2a")
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    assert {c["status"]: c["count"] for c in board["counts"]} == {"assigned": 1, "accepted": 2}
    assert board["dueSoonTotal"] == 2 and board["overdueTotal"] == 0
    assert {a["name"]: a["openOrders"] for a in board["agents"]}[A_NAME] == 3
    clock.advance(days=2)  # Tuesday 1 Dec: both are overdue
    dispatcher = await login("dispatcher2a")
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    assert board["overdueTotal"] == 2 and board["dueSoonTotal"] == 0
    assert {o["id"] for o in board["overdue"]} == set(ids[:2])
    assert all(o["agentName"] == A_NAME for o in board["overdue"])


# --- orders an agent enters for a resident (代为委托) -----------------------------------

PERSON = {
    "name": "王秀兰",
    "idNumber": demo_id_number("370406", "19420305", "046"),
    "phone": "13906329988",
}


async def _entry(client, agent, person=PERSON, **extra) -> dict:
    """A desk entry's body, with every required material and the entrustment photographed."""
    materials = {}
    for m in (await guide(client, "RS-0001"))["materials"]:
        if m["required"]:
            materials[m["code"]] = [await upload_photo(client, agent)]
    return {
        "itemCode": "RS-0001",
        "resident": person,
        "materials": materials,
        "entrustmentUploadIds": [await upload_photo(client, agent)],
        **extra,
    }


async def _enter(client, agent, body=None, key=None):
    body = body or await _entry(client, agent)
    headers = {**agent, "Idempotency-Key": key or f"desk-{uuid.uuid4().hex}"}
    return await client.post("/mp/v1/agent/orders", json=body, headers=headers)


async def _village(client, name: str) -> int:
    tree = (await client.get("/mp/v1/regions")).json()
    stack = list(tree)
    while stack:
        node = stack.pop()
        if node["name"] == name:
            return int(node["id"])
        stack += node.get("children", [])
    raise AssertionError(name)


async def _newcomer(client, login, handle, *, id_number, phone, phone_from_wechat=True):
    headers = await login(handle)
    profile = {
        "name": "王秀兰",
        "villageId": await _village(client, "西集村"),
        "idNumber": id_number,
    }
    if not phone_from_wechat:
        profile["phone"] = phone
    assert (await client.patch("/mp/v1/me", json=profile, headers=headers)).status_code == 200
    if phone_from_wechat:
        confirmed = await client.post(
            "/mp/v1/me/phone", json={"code": f"dev:{phone}"}, headers=headers
        )
        assert confirmed.status_code == 200, confirmed.text
    return headers


async def test_an_agent_enters_an_order_for_a_resident_who_phoned(client, demo, login):
    agent = await login("agent4b")  # the B agent at the desk takes the call
    response = await _enter(client, agent, await _entry(client, agent, greenChannel=True))
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["channel"] == "agent" and order["status"] == "assigned"
    assert order["agent"]["name"] == B_NAME and order["firstContact"]["name"] == B_NAME
    assert _dispatch_event(order)["data"]["rule"] == "entered_by_agent"
    assert order["timeline"][0]["actorName"] == B_NAME
    assert "take" in order["nextActions"]
    # A retry on a weak signal is the same order, for the same placeholder resident.
    body = await _entry(client, agent)
    again = await _enter(client, agent, body, key="desk-retry-1")
    retried = await _enter(client, agent, body, key="desk-retry-1")
    assert again.status_code == 201 and retried.status_code == 201
    assert retried.json()["id"] == again.json()["id"]
    assert retried.json()["timeline"] == again.json()["timeline"]


async def test_an_entered_order_needs_the_signed_entrustment_and_a_valid_person(
    client, demo, login
):
    agent = await login("agent4a")
    bad = {"name": "王", "idNumber": PERSON["idNumber"][:-1] + "0", "phone": "12345"}
    response = await _enter(
        client, agent, await _entry(client, agent, person=bad, entrustmentUploadIds=[])
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {
        "resident.name",
        "resident.idNumber",
        "resident.phone",
        "entrustmentUploadIds",
    }
    orders = (await client.get("/mp/v1/agent/orders", headers=agent)).json()["items"]
    assert orders == []
    resident = await client.post(
        "/mp/v1/agent/orders",
        json={},
        headers={**await login("resident2"), "Idempotency-Key": "x" * 8},
    )
    assert resident.status_code == 403


async def test_the_resident_finds_entered_orders_after_confirming_id_and_wechat_phone(
    client, demo, login
):
    agent = await login("agent4a")
    order_id = (await _enter(client, agent)).json()["id"]
    for action in ("take", "accept"):
        moved = await client.post(
            f"/mp/v1/agent/orders/{order_id}/{action}", json={}, headers=agent
        )
        assert moved.status_code == 200, moved.text
    headers = await _newcomer(
        client, login, "wang", id_number=PERSON["idNumber"], phone=PERSON["phone"]
    )
    mine = (await client.get("/mp/v1/orders", headers=headers)).json()["items"]
    assert [o["id"] for o in mine] == [order_id]
    detail = (await client.get(f"/mp/v1/orders/{order_id}", headers=headers)).json()
    assert detail["timeline"][-1]["action"] == "claim"
    # What the order's placeholder resident was told before the claim is theirs now.
    inbox = (await client.get("/mp/v1/me/messages", headers=headers)).json()
    assert [m["kind"] for m in inbox["items"]] == ["accepted"]
    # Orders entered later for the same person go straight to the account.
    later = (await _enter(client, await login("agent4a"))).json()["id"]
    mine = (await client.get("/mp/v1/orders", headers=headers)).json()["items"]
    assert [o["id"] for o in mine] == [later, order_id]


async def test_entered_orders_are_not_claimable_with_a_wrong_id_or_phone(client, demo, login):
    order_id = (await _enter(client, await login("agent4a"))).json()["id"]
    other_id = demo_id_number("370406", "19420305", "054")
    wrong_id = await _newcomer(client, login, "w1", id_number=other_id, phone=PERSON["phone"])
    wrong_phone = await _newcomer(
        client, login, "w2", id_number=PERSON["idNumber"], phone="13906320000"
    )
    typed_phone = await _newcomer(
        client,
        login,
        "w3",
        id_number=PERSON["idNumber"],
        phone=PERSON["phone"],
        phone_from_wechat=False,
    )
    for headers in (wrong_id, wrong_phone, typed_phone):
        assert (await client.get("/mp/v1/orders", headers=headers)).json()["items"] == []
        stranger = await client.get(f"/mp/v1/orders/{order_id}", headers=headers)
        assert stranger.status_code == 404
