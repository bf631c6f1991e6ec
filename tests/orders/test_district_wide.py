"""全区通办: a resident chooses another village station of their district to serve them; the
order is that station's, dispatched by its town's rule. An item that must be handled where
the resident is registered cannot be accepted there: the agent who received it first hands
it over (转户籍地办理) before 受理, the home station dispatches it, the resident sees it on the
timeline and is told, and the first contact stays named.

resident2 李建国 lives in 西集村 (西集镇, which dispatches by itself: agent4a 吴秀芳 is its A
post). agent5a serves the next village of 西集镇; agent1a 刘桂兰 serves a village of 店子镇,
which dispatches by hand (dispatcher1a). RS-0001 is a town-level item; RS-0003 a district one."""

from __future__ import annotations

from sqlalchemy import select

from app.models import Account, Order, Region
from tests.factories import agent_id, submit
from tests.notifications.test_reminders import messages
from tests.orders.test_progress_page import page_path


async def _village_of(ctx, handle: str) -> int:
    return await ctx.db.run_read(
        lambda s: s.scalar(select(Account.region_id).where(Account.openid == f"dev_{handle}"))
    )


async def _order(ctx, order_id: int) -> Order:
    return await ctx.db.run_read(lambda s: s.get(Order, order_id))


async def _move(client, headers, order_id: int, action: str, body: dict | None = None):
    return await client.post(
        f"/mp/v1/agent/orders/{order_id}/{action}", json=body or {}, headers=headers
    )


async def test_a_station_of_the_same_town_serves_the_resident_and_accepts(client, demo, login, ctx):
    home = await _village_of(ctx, "resident2")
    station = await _village_of(ctx, "agent5a")
    made = await submit(client, await login("resident2"), stationId=station)
    assert made.status_code == 201, made.text
    order = made.json()
    assert order["homeVillageId"] == home
    row = await _order(ctx, order["id"])
    assert row.village_id == station and row.status == "assigned"
    agent5 = await login("agent5a")
    assert row.agent_id == await ctx.db.run_read(
        lambda s: s.scalar(select(Account.id).where(Account.openid == "dev_agent5a"))
    )
    taken = await _move(client, agent5, order["id"], "take")
    assert taken.status_code == 200, taken.text
    assert "transfer" in taken.json()["nextActions"]  # the agent may still hand it home
    # A town-level item in the resident's own town: handled here, no hand-over needed.
    accepted = await _move(client, agent5, order["id"], "accept")
    assert accepted.status_code == 200, accepted.text


