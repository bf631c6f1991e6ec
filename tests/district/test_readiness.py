"""Readiness (八有 as data): each standard with its figure, computed from the data; it turns
from failing to holding as the district is filled, for the admin (the district) and for a
dispatcher (their town)."""

from __future__ import annotations

import json

from app.asgi import create_app
from app.context import Context
from jobs import tasks
from tests.conftest import Clock, make_settings, serve
from tests.factories import centre_agent

TEMPLATES = json.dumps({"accepted": {"id": "tmpl-accepted", "fields": {"thing1": "item"}}})


def _standards(body: dict) -> dict[str, dict]:
    return {s["code"]: s for s in body["standards"]}


async def test_readiness_turns_from_failing_to_holding_as_the_district_is_filled(
    ctx, demo, client, login, database_url, tmp_path, clock: Clock
):
    admin = await login("admin")
    first = await client.get("/mp/v1/admin/readiness", headers=admin)
    assert first.status_code == 200, first.text
    assert first.json()["scope"] == "山亭区" and first.json()["holds"] is False
    before = _standards(first.json())
    # The demo has two agents at every village station, and none yet at the town centres.
    assert (before["centre_agents"]["holds"], before["centre_agents"]["failing"]) == (False, 2)
    assert {s["name"] for s in before["centre_agents"]["shortfalls"]} == {"店子镇", "西集镇"}
    assert (before["station_agents"]["figure"], before["station_agents"]["outOf"]) == (6, 6)
    assert before["stations_on_duty"]["holds"] and before["staff_bound"]["holds"]
    assert before["centre_items"]["holds"] and before["station_items"]["holds"]
    assert not before["next_year_calendar"]["holds"]  # 23 November 2026, 2027 not entered
    assert not before["https"]["holds"] and not before["subscription_templates"]["holds"]

    # A station whose agents are both away, and a new agent who has not bound yet.
    dispatcher = await login("dispatcher1a")
    board = (await client.get("/mp/v1/dispatch/board", headers=dispatcher)).json()
    for agent in [a for a in board["agents"] if a["villageName"] == "岩马村"]:
        away = await client.patch(
            f"/mp/v1/dispatch/agents/{agent['agentId']}/duty",
            json={"status": "off_duty"},
            headers=dispatcher,
        )
        assert away.status_code == 200, away.text
    regions = {
        r["name"]: r["id"] for r in (await client.get("/mp/v1/admin/regions", headers=admin)).json()
    }
    created = await client.post(
        "/mp/v1/admin/staff",
        json={"role": "agent", "name": "未绑定", "regionId": regions["西集镇"]},
        headers=admin,
    )
    assert created.status_code == 201
    middle = _standards((await client.get("/mp/v1/admin/readiness", headers=admin)).json())
    assert [s["name"] for s in middle["stations_on_duty"]["shortfalls"]] == ["岩马村"]
    assert middle["staff_bound"]["failing"] == 1
    assert middle["staff_bound"]["shortfalls"][0]["post"] == "西集镇"

    # The dispatcher of 店子镇 sees the same figures for the town alone.
    town = _standards((await client.get("/mp/v1/dispatch/readiness", headers=dispatcher)).json())
    assert town["centre_agents"]["outOf"] == 1 and town["station_agents"]["outOf"] == 3
    assert town["staff_bound"]["holds"]  # the unbound agent is of 西集镇

    # Filled: two bound agents at each centre, 岩马村's agent back, 2027 entered.
    for t, town_name in enumerate(("店子镇", "西集镇")):
        for p, post in enumerate("AB"):
            await centre_agent(
                client, login, admin, f"中心{t}{post}", post, f"centre{t}{p}", town=town_name
            )
    unbound = created.json()["staff"]["id"]
    assert (
        await client.patch(f"/mp/v1/admin/staff/{unbound}", json={"disabled": True}, headers=admin)
    ).status_code == 200
    for agent in [a for a in board["agents"] if a["villageName"] == "岩马村"][:1]:
        back = await client.patch(
            f"/mp/v1/dispatch/agents/{agent['agentId']}/duty",
            json={"status": "on_duty"},
            headers=dispatcher,
        )
        assert back.status_code == 200
    calendar = await client.put(
        "/mp/v1/admin/calendar/2027",
        json={
            "days": [{"day": "2027-01-01", "isWorkday": False, "note": "元旦"}],
            "complete": True,
        },
        headers=admin,
    )
    assert calendar.status_code == 200
    after = _standards((await client.get("/mp/v1/admin/readiness", headers=admin)).json())
    failing = sorted(code for code, s in after.items() if not s["holds"])
    assert failing == ["backup", "https", "subscription_templates"]

    # The same data served with HTTPS and a template configured, after the nightly backup
    # job has run: every standard holds.
    live = make_settings(
        tmp_path / "live",
        database_url,
        DAIBAN_STORAGE_PUBLIC_URL="https://daiban.example.gov.cn",
        DAIBAN_WECHAT_TEMPLATES=TEMPLATES,
        DAIBAN_BACKUP_DIR=str(tmp_path / "backups"),
    )
    live_ctx = Context.build(live)
    live_ctx.now = clock
    try:
        assert await tasks.back_up(live_ctx) > 0
        async with serve(create_app(live, ctx=live_ctx)) as live_client:
            answer = await live_client.get(
                "/mp/v1/admin/readiness", headers=await _login(live_client, "admin")
            )
    finally:
        await live_ctx.aclose()
    assert answer.json()["holds"] is True, [s for s in answer.json()["standards"] if not s["holds"]]


async def _login(client, handle: str) -> dict[str, str]:
    answer = await client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
    return {"Authorization": f"Bearer {answer.json()['accessToken']}"}
