"""A station never silently loses its last agent: disabling an agent hands their open orders
to their partner on duty (AB岗) or to an agent the admin names; the last agent on duty of a
station goes only when the admin names who takes over or confirms the station is closing,
and the town's dispatchers are told. An import does not move that agent either.

西集村 (西集镇) has 吴秀芳 (agent4a, A) and 郑海涛 (agent4b, B); 孟庄村 has 冯淑珍."""

from __future__ import annotations

from sqlalchemy import select

from app.models import Account
from tests.accounts.test_staff_import import sheet
from tests.factories import submit


async def _ids(ctx) -> dict[str, int]:
    rows = await ctx.db.run_read(
        lambda s: s.execute(select(Account.name, Account.id).where(Account.role == "agent")).all()
    )
    return dict(rows)


async def _disable(client, admin, agent_id: int, **extra):
    return await client.patch(
        f"/mp/v1/admin/staff/{agent_id}", json={"disabled": True, **extra}, headers=admin
    )


async def test_the_last_agent_on_duty_goes_only_with_someone_named_to_take_over(
    ctx, demo, client, login
):
    order_id = (await submit(client, await login("resident2"))).json()["id"]
    admin, ids = await login("admin"), await _ids(ctx)

    # 吴秀芳 (A) is disabled: her order goes to her partner 郑海涛 (B) by itself.
    first = await _disable(client, admin, ids["吴秀芳"])
    assert first.status_code == 200, first.text
    b_agent = await login("agent4b")
    mine = (await client.get("/mp/v1/agent/orders", headers=b_agent)).json()["items"]
    assert [o["id"] for o in mine] == [order_id]

    # 郑海涛 is now the last on duty at 西集村: refused, and nothing changes.
    refused = await _disable(client, admin, ids["郑海涛"])
    assert refused.status_code == 409 and refused.json()["code"] == "last_agent", refused.text
    assert "handOverTo" in refused.json()["detail"]
    still = await client.get("/mp/v1/agent/orders", headers=b_agent)
    assert still.status_code == 200 and [o["id"] for o in still.json()["items"]] == [order_id]
    # Confirming the station closes is not enough while he has an open order.
    closing = await _disable(client, admin, ids["郑海涛"], stationClosing=True)
    assert closing.status_code == 409 and "在办" in closing.json()["detail"]
    # Another town's agent cannot take over.
    foreign = await _disable(client, admin, ids["郑海涛"], handOverTo=ids["刘桂兰"])
    assert foreign.status_code == 422

    named = await _disable(client, admin, ids["郑海涛"], handOverTo=ids["冯淑珍"])
    assert named.status_code == 200, named.text
    detail = (
        await client.get(f"/mp/v1/agent/orders/{order_id}", headers=await login("agent5a"))
    ).json()
    assert detail["agent"]["name"] == "冯淑珍"
    # The town's dispatchers are told the station has nobody on duty.
    inbox = (await client.get("/mp/v1/me/messages", headers=await login("dispatcher2a"))).json()
    told = [m for m in inbox["items"] if m["title"] == "便民服务站无在岗代办员"]
    assert len(told) == 1 and "西集村" in told[0]["body"] and "冯淑珍" in told[0]["body"]


async def test_a_closing_station_lets_its_last_agent_go_when_nothing_is_open(
    ctx, demo, client, login
):
    admin, ids = await login("admin"), await _ids(ctx)
    assert (await _disable(client, admin, ids["吴秀芳"])).status_code == 200
    closing = await _disable(client, admin, ids["郑海涛"], stationClosing=True)
    assert closing.status_code == 200, closing.text
    readiness = (await client.get("/mp/v1/admin/readiness", headers=admin)).json()
    station = next(s for s in readiness["standards"] if s["code"] == "station_agents")
    assert "西集村" in {x["name"] for x in station["shortfalls"]}


async def test_an_import_does_not_move_the_last_agent_on_duty(ctx, demo, client, login):
    admin, ids = await login("admin"), await _ids(ctx)
    assert (await _disable(client, admin, ids["吴秀芳"])).status_code == 200
    moving = sheet(["郑海涛", "代办员", "B", "370406102000", "13806320402", None, None])
    answer = await client.post("/mp/v1/admin/staff/import", content=moving, headers=admin)
    assert answer.status_code == 422, answer.text
    assert "唯一在岗" in answer.json()["errors"][0]["message"]
