"""Agents of a town centre (便民服务中心, at least two there): posted at the town,
listed with the town's agents and on the board, dispatched to by the town's dispatcher,
entering walk-ins for residents of any village of the town, covering for each other (AB).

In the demo, 店子镇 dispatches by hand: resident1 (店子村) submits into its pool."""

from __future__ import annotations

import uuid

from app.demo import demo_id_number
from tests.factories import centre_agent, guide, region_ids, submit, upload_photo


async def test_a_town_centre_has_its_own_agents_seen_by_the_town_and_dispatched_to(
    client, demo, login
):
    admin = await login("admin")
    a = await centre_agent(client, login, admin, "中心甲", "A", "centre-a")
    b = await centre_agent(client, login, admin, "中心乙", "B", "centre-b")
    # A dispatcher is posted at a town, never at a village.
    village = (await region_ids(client))["店子村"]
    wrong = await client.post(
        "/mp/v1/admin/staff",
        json={"role": "dispatcher", "name": "错位", "regionId": village},
        headers=admin,
    )
    assert wrong.status_code == 422

    dispatcher = await login("dispatcher1a")
    agents = (await client.get("/mp/v1/dispatch/agents", headers=dispatcher)).json()
    assert [x["name"] for x in agents[:2]] == ["中心甲", "中心乙"]  # the centre first
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    assert {"中心甲", "中心乙"} <= {x["name"] for x in board["agents"]}
    # 西集镇's dispatcher does not see them, nor assign to them.
    other = await login("dispatcher2a")
    assert "中心甲" not in {
        x["name"] for x in (await client.get("/mp/v1/dispatch/agents", headers=other)).json()
    }

    order_id = (await submit(client, await login("resident1"))).json()["id"]
    assigned = await client.post(
        f"/mp/v1/dispatch/orders/{order_id}/assign",
        json={"agentId": a["id"]},
        headers=dispatcher,
    )
    assert assigned.status_code == 200, assigned.text
    took = await client.post(f"/mp/v1/agent/orders/{order_id}/take", json={}, headers=a["headers"])
    assert took.status_code == 200, took.text
    mine = (await client.get("/mp/v1/agent/orders", headers=a["headers"])).json()["items"]
    assert [o["id"] for o in mine] == [order_id]
    assert (await client.get("/mp/v1/agent/orders", headers=b["headers"])).json()["items"] == []
    hidden = await client.get(f"/mp/v1/agent/orders/{order_id}", headers=b["headers"])
    assert hidden.status_code == 404
    station = (await client.get("/mp/v1/agent/station", headers=a["headers"])).json()
    assert {card["name"] for card in station} == {"中心甲", "中心乙"}

    # On leave, A hands the open order to the centre's B (AB岗).
    leave = await client.patch(
        "/mp/v1/agent/duty",
        json={"status": "on_leave", "leaveUntil": "2026-11-27", "handOver": True},
        headers=a["headers"],
    )
    assert leave.status_code == 200 and leave.json()["handedOver"] == 1, leave.text
    mine = (await client.get("/mp/v1/agent/orders", headers=b["headers"])).json()["items"]
    assert [o["id"] for o in mine] == [order_id]


async def test_a_centre_agent_enters_a_walk_in_for_a_resident_of_any_village_of_the_town(
    client, demo, login
):
    admin = await login("admin")
    a = await centre_agent(client, login, admin, "中心甲", "A", "centre-a")
    regions = await region_ids(client)

    async def enter(village: int | None):
        materials = {}
        for m in (await guide(client, "RS-0001"))["materials"]:
            if m["required"]:
                materials[m["code"]] = [await upload_photo(client, a["headers"])]
        person = {
            "name": "陈德福",
            "idNumber": demo_id_number("370406", "19400612", "013"),
            "phone": "13806329876",
        }
        body = {
            "itemCode": "RS-0001",
            "resident": {**person, **({"villageId": village} if village else {})},
            "materials": materials,
            "entrustmentUploadIds": [await upload_photo(client, a["headers"])],
        }
        headers = {**a["headers"], "Idempotency-Key": f"desk-{uuid.uuid4().hex}"}
        return await client.post("/mp/v1/agent/orders", json=body, headers=headers)

    for village in (None, regions["西集村"]):  # none given; a village of another town
        refused = await enter(village)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "resident.villageId"
    entered = await enter(regions["东庄村"])
    assert entered.status_code == 201, entered.text
    order = entered.json()
    assert order["agent"]["name"] == "中心甲" and order["channel"] == "agent"
    dispatcher = await login("dispatcher1a")
    seen = await client.get(f"/mp/v1/dispatch/orders/{order['id']}", headers=dispatcher)
    assert seen.status_code == 200
    # The order is of 东庄村: in the village's lists and ledger, handled by the centre.
    listed = await client.get(
        "/mp/v1/dispatch/orders", params={"villageId": regions["东庄村"]}, headers=dispatcher
    )
    assert order["id"] in {o["id"] for o in listed.json()["items"]}
