"""Order lists: the resident's (newest first, keyset pages, status), the dispatcher's filters,
and the agent's due list (running work soonest due first, then work on hold)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.demo import demo_id_number
from app.settings import Settings
from tests.conftest import Clock, make_settings
from tests.factories import agent_id, submit, upload_photo


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # The lists order flagged orders first: here only the flags a test declares, without the
    # automatic green channel by age (resident1 is 78; tests/orders/test_front_desk.py).
    return make_settings(tmp_path / "var", database_url, DAIBAN_ORDERS_GREEN_CHANNEL_AGE="0")


async def _new(client, headers, **extra) -> int:
    response = await submit(client, headers, "RS-0009", **extra)  # the ID card alone
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _ids(client, path, headers, **params) -> tuple[list[int], int | None]:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    page = response.json()
    return [o["id"] for o in page["items"]], page["nextCursor"]


async def _village(client, name: str) -> int:
    stack = list((await client.get("/mp/v1/regions")).json())
    while stack:
        node = stack.pop()
        if node["name"] == name:
            return int(node["id"])
        stack += node.get("children", [])
    raise AssertionError(name)


async def test_my_orders_come_newest_first_in_keyset_pages_with_a_status_filter(
    client, demo, login
):
    resident = await login("resident1")
    a, b, c, d, e = [await _new(client, resident) for _ in range(5)]
    await _new(client, await login("resident2"))  # someone else's: never in my list
    cancelled = await client.post(f"/mp/v1/orders/{c}/cancel", json={}, headers=resident)
    assert cancelled.status_code == 200, cancelled.text
    mine = "/mp/v1/orders"
    first, cursor = await _ids(client, mine, resident, limit=2)
    assert (first, cursor) == ([e, d], d)
    later = await _new(client, resident)  # a new order does not shift the pages already begun
    assert await _ids(client, mine, resident, limit=2, cursor=cursor) == ([c, b], b)
    assert await _ids(client, mine, resident, limit=2, cursor=b) == ([a], None)
    assert await _ids(client, mine, resident) == ([later, e, d, c, b, a], None)
    assert await _ids(client, mine, resident, status="cancelled") == ([c], None)
    waiting, cursor = await _ids(client, mine, resident, status="submitted", limit=3)
    assert (waiting, cursor) == ([later, e, d], d)
    assert await _ids(client, mine, resident, status="submitted", limit=3, cursor=d) == (
        [b, a],
        None,
    )
    assert await _ids(client, mine, resident, status="accepted") == ([], None)
    bad = await client.get(mine, params={"status": "lost"}, headers=resident)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status", bad.text


async def test_a_dispatcher_filters_the_town_by_village_agent_and_status(client, demo, login):
    resident = await login("resident1")  # 店子村, 店子镇 (dispatch by hand: the pool)
    p1, p2 = await _new(client, resident), await _new(client, resident)
    p3 = await _new(client, resident, greenChannel=True)  # flagged: first in staff lists
    dispatcher = await login("dispatcher1a")
    liu = await agent_id(client, dispatcher, "刘桂兰")  # agent1a, 店子村
    sun = await agent_id(client, dispatcher, "孙丽娟")  # agent2a, 东庄村, the same town
    for order_id, agent in ((p1, liu), (p2, sun)):
        assigned = await client.post(
            f"/mp/v1/dispatch/orders/{order_id}/assign", json={"agentId": agent}, headers=dispatcher
        )
        assert assigned.status_code == 200, assigned.text
    desk = await login("agent2a")  # enters an order at 东庄村's desk: hers, in her village
    entry = {
        "itemCode": "RS-0009",
        "resident": {
            "name": "王秀兰",
            "idNumber": demo_id_number("370406", "19420305", "046"),
            "phone": "13906329988",
        },
        "materials": {"id_card": [await upload_photo(client, desk)]},
        "entrustmentUploadIds": [await upload_photo(client, desk)],
    }
    entered = await client.post(
        "/mp/v1/agent/orders",
        json=entry,
        headers={**desk, "Idempotency-Key": f"desk-{uuid.uuid4().hex}"},
    )
    assert entered.status_code == 201, entered.text
    e1 = entered.json()["id"]
    await _new(client, await login("resident2"))  # 西集镇: another town, never listed here

    town = "/mp/v1/dispatch/orders"
    dongzhuang, dianzi = await _village(client, "东庄村"), await _village(client, "店子村")
    assert await _ids(client, town, dispatcher) == ([p3, e1, p2, p1], None)
    assert await _ids(client, town, dispatcher, villageId=dongzhuang) == ([e1], None)
    assert await _ids(client, town, dispatcher, villageId=dianzi) == ([p3, p2, p1], None)
    xiji = await _village(client, "西集村")
    assert await _ids(client, town, dispatcher, villageId=xiji) == ([], None)
    assert await _ids(client, town, dispatcher, agentId=sun) == ([e1, p2], None)
    assert await _ids(client, town, dispatcher, agentId=liu) == ([p1], None)
    assert await _ids(client, town, dispatcher, status="assigned") == ([e1, p2, p1], None)
    assert await _ids(client, town, dispatcher, status="submitted") == ([p3], None)
    both = {"villageId": dianzi, "status": "assigned"}
    assert await _ids(client, town, dispatcher, **both) == ([p2, p1], None)
    assert await _ids(client, town, dispatcher, villageId=dianzi, agentId=sun) == ([p2], None)
    # Keyset pages through the flagged order, then the rest newest first.
    seen, cursor = await _ids(client, town, dispatcher, limit=1)
    while cursor is not None:
        page, cursor = await _ids(client, town, dispatcher, limit=1, cursor=cursor)
        seen += page
    assert seen == [p3, e1, p2, p1]
    page, cursor = await _ids(client, town, dispatcher, agentId=sun, limit=1)
    assert (page, cursor) == ([e1], e1)
    assert await _ids(client, town, dispatcher, agentId=sun, limit=1, cursor=e1) == ([p2], None)
    other_town = await login("dispatcher2a")
    assert p1 not in (await _ids(client, town, other_town))[0]


async def _running(client, login) -> int:
    """An order of resident1 accepted by agent1a now (5 working days, RS-0001)."""
    response = await submit(client, await login("resident1"))
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    dispatcher, agent = await login("dispatcher1a"), await login("agent1a")
    liu = await agent_id(client, dispatcher, "刘桂兰")
    for path, body, headers in (
        (f"/mp/v1/dispatch/orders/{order_id}/assign", {"agentId": liu}, dispatcher),
        (f"/mp/v1/agent/orders/{order_id}/take", {}, agent),
        (f"/mp/v1/agent/orders/{order_id}/accept", {}, agent),
    ):
        moved = await client.post(path, json=body, headers=headers)
        assert moved.status_code == 200, moved.text
    return int(order_id)


async def test_the_due_list_puts_work_on_hold_after_running_work(client, demo, login, clock):
    a = await _running(client, login)  # accepted Monday 23 Nov: due Monday 30 Nov
    clock.advance(days=1)
    b = await _running(client, login)  # Tuesday: due Tuesday 1 Dec
    clock.advance(days=1)
    c = await _running(client, login)  # Wednesday: due Wednesday 2 Dec
    clock.advance(days=1)
    d = await _running(client, login)  # Thursday: due Thursday 3 Dec
    agent = await login("agent1a")
    for order_id, left in ((c, 4), (a, 2)):  # held Thursday: Fri 27 Nov on is what is left
        held = await client.post(
            f"/mp/v1/agent/orders/{order_id}/hold", json={"reason": "等待申请人补签"}, headers=agent
        )
        assert held.status_code == 200 and held.json()["remainingWorkingDays"] == left
    mine = "/mp/v1/agent/orders"
    # Running soonest due first; then on hold, fewest days left first, whatever their old
    # due time (a's was the soonest of all, but its clock is stopped).
    assert await _ids(client, mine, agent, sort="due") == ([b, d, a, c], None)
    seen, cursor = await _ids(client, mine, agent, sort="due", limit=1)
    while cursor is not None:
        page, cursor = await _ids(client, mine, agent, sort="due", limit=1, cursor=cursor)
        seen += page
    assert seen == [b, d, a, c]
    assert await _ids(client, mine, agent, sort="due", status="on_hold") == ([a, c], None)
    resumed = await client.post(f"/mp/v1/agent/orders/{c}/resume", json={}, headers=agent)
    assert resumed.status_code == 200  # running again: due 4 working days on, Wed 2 Dec
    assert await _ids(client, mine, agent, sort="due") == ([b, c, d, a], None)


async def test_a_cursor_at_no_order_is_refused_not_restarted(client, demo, login):
    await _running(client, login)
    agent, dispatcher = await login("agent1a"), await login("dispatcher1a")
    for path, headers, params in (
        ("/mp/v1/agent/orders", agent, {"sort": "due"}),
        ("/mp/v1/agent/orders", agent, {}),
        ("/mp/v1/dispatch/orders", dispatcher, {}),
    ):
        response = await client.get(path, params={**params, "cursor": 999_999}, headers=headers)
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["code"] == "cursor_invalid"
        assert response.json()["errors"][0]["field"] == "cursor"
