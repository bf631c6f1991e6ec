"""An admin keeps the district's tree after setup: lists, adds, renames and retires regions
through the API, each change audited; a retired village is no longer chosen or submitted
from, while its orders go on."""

from __future__ import annotations

from sqlalchemy import select

from app.models import AuditEntry
from tests.factories import other_district_admin, submit

DISTRICT = "370406000000"


async def _regions(client, admin) -> dict[str, dict]:
    listed = await client.get("/mp/v1/admin/regions", headers=admin)
    assert listed.status_code == 200, listed.text
    return {r["code"]: r for r in listed.json()}


async def test_an_admin_adds_a_street_and_a_community_renames_and_each_change_is_audited(
    ctx, demo, client, login
):
    admin = await login("admin")
    before = await _regions(client, admin)
    assert before[DISTRICT]["level"] == "district" and len(before) == 9
    street = await client.post(
        "/mp/v1/admin/regions", json={"code": "370406103000", "name": "山城街道"}, headers=admin
    )
    assert street.status_code == 201, street.text
    assert (street.json()["level"], street.json()["parentId"]) == (
        "town",
        before[DISTRICT]["id"],
    )
    community = await client.post(
        "/mp/v1/admin/regions", json={"code": "370406103001", "name": "山城社区"}, headers=admin
    )
    assert community.status_code == 201, community.text
    assert community.json()["level"] == "village"
    renamed = await client.patch(
        f"/mp/v1/admin/regions/{community.json()['id']}",
        json={"name": "山城东社区"},
        headers=admin,
    )
    assert renamed.json()["name"] == "山城东社区"
    public = (await client.get("/mp/v1/regions")).json()
    streets = {t["name"]: t for t in public[0]["children"]}
    assert [v["name"] for v in streets["山城街道"]["children"]] == ["山城东社区"]

    actions = await ctx.db.run_read(
        lambda s: s.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.startswith("region."))
            .order_by(AuditEntry.id)
        ).all()
    )
    assert actions == ["region.add", "region.add", "region.rename"]


async def test_codes_that_do_not_fit_the_district_or_exist_already_are_refused(
    ctx, demo, client, login
):
    admin = await login("admin")
    cases = [
        ("370407101000", 422, "invalid_input"),  # another district
        ("370406000000", 422, "invalid_input"),  # the district itself
        ("370406101000", 409, "conflict"),  # 店子镇 exists
        ("370406109201", 409, "conflict"),  # its town does not exist
        ("37040610300", 422, "invalid_input"),  # 11 digits: the body's schema
    ]
    for code, status, error in cases:
        answer = await client.post(
            "/mp/v1/admin/regions", json={"code": code, "name": "某地"}, headers=admin
        )
        assert (answer.status_code, answer.json()["code"]) == (status, error), answer.text
    assert len(await _regions(client, admin)) == 9
    # Only admins, and only their own district.
    dispatcher = await login("dispatcher1a")
    assert (await client.get("/mp/v1/admin/regions", headers=dispatcher)).status_code == 403
    other = await login(await other_district_admin(ctx))
    mine = await _regions(client, admin)
    foreign = await client.patch(
        f"/mp/v1/admin/regions/{mine['370406101000']['id']}", json={"name": "X镇"}, headers=other
    )
    assert foreign.status_code == 404


async def test_retiring_a_town_retires_its_villages_keeps_their_orders_and_stops_new_ones(
    ctx, demo, client, login
):
    resident = await login("resident2")  # lives in 西集村, 西集镇
    first = await submit(client, resident)
    assert first.status_code == 201, first.text
    admin = await login("admin")
    regions = await _regions(client, admin)
    town = regions["370406102000"]
    retired = await client.post(f"/mp/v1/admin/regions/{town['id']}/retire", headers=admin)
    assert retired.status_code == 200, retired.text
    body = retired.json()
    assert [r["code"] for r in body["retired"]] == [
        "370406102000",
        "370406102201",
        "370406102202",
        "370406102203",
    ]
    assert body["openOrders"] == 1
    assert body["staffPosted"] > 0  # its dispatchers and agents, to be moved

    # The order goes on; no new one from the retired village; no one new posted there.
    order = await client.get(f"/mp/v1/orders/{first.json()['id']}", headers=resident)
    assert order.status_code == 200
    again = await submit(client, resident)
    assert again.status_code == 409 and again.json()["code"] == "profile_incomplete"
    staff = await client.post(
        "/mp/v1/admin/staff",
        json={"role": "agent", "name": "新代办员", "regionId": regions["370406102201"]["id"]},
        headers=admin,
    )
    assert staff.status_code == 409 and staff.json()["code"] == "region_retired"
    twice = await client.post(f"/mp/v1/admin/regions/{town['id']}/retire", headers=admin)
    assert twice.status_code == 409
    district = await client.post(
        f"/mp/v1/admin/regions/{regions[DISTRICT]['id']}/retire", headers=admin
    )
    assert district.status_code == 409

    # Adding the code again brings the town back; its villages one by one.
    back = await client.post(
        "/mp/v1/admin/regions", json={"code": "370406102000", "name": "西集镇"}, headers=admin
    )
    assert back.status_code == 201 and back.json()["retiredAt"] is None
    village = await client.post(
        "/mp/v1/admin/regions", json={"code": "370406102201", "name": "西集村"}, headers=admin
    )
    assert village.status_code == 201, village.text
    assert (await submit(client, resident)).status_code == 201
