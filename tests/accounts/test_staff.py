"""Staff created by an admin, bound to a WeChat login by a one-time code; scope by region."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Region
from app.regions.service import new_region
from tests.factories import other_district_admin


async def _village_id(client, town_index: int = 0, village_index: int = 0) -> int:
    regions = (await client.get("/mp/v1/regions")).json()
    return regions[0]["children"][town_index]["children"][village_index]["id"]


async def _create_agent(client, admin_headers, **overrides):
    body = {
        "role": "agent",
        "name": "钱多多",
        "regionId": await _village_id(client),
        "workPhone": "13800001111",
        "serviceHours": "周一至周五 9:00-17:00",
        "post": "B",
        **overrides,
    }
    return await client.post("/mp/v1/admin/staff", json=body, headers=admin_headers)


async def test_admin_creates_an_agent_and_a_resident_binds_with_the_code(client, demo, login):
    admin = await login("admin")
    created = await _create_agent(client, admin)
    assert created.status_code == 201, created.text
    code = created.json()["bindingCode"]
    assert created.json()["staff"]["bound"] is False
    newcomer = await login("future-agent")
    bound = await client.post(
        "/mp/v1/auth/bind-staff", json={"code": code.lower()}, headers=newcomer
    )
    assert bound.status_code == 200, bound.text
    assert bound.json()["account"]["role"] == "agent"
    agent_headers = {"Authorization": f"Bearer {bound.json()['accessToken']}"}
    station = await client.get("/mp/v1/agent/station", headers=agent_headers)
    assert "钱多多" in {card["name"] for card in station.json()}
    # The same WeChat login now lands on the staff account.
    again = await client.post("/mp/v1/auth/login", json={"code": "dev:future-agent"})
    assert again.json()["account"]["role"] == "agent"
    staff = (await client.get("/mp/v1/admin/staff?role=agent", headers=admin)).json()
    assert any(s["name"] == "钱多多" and s["bound"] for s in staff)


async def test_a_binding_code_works_once(client, demo, login):
    code = (await _create_agent(client, await login("admin"))).json()["bindingCode"]
    first = await client.post(
        "/mp/v1/auth/bind-staff", json={"code": code}, headers=await login("p1")
    )
    assert first.status_code == 200
    second = await client.post(
        "/mp/v1/auth/bind-staff", json={"code": code}, headers=await login("p2")
    )
    assert second.status_code == 400
    assert second.json()["code"] == "binding_code_invalid"


async def test_an_expired_binding_code_is_refused(client, demo, login, clock):
    code = (await _create_agent(client, await login("admin"))).json()["bindingCode"]
    clock.advance(hours=73)
    response = await client.post(
        "/mp/v1/auth/bind-staff", json={"code": code}, headers=await login("late")
    )
    assert response.status_code == 400
    assert response.json()["code"] == "binding_code_invalid"


async def test_staff_cannot_redeem_another_code(client, demo, login):
    code = (await _create_agent(client, await login("admin"))).json()["bindingCode"]
    response = await client.post(
        "/mp/v1/auth/bind-staff", json={"code": code}, headers=await login("agent1a")
    )
    assert response.status_code == 409


async def test_role_must_match_the_region_level(client, demo, login):
    admin = await login("admin")
    response = await _create_agent(client, admin, role="dispatcher", post=None)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "regionId"


async def test_admin_of_one_district_cannot_place_staff_in_another(client, demo, login, ctx):

    def other_district(session: Session) -> int:
        other = new_region("370402000000", "峄城区", None)
        session.add(other)
        session.flush()
        town = new_region("370402100000", "阴平镇", other)
        session.add(town)
        session.flush()
        village = new_region("370402100201", "阴平村", town)
        session.add(village)
        session.flush()
        assert isinstance(village, Region)
        return village.id

    village_id = await ctx.db.run_write(other_district)
    response = await _create_agent(client, await login("admin"), regionId=village_id)
    assert response.status_code == 404


async def test_disabled_staff_lose_their_refresh_tokens_and_login(client, demo, login):
    admin = await login("admin")
    tokens = (await client.post("/mp/v1/auth/login", json={"code": "dev:agent2b"})).json()
    staff = (await client.get("/mp/v1/admin/staff?role=agent", headers=admin)).json()
    agent_id = next(s["id"] for s in staff if s["name"] == "赵德明")
    assert (
        await client.patch(f"/mp/v1/admin/staff/{agent_id}", json={"disabled": True}, headers=admin)
    ).status_code == 200
    refresh = await client.post(
        "/mp/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert refresh.status_code == 401
    login_again = await client.post("/mp/v1/auth/login", json={"code": "dev:agent2b"})
    assert login_again.status_code == 403
    cards = (await client.get(f"/mp/v1/villages/{await _village_id(client, 0, 1)}/agents")).json()
    assert "赵德明" not in {c["name"] for c in cards}


async def test_dispatcher_sees_only_the_agents_of_their_town(client, demo, login):
    agents = (
        await client.get("/mp/v1/dispatch/agents", headers=await login("dispatcher1a"))
    ).json()
    assert len(agents) == 6
    assert {a["region"]["name"] for a in agents} == {"店子村", "东庄村", "岩马村"}


async def test_public_agent_cards_of_a_village(client, demo):
    village_id = await _village_id(client)
    cards = (await client.get(f"/mp/v1/villages/{village_id}/agents")).json()
    assert [c["post"] for c in cards] == ["A", "B"]
    assert all(c["workPhone"] and c["serviceHours"] for c in cards)
    town_id = (await client.get("/mp/v1/regions")).json()[0]["children"][0]["id"]
    assert (await client.get(f"/mp/v1/villages/{town_id}/agents")).status_code == 404


# --- editing staff after creation -------------------------------------------------------


async def _staff_named(client, admin_headers, name: str) -> dict:
    staff = (await client.get("/mp/v1/admin/staff", headers=admin_headers)).json()
    return next(s for s in staff if s["name"] == name)


async def test_admin_edits_an_agents_name_phone_hours_and_post(client, demo, login):
    admin = await login("admin")
    created = (await _create_agent(client, admin)).json()["staff"]
    change = {
        "name": " 钱满满 ",
        "workPhone": "0632-1234567",
        "serviceHours": "每天 8:30-18:00",
        "post": "A",
    }
    edited = await client.patch(f"/mp/v1/admin/staff/{created['id']}", json=change, headers=admin)
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["name"], body["workPhone"], body["serviceHours"], body["post"]) == (
        "钱满满",
        "0632-1234567",
        "每天 8:30-18:00",
        "A",
    )
    assert body["region"] == created["region"] and body["disabled"] is False
    cards = (await client.get(f"/mp/v1/villages/{created['region']['id']}/agents")).json()
    card = next(c for c in cards if c["id"] == created["id"])
    assert (card["name"], card["workPhone"], card["serviceHours"], card["post"]) == (
        "钱满满",
        "0632-1234567",
        "每天 8:30-18:00",
        "A",
    )
    # Absent fields stay as they are; null clears one.
    cleared = await client.patch(
        f"/mp/v1/admin/staff/{created['id']}", json={"serviceHours": None}, headers=admin
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["serviceHours"] is None
    assert cleared.json()["name"] == "钱满满" and cleared.json()["workPhone"] == "0632-1234567"
    assert (await _staff_named(client, admin, "钱满满"))["serviceHours"] is None


async def test_staff_edits_are_checked_like_creation_and_change_nothing(client, demo, login):
    admin = await login("admin")
    agent = (await _create_agent(client, admin)).json()["staff"]
    bad = await client.patch(
        f"/mp/v1/admin/staff/{agent['id']}",
        json={"name": "钱", "workPhone": "12345", "serviceHours": "全天"},
        headers=admin,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"name", "workPhone"}
    dispatcher = (await client.get("/mp/v1/admin/staff?role=dispatcher", headers=admin)).json()[0]
    post = await client.patch(
        f"/mp/v1/admin/staff/{dispatcher['id']}", json={"post": "A"}, headers=admin
    )
    assert post.status_code == 422
    assert [e["field"] for e in post.json()["errors"]] == ["post"]
    wrong_post = await client.patch(
        f"/mp/v1/admin/staff/{agent['id']}", json={"post": "C"}, headers=admin
    )
    assert wrong_post.status_code == 422
    after = await _staff_named(client, admin, "钱多多")
    assert {k: after[k] for k in ("name", "workPhone", "serviceHours", "post")} == {
        "name": "钱多多",
        "workPhone": "13800001111",
        "serviceHours": "周一至周五 9:00-17:00",
        "post": "B",
    }


async def test_staff_edits_refuse_unknown_fields(client, demo, login):
    admin = await login("admin")
    agent = (await _create_agent(client, admin)).json()["staff"]
    for body in ({"role": "admin"}, {"regionId": 1}, {"photoKey": "objects/x.jpg"}):
        response = await client.patch(f"/mp/v1/admin/staff/{agent['id']}", json=body, headers=admin)
        assert response.status_code == 422, body
        assert response.json()["code"] == "invalid_input"
    assert (await _staff_named(client, admin, "钱多多"))["role"] == "agent"


async def test_admin_of_another_district_gets_404_editing_staff(client, demo, login, ctx):
    admin = await login("admin")
    agent = (await _create_agent(client, admin)).json()["staff"]
    outsider = await login(await other_district_admin(ctx))
    response = await client.patch(
        f"/mp/v1/admin/staff/{agent['id']}", json={"name": "冒名顶替"}, headers=outsider
    )
    assert response.status_code == 404
    disable = await client.patch(
        f"/mp/v1/admin/staff/{agent['id']}", json={"disabled": True}, headers=outsider
    )
    assert disable.status_code == 404
    after = await _staff_named(client, admin, "钱多多")
    assert after["disabled"] is False


async def test_disabling_still_works_and_an_admin_cannot_disable_themselves(client, demo, login):
    admin = await login("admin")
    agent = (await _create_agent(client, admin)).json()["staff"]
    both = await client.patch(
        f"/mp/v1/admin/staff/{agent['id']}",
        json={"disabled": True, "serviceHours": "暂停服务"},
        headers=admin,
    )
    assert both.status_code == 200, both.text
    assert both.json()["disabled"] is True and both.json()["serviceHours"] == "暂停服务"
    enabled = await client.patch(
        f"/mp/v1/admin/staff/{agent['id']}", json={"disabled": False}, headers=admin
    )
    assert enabled.json()["disabled"] is False
    me = (await client.get("/mp/v1/me", headers=admin)).json()
    renamed = await client.patch(
        f"/mp/v1/admin/staff/{me['id']}", json={"name": "区管理员"}, headers=admin
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "区管理员"
    itself = await client.patch(
        f"/mp/v1/admin/staff/{me['id']}", json={"disabled": True}, headers=admin
    )
    assert itself.status_code == 409
