"""The front desk's rules beyond the four steps: the green channel from age and the agent's
decision on it, supplement rounds counted and shown in the figures, escalated and joint
orders on the dispatcher's board and in the figures by kind."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import demo_service, make_settings
from tests.factories import submit, taken_by_agent1a, upload_photo

TODAY = "from=2026-11-23&to=2026-11-23"


async def test_a_resident_aged_70_or_more_gets_the_green_channel_without_declaring_it(
    client, demo, login
):
    # resident1 (张秀英) was born in 1948, resident2 (李建国) in 1965.
    old = (await submit(client, await login("resident1"))).json()
    assert old["greenChannel"] is True and old["greenChannelSource"] == "age"
    young = (await submit(client, await login("resident2"))).json()
    assert young["greenChannel"] is False and young["greenChannelSource"] is None
    declared = (await submit(client, await login("resident2"), greenChannel=True)).json()
    assert declared["greenChannel"] is True and declared["greenChannelSource"] == "declared"
    # Flagged orders come first in the dispatcher's pool.
    board = (await client.get("/mp/v1/dispatch/board", headers=await login("dispatcher1a"))).json()
    assert board["pool"][0]["id"] == old["id"] and board["pool"][0]["greenChannel"] is True


async def test_the_age_for_the_automatic_green_channel_is_a_setting(
    database_url: str, tmp_path: Path, clock
):
    settings = make_settings(tmp_path / "var", database_url, DAIBAN_ORDERS_GREEN_CHANNEL_AGE="0")
    async with demo_service(settings, clock) as (_, client, _outside):
        token = (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})).json()
        resident = {"Authorization": f"Bearer {token['accessToken']}"}
        order = (await submit(client, resident)).json()
        assert order["greenChannel"] is False and order["greenChannelSource"] is None


async def test_an_agent_confirms_or_withdraws_the_green_channel_with_a_reason(client, demo, login):
    order = (await submit(client, await login("resident1"))).json()
    agent = await taken_by_agent1a(client, login, order["id"])
    url = f"/mp/v1/agent/orders/{order['id']}/green-channel"
    unexplained = await client.post(url, json={"grant": False, "reason": " "}, headers=agent)
    assert unexplained.status_code == 422
    withdrawn = await client.post(
        url, json={"grant": False, "reason": "本人身体健康,自行前来办理"}, headers=agent
    )
    assert withdrawn.status_code == 200, withdrawn.text
    detail = withdrawn.json()
    assert detail["greenChannel"] is False and detail["greenChannelSource"] == "agent"
    event = [e for e in detail["timeline"] if e["action"] == "green_channel"][-1]
    assert event["note"] == "取消绿色通道:本人身体健康,自行前来办理"
    assert event["data"] == {"grant": False, "was": True, "wasSource": "age"}
    granted = await client.post(url, json={"grant": True, "reason": "行动不便"}, headers=agent)
    assert granted.json()["greenChannel"] is True
    # Only the order's own agent decides: not another agent, not the resident.
    other = await client.post(
        url, json={"grant": False, "reason": "试试"}, headers=await login("agent1b")
    )
    assert other.status_code in (403, 404)
    resident = await client.post(
        url, json={"grant": False, "reason": "试试"}, headers=await login("resident1")
    )
    assert resident.status_code == 403
    final = (await client.get(f"/mp/v1/agent/orders/{order['id']}", headers=agent)).json()
    assert final["greenChannel"] is True
    assert [e["action"] for e in final["timeline"]].count("green_channel") == 2


async def test_supplement_rounds_are_counted_and_second_rounds_show_in_the_figures(
    client, demo, login
):
    resident = await login("resident2")
    order = (await submit(client, resident)).json()
    agent = await login("agent4a")  # 西集村's automatic dispatch gave it to 吴秀芳
    await client.post(f"/mp/v1/agent/orders/{order['id']}/take", json={}, headers=agent)
    notice = {"missing": [{"code": "id_card", "reason": "照片模糊"}]}
    url = f"/mp/v1/agent/orders/{order['id']}"
    first = await client.post(f"{url}/request-supplement", json=notice, headers=agent)
    assert first.status_code == 200 and first.json()["supplementRounds"] == 1
    supplied = await client.post(
        f"/mp/v1/orders/{order['id']}/supplement",
        json={"materials": {"id_card": [await upload_photo(client, resident)]}},
        headers=resident,
    )
    assert supplied.status_code == 200, supplied.text
    second = await client.post(f"{url}/request-supplement", json=notice, headers=agent)
    assert second.status_code == 200 and second.json()["supplementRounds"] == 2
    once = (await submit(client, resident)).json()  # another order, one round only
    await client.post(f"/mp/v1/agent/orders/{once['id']}/take", json={}, headers=agent)
    await client.post(
        f"/mp/v1/agent/orders/{once['id']}/request-supplement", json=notice, headers=agent
    )

    stats = (
        await client.get(f"/mp/v1/dispatch/stats?{TODAY}", headers=await login("dispatcher2a"))
    ).json()
    assert stats["secondRounds"] == 1
    assert [(a["name"], a["count"]) for a in stats["secondRoundsByAgent"]] == [("吴秀芳", 1)]
    assert [(i["code"], i["count"]) for i in stats["secondRoundsByItem"]] == [("RS-0001", 1)]


async def test_the_board_and_the_figures_show_escalated_orders_under_way(client, demo, login):
    resident = await login("resident1")
    promised = (await submit(client, resident)).json()  # RS-0001: no steps, not listed
    agent = await taken_by_agent1a(client, login, promised["id"])
    await client.post(f"/mp/v1/agent/orders/{promised['id']}/accept", json={}, headers=agent)
    order = (await submit(client, resident, "RS-0003")).json()
    agent = await taken_by_agent1a(client, login, order["id"])
    await client.post(f"/mp/v1/agent/orders/{order['id']}/accept", json={}, headers=agent)
    dispatcher = await login("dispatcher1a")
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    assert board["atDepartmentsTotal"] == 1
    assert board["atDepartments"][0]["latest"] is None  # not yet sent up
    sent = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/progress",
        json={
            "step": "sent",
            "on": "2026-11-23",
            "department": "hrss",
            "receiptUploadIds": [await upload_photo(client, agent)],
        },
        headers=agent,
    )
    assert sent.status_code == 200, sent.text
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    row = board["atDepartments"][0]
    assert row["id"] == order["id"] and row["kindName"] == "上报件"
    assert row["latest"] == "区人力资源和社会保障局 · 报送 11月23日"
    stats = (await client.get(f"/mp/v1/dispatch/stats?{TODAY}", headers=dispatcher)).json()
    assert stats["byKind"] == {"promised": 1, "escalated": 1} and stats["progressSteps"] == 1
    # Another town's board does not show it.
    other = (await client.get("/mp/v1/dispatch/board", headers=await login("dispatcher2a"))).json()
    assert other["atDepartmentsTotal"] == 0
