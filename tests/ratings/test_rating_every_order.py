"""好差评全覆盖 (seed 001): every order that ends can be rated, a refusal (不予受理) and a
termination (终止办理) too, within the rating window after it ended; the order stays as it
ended, and the figures keep those ratings apart from the service's satisfaction. A
resident's own withdrawal is not rated.

resident2 (西集村) is served by 吴秀芳 (agent4a); 西集镇's dispatcher is dispatcher2a."""

from __future__ import annotations

from tests.factories import submit

TODAY = "from=2026-11-23&to=2026-11-23"


async def _taken(client, login) -> int:
    order = (await submit(client, await login("resident2"))).json()
    agent = await login("agent4a")
    taken = await client.post(f"/mp/v1/agent/orders/{order['id']}/take", json={}, headers=agent)
    assert taken.status_code == 200, taken.text
    return int(order["id"])


async def _refused(client, login) -> int:
    order_id = await _taken(client, login)
    refused = await client.post(
        f"/mp/v1/agent/orders/{order_id}/reject",
        json={"reason": "不符合参保条件:已参加职工养老保险"},
        headers=await login("agent4a"),
    )
    assert refused.status_code == 200, refused.text
    return order_id


async def _rate(client, login, order_id: int, grade: int):
    return await client.post(
        f"/mp/v1/orders/{order_id}/rating", json={"grade": grade}, headers=await login("resident2")
    )


async def test_a_refused_order_is_rated_and_the_figures_keep_it_apart(client, demo, login):
    order_id = await _refused(client, login)
    resident = await login("resident2")
    detail = (await client.get(f"/mp/v1/orders/{order_id}", headers=resident)).json()
    assert "rating" in detail["nextActions"]
    rated = await _rate(client, login, order_id, 2)
    assert rated.status_code in (200, 201), rated.text
    assert rated.json()["grade"] == 2
    after = (await client.get(f"/mp/v1/orders/{order_id}", headers=resident)).json()
    assert after["status"] == "rejected"  # it stays as it ended
    assert [e["action"] for e in after["timeline"]][-1] == "rate"
    assert "rating" not in after["nextActions"]
    again = await _rate(client, login, order_id, 5)
    assert again.status_code == 409 and again.json()["code"] == "already_rated"

    dispatcher = await login("dispatcher2a")
    stats = (await client.get(f"/mp/v1/dispatch/stats?{TODAY}", headers=dispatcher)).json()
    assert stats["ratings"] == 0 and stats["satisfactionRate"] is None
    assert stats["unservedRatings"] == 1 and stats["unservedSatisfactionRate"] == 0.0
    by_agent = (
        await client.get(f"/mp/v1/dispatch/satisfaction?{TODAY}&by=agent", headers=dispatcher)
    ).json()
    assert by_agent["total"]["ratings"] == 0 and by_agent["total"]["unservedRatings"] == 1
    # A bad rating of a refusal is a bad rating: the town's case opens as for any other.
    ratings = (await client.get("/mp/v1/dispatch/ratings", headers=dispatcher)).json()
    assert [r["orderId"] for r in ratings] == [order_id]


async def test_a_terminated_order_is_rated_but_a_withdrawn_one_is_not(client, demo, login):
    ended = await _taken(client, login)
    agent = await login("agent4a")
    await client.post(f"/mp/v1/agent/orders/{ended}/accept", json={}, headers=agent)
    terminated = await client.post(
        f"/mp/v1/agent/orders/{ended}/terminate",
        json={"reason": "部门政策调整,暂停受理"},
        headers=agent,
    )
    assert terminated.status_code == 200, terminated.text
    rated = await _rate(client, login, ended, 4)
    assert rated.status_code in (200, 201), rated.text

    withdrawn = (await submit(client, await login("resident2"))).json()["id"]
    cancelled = await client.post(
        f"/mp/v1/orders/{withdrawn}/cancel", json={}, headers=await login("resident2")
    )
    assert cancelled.status_code == 200, cancelled.text
    refused = await _rate(client, login, withdrawn, 5)
    assert refused.status_code == 409 and refused.json()["code"] == "illegal_transition"
    stats = (
        await client.get(f"/mp/v1/dispatch/stats?{TODAY}", headers=await login("dispatcher2a"))
    ).json()
    assert stats["unservedRatings"] == 1 and stats["unservedSatisfactionRate"] == 1.0


async def test_a_refusal_is_rated_only_within_the_window(client, demo, login, ctx, clock):
    order_id = await _refused(client, login)
    clock.advance(days=ctx.settings.ratings.window_days, seconds=1)
    resident = await login("resident2")
    detail = (await client.get(f"/mp/v1/orders/{order_id}", headers=resident)).json()
    assert "rating" not in detail["nextActions"]
    late = await _rate(client, login, order_id, 3)
    assert late.status_code == 409 and late.json()["code"] == "rating_window_over"