async def test_a_station_of_another_town_hands_a_town_item_over_home(client, demo, login, ctx):
    station = await _village_of(ctx, "agent1a")
    home = await _village_of(ctx, "resident2")
    resident = await login("resident2")
    order = (await submit(client, resident, stationId=station)).json()
    row = await _order(ctx, order["id"])
    assert row.status == "submitted"  # 店子镇 dispatches by hand: into its pool
    dispatcher = await login("dispatcher1a")
    assigned = await client.post(
        f"/mp/v1/dispatch/orders/{order['id']}/assign",
        json={"agentId": await agent_id(client, dispatcher, "刘桂兰")},
        headers=dispatcher,
    )
    assert assigned.status_code == 200, assigned.text
    agent1 = await login("agent1a")
    assert (await _move(client, agent1, order["id"], "take")).status_code == 200
    # Not to be accepted here: RS-0001 is for the resident's own town.
    refused = await _move(client, agent1, order["id"], "accept")
    assert refused.status_code == 409 and refused.json()["code"] == "handle_at_home"
    moved = await _move(client, agent1, order["id"], "transfer", {"reason": "户籍地办理"})
    assert moved.status_code == 200, moved.text
    row = await _order(ctx, order["id"])
    home_town = await ctx.db.run_read(lambda s: s.get(Region, home).town_id)
    assert (row.village_id, row.town_id, row.home_village_id) == (home, home_town, None)
    # 西集镇 dispatches by itself: its A post has it now; the first contact stays 刘桂兰.
    assert row.status == "assigned"
    assert row.agent_id == await ctx.db.run_read(
        lambda s: s.scalar(select(Account.id).where(Account.openid == "dev_agent4a"))
    )
    assert row.first_contact_id == await ctx.db.run_read(
        lambda s: s.scalar(select(Account.id).where(Account.openid == "dev_agent1a"))
    )
    # The resident sees the hand-over, and is told.
    detail = (await client.get(f"/mp/v1/orders/{order['id']}", headers=resident)).json()
    steps = [(e["action"], e["note"]) for e in detail["timeline"]]
    assert (
        "transfer",
        "转至户籍地" + (await _name(ctx, home)) + "便民服务站办理(户籍地办理)",
    ) in steps
    assert detail["homeVillageId"] is None and detail["firstContact"]["name"] == "刘桂兰"
    told = await messages(ctx, "resident2", "transferred")
    assert len(told) == 1 and "首问代办员刘桂兰" in told[0].body
    # The first station no longer has it; the home station takes it and accepts.
    gone = await client.get(f"/mp/v1/agent/orders/{order['id']}", headers=agent1)
    assert gone.status_code == 404
    agent4 = await login("agent4a")
    for action in ("take", "accept"):
        done = await _move(client, agent4, order["id"], action)
        assert done.status_code == 200, (action, done.text)
    # The progress page behind the slip's QR code shows the hand-over, not the reason.
    path = await page_path(client, {**order, "agent": agent4})
    page = (await client.post(path, data={"digits": "5678"})).text  # resident2's phone
    assert "转户籍地办理" in page and (await _name(ctx, home)) + "便民服务站" in page
    assert "户籍地办理)" not in page


async def _name(ctx, region_id: int) -> str:
    return await ctx.db.run_read(lambda s: s.get(Region, region_id).name)


async def test_a_district_item_is_handled_wherever_the_resident_chose(client, demo, login, ctx):
    station = await _village_of(ctx, "agent1a")
    order = (await submit(client, await login("resident2"), "RS-0003", stationId=station)).json()
    dispatcher = await login("dispatcher1a")
    await client.post(
        f"/mp/v1/dispatch/orders/{order['id']}/assign",
        json={"agentId": await agent_id(client, dispatcher, "刘桂兰")},
        headers=dispatcher,
    )
    agent1 = await login("agent1a")
    assert (await _move(client, agent1, order["id"], "take")).status_code == 200
    accepted = await _move(client, agent1, order["id"], "accept")
    assert accepted.status_code == 200, accepted.text


async def test_the_station_must_be_a_village_of_the_resident_s_district(client, demo, login, ctx):
    resident = await login("resident2")
    home = await _village_of(ctx, "resident2")
    town = await ctx.db.run_read(lambda s: s.get(Region, home).town_id)
    for wrong in (town, 99_999_999):
        refused = await submit(client, resident, stationId=wrong)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "stationId"
    for bad in (0, -1, 2**63, "1", None):
        answer = await submit(client, resident, stationId=bad)
        assert answer.status_code == (201 if bad is None else 422), (bad, answer.text)
    count = await ctx.db.run_read(lambda s: len(s.scalars(select(Order.id)).all()))
    assert count == 1  # only the one without a station
    # Choosing one's own village is being served at home.
    own = (await submit(client, resident, stationId=home)).json()
    assert own["homeVillageId"] is None


async def test_an_order_served_at_home_is_not_transferred(client, demo, login, ctx):
    order = (await submit(client, await login("resident2"))).json()
    agent4 = await login("agent4a")
    taken = await _move(client, agent4, order["id"], "take")
    assert "transfer" not in taken.json()["nextActions"]
    refused = await _move(client, agent4, order["id"], "transfer")
    assert refused.status_code == 409
    assert (await _order(ctx, order["id"])).status == "reviewing"
