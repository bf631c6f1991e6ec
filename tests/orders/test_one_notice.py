"""一次性告知 across rounds: a second supplement notice may name only what was supplied or
changed since the first; a material that was there then, and not named then, is refused
with its name. Each notice is a round on the order's timeline."""

from __future__ import annotations

from tests.factories import guide, submit, taken_by_agent1a, upload_photo


async def _notice(client, agent, order_id, *codes):
    return await client.post(
        f"/mp/v1/agent/orders/{order_id}/request-supplement",
        json={"missing": [{"code": c, "reason": "照片不清晰"} for c in codes]},
        headers=agent,
    )


async def test_a_second_notice_names_only_what_changed_since_the_first(client, demo, login):
    resident = await login("resident1")
    order = (await submit(client, resident)).json()
    agent = await taken_by_agent1a(client, login, order["id"])
    materials = [m for m in (await guide(client, "RS-0001"))["materials"] if m["required"]]
    first, second = materials[0], materials[1]

    assert (await _notice(client, agent, order["id"], first["code"])).status_code == 200
    supplied = await client.post(
        f"/mp/v1/orders/{order['id']}/supplement",
        json={"materials": {first["code"]: [await upload_photo(client, resident)]}},
        headers=resident,
    )
    assert supplied.status_code == 200, supplied.text

    # The second material was there at the first notice and was not named: it was accepted.
    refused = await _notice(client, agent, order["id"], second["code"])
    assert refused.status_code == 422
    problem = refused.json()["errors"][0]
    assert problem["field"] == "missing[0].code" and second["name"] in problem["message"]
    status = await client.get(f"/mp/v1/agent/orders/{order['id']}", headers=agent)
    assert status.json()["status"] == "reviewing"  # nothing changed

    # The one supplied since may be named again: its new photo is judged afresh.
    again = await _notice(client, agent, order["id"], first["code"])
    assert again.status_code == 200, again.text
    timeline = again.json()["timeline"]
    assert [e["action"] for e in timeline].count("request_supplement") == 2
