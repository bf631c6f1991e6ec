"""Staff find orders (seed 004: 根据身份证号码…可查询): by number, or by the resident's name,
ID number or phone, within their own scope; a search by person needs a purpose and is
audited, and ID numbers and phones are matched through their look-up hashes."""

from __future__ import annotations

from sqlalchemy import select

from app.models import Account, AuditEntry
from tests.factories import submit


async def _id_number(ctx, account_id: int) -> str:
    return await ctx.db.run_read(
        lambda s: ctx.cipher.decrypt(
            s.scalar(select(Account.id_number_enc).where(Account.id == account_id)),
            context="id_number",
        )
    )


async def _search(client, headers, path="/mp/v1/dispatch/orders/search", **body):
    return await client.post(path, json=body, headers=headers)


async def test_an_order_is_found_by_number_within_the_town(client, demo, login):
    order = (await submit(client, await login("resident1"))).json()
    mine = await _search(client, await login("dispatcher1a"), by="number", value=order["number"])
    assert mine.status_code == 200 and [o["id"] for o in mine.json()] == [order["id"]]
    theirs = await _search(client, await login("dispatcher2a"), by="number", value=order["number"])
    assert theirs.status_code == 200 and theirs.json() == []


async def test_a_search_by_id_number_is_scoped_and_audited_with_its_purpose(
    client, demo, login, ctx
):
    order = (await submit(client, await login("resident1"))).json()
    me = (await client.get("/mp/v1/me", headers=await login("resident1"))).json()
    id_number = await _id_number(ctx, me["id"])
    dispatcher = await login("dispatcher1a")

    no_purpose = await _search(client, dispatcher, by="id_number", value=id_number)
    assert no_purpose.status_code == 422
    assert no_purpose.json()["errors"][0]["field"] == "purpose"
    found = await _search(
        client, dispatcher, by="id_number", value=id_number, purpose="群众来电查询进度"
    )
    assert found.status_code == 200
    assert [(o["number"], o["residentName"]) for o in found.json()] == [(order["number"], "张**")]
    assert id_number not in found.text

    admin = await _search(
        client,
        await login("admin"),
        path="/mp/v1/admin/orders/search",
        by="phone",
        value="13800000000",
        purpose="核对群众信息",
    )
    assert admin.status_code == 200 and admin.json() == []
    other_town = await _search(
        client, await login("dispatcher2a"), by="id_number", value=id_number, purpose="核对信息"
    )
    assert other_town.json() == []

    entries = await ctx.db.run_read(
        lambda s: [
            (e.actor_role, e.target, e.purpose)
            for e in s.scalars(
                select(AuditEntry).where(AuditEntry.action == "pii.search").order_by(AuditEntry.id)
            )
        ]
    )
    assert entries == [
        ("dispatcher", "orders-by:id_number", "群众来电查询进度"),
        ("admin", "orders-by:phone", "核对群众信息"),
        ("dispatcher", "orders-by:id_number", "核对信息"),
    ]


async def test_a_bad_id_number_is_named_and_residents_and_agents_may_not_search(
    client, demo, login
):
    bad = await _search(
        client,
        await login("dispatcher1a"),
        by="id_number",
        value="110101190001011234",
        purpose="群众来电查询进度",
    )
    assert bad.status_code == 422 and "身份证号码" in bad.json()["errors"][0]["message"]
    for handle, path in (("resident1", "/mp/v1/dispatch"), ("agent1a", "/mp/v1/admin")):
        refused = await _search(
            client, await login(handle), path=f"{path}/orders/search", by="number", value="DB1"
        )
        assert refused.status_code == 403
