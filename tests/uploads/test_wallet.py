"""The material wallet (材料夹, 少报材料): a resident keeps an identity document an agent verified,
with consent, and gives it to a later order in one tap; the agent sees where it came from
and may still refuse it; each reuse is audited; an item expires (the setting, or the
document's own validity) and the resident may remove it at any time, its files at once.

resident1 张秀英's orders go to agent1a 刘桂兰 (accepted_order)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import select

from app.models import AuditEntry, Upload, WalletItem
from app.retention.run import run_retention
from tests.factories import guide, submit, taken_by_agent1a, upload_photo
from tests.orders.test_slip import accepted_order

KEEP = "/mp/v1/me/wallet"


async def _keep(client, headers, order_id: int, material: str = "id_card", **extra):
    body = {"orderId": order_id, "material": material, "consent": True, **extra}
    return await client.post(KEEP, json=body, headers=headers)


async def _audit(ctx, action: str) -> list[AuditEntry]:
    return list(
        await ctx.db.run_read(
            lambda s: s.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        )
    )


async def _stored(ctx, keys: list[str]) -> list[bool]:
    return [await ctx.store.stat(key) is not None for key in keys]


async def _wallet_keys(ctx, item_id: int) -> list[str]:
    rows = await ctx.db.run_read(
        lambda s: s.scalars(select(Upload).where(Upload.kept_for == f"wallet:{item_id}")).all()
    )
    return [k for u in rows for k in (u.key, u.thumbnail_key) if k]


async def _submit_with(client, resident, id_card_ids: list[int]) -> dict:
    """RS-0001 with the ID card from the wallet and fresh photos for the rest."""
    materials = {}
    for m in (await guide(client, "RS-0001"))["materials"]:
        if m["required"]:
            materials[m["code"]] = (
                id_card_ids if m["code"] == "id_card" else [await upload_photo(client, resident)]
            )
    headers = {**resident, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"}
    made = await client.post(
        "/mp/v1/orders", json={"itemCode": "RS-0001", "materials": materials}, headers=headers
    )
    assert made.status_code == 201, made.text
    return made.json()


async def test_a_verified_id_card_is_kept_and_reused_and_the_agent_sees_where_from(
    client, demo, login, ctx
):
    first = await accepted_order(client, login)
    resident = first["resident"]
    kept = await _keep(client, resident, first["id"], validUntil="2036-05-17")
    assert kept.status_code == 201, kept.text
    item = kept.json()
    assert item["name"] == "居民身份证" and item["materialCode"] == "id_card"
    assert item["verifiedByName"] == "刘桂兰" and item["validUntil"] == "2036-05-17"
    assert item["expiresAt"].startswith("2027-11-23")  # 365 days: before the card's own end
    assert len(item["uploadIds"]) == 1
    # The wallet's copy is a file of its own, not the order's.
    wallet_keys = await _wallet_keys(ctx, item["id"])
    order_keys = await ctx.db.run_read(
        lambda s: s.scalars(select(Upload.key).where(Upload.order_id == first["id"])).all()
    )
    assert wallet_keys and not set(wallet_keys) & set(order_keys)
    assert all(await _stored(ctx, wallet_keys))
    kept_trail = await _audit(ctx, "wallet.keep")
    assert len(kept_trail) == 1 and "同意" in kept_trail[0].detail["consent"]
    listed = (await client.get(KEEP, headers=resident)).json()
    assert [i["id"] for i in listed] == [item["id"]]
    # The wallet's copy is the resident's alone: the agent cannot open it.
    agent = first["agent"]
    hidden = await client.get(f"/mp/v1/uploads/{item['uploadIds'][0]}/url", headers=agent)
    assert hidden.status_code == 404

    # The wallet's own copy is not given straight to an order: it is used first.
    headers = {**resident, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"}
    straight = await client.post(
        "/mp/v1/orders",
        json={"itemCode": "RS-0001", "materials": {"id_card": item["uploadIds"]}},
        headers=headers,
    )
    assert straight.status_code == 422
    assert any("材料夹" in e["message"] for e in straight.json()["errors"])

    used = await client.post(f"{KEEP}/{item['id']}/use", headers=resident)
    assert used.status_code == 200, used.text
    fresh = used.json()["uploadIds"]
    assert len(fresh) == 1 and fresh[0] not in item["uploadIds"]
    second = await _submit_with(client, resident, fresh)
    agent = await taken_by_agent1a(client, login, second["id"])
    link = await client.get(f"/mp/v1/uploads/{fresh[0]}/url", headers=agent)
    assert link.status_code == 200, link.text
    origin = link.json()["fromWallet"]
    assert origin["name"] == "居民身份证" and origin["verifiedByName"] == "刘桂兰"
    assert origin["verifiedAt"] is not None
    used_trail = await _audit(ctx, "wallet.use")
    assert len(used_trail) == 1 and used_trail[0].detail["uploads"] == fresh
    assert (await client.get(KEEP, headers=resident)).json()[0]["uses"] == 1

    # The agent may still refuse it in review: a supplement notice, a round like any other.
    refused = await client.post(
        f"/mp/v1/agent/orders/{second['id']}/request-supplement",
        json={"missing": [{"code": "id_card", "reason": "身份证已过期,请拍新证"}]},
        headers=agent,
    )
    assert refused.status_code == 200, refused.text
    detail = (await client.get(f"/mp/v1/agent/orders/{second['id']}", headers=agent)).json()
    assert detail["supplementRounds"] == 1


async def test_only_a_verified_document_of_ones_own_order_is_kept_with_consent(
    client, demo, login, ctx
):
    resident = await login("resident1")
    submitted = (await submit(client, resident)).json()  # not yet accepted
    not_yet = await _keep(client, resident, submitted["id"])
    assert not_yet.status_code == 409 and not_yet.json()["code"] == "wallet_not_keepable"
    accepted = await accepted_order(client, login)
    resident = accepted["resident"]
    no_consent = await client.post(
        KEEP,
        json={"orderId": accepted["id"], "material": "id_card", "consent": False},
        headers=resident,
    )
    assert no_consent.status_code == 422
    assert no_consent.json()["errors"][0]["field"] == "consent"
    expired = await _keep(client, resident, accepted["id"], validUntil="2020-01-01")
    assert expired.status_code == 422 and expired.json()["errors"][0]["field"] == "validUntil"
    not_a_document = await _keep(client, resident, accepted["id"], material="entrustment")
    assert not_a_document.status_code == 409
    not_theirs = await _keep(client, await login("resident2"), accepted["id"])
    assert not_theirs.status_code == 404
    as_agent = await _keep(client, accepted["agent"], accepted["id"])
    assert as_agent.status_code == 403
    for bad in ({"orderId": 2**63}, {"material": "x" * 41}, {"material": "id\x00card"}):
        body = {"orderId": accepted["id"], "material": "id_card", "consent": True, **bad}
        answer = await client.post(KEEP, json=body, headers=resident)
        assert answer.status_code in (404, 409, 422), answer.text
    assert await ctx.db.run_read(lambda s: s.scalars(select(WalletItem)).all()) == []
    assert (await _keep(client, resident, accepted["id"])).status_code == 201
    twice = await _keep(client, resident, accepted["id"])
    assert twice.status_code == 409 and twice.json()["code"] == "wallet_already_kept"


async def test_an_item_expires_with_the_document_and_goes_with_its_files(
    client, demo, login, ctx, clock
):
    order = await accepted_order(client, login)
    resident = order["resident"]
    valid_until = (date(2026, 11, 23) + timedelta(days=10)).isoformat()
    item = (await _keep(client, resident, order["id"], validUntil=valid_until)).json()
    assert item["expiresAt"].startswith("2026-12-03T16:00")  # the end of 3 December, Beijing
    keys = await _wallet_keys(ctx, item["id"])
    clock.advance(days=11)
    resident = await login("resident1")
    assert (await client.get(KEEP, headers=resident)).json() == []
    gone = await client.post(f"{KEEP}/{item['id']}/use", headers=resident)
    assert gone.status_code == 409 and gone.json()["code"] == "wallet_item_gone"
    assert all(await _stored(ctx, keys))  # until the retention run
    outcome = await run_retention(ctx)
    assert outcome.wallet_items == 1
    assert not any(await _stored(ctx, keys))
    row = await ctx.db.run_read(lambda s: s.get(WalletItem, item["id"]))
    assert row.removed_reason == "expired"
    assert (await run_retention(ctx)).wallet_items == 0


async def test_removal_takes_the_wallet_s_files_at_once_and_orders_keep_theirs(
    client, demo, login, ctx
):
    order = await accepted_order(client, login)
    resident = order["resident"]
    item = (await _keep(client, resident, order["id"])).json()
    fresh = (await client.post(f"{KEEP}/{item['id']}/use", headers=resident)).json()["uploadIds"]
    second = await _submit_with(client, resident, fresh)
    keys = await _wallet_keys(ctx, item["id"])
    removed = await client.delete(f"{KEEP}/{item['id']}", headers=resident)
    assert removed.status_code == 204, removed.text
    assert not any(await _stored(ctx, keys))
    assert (await client.get(KEEP, headers=resident)).json() == []
    assert len(await _audit(ctx, "wallet.remove")) == 1
    again = await client.post(f"{KEEP}/{item['id']}/use", headers=resident)
    assert again.status_code == 409
    # The copy the second order was given is that order's: its agent still opens it.
    agent = await taken_by_agent1a(client, login, second["id"])
    link = await client.get(f"/mp/v1/uploads/{fresh[0]}/url", headers=agent)
    assert link.status_code == 200, link.text
    # Another resident can neither see nor remove the item.
    other = await client.delete(f"{KEEP}/{item['id']}", headers=await login("resident2"))
    assert other.status_code == 404


async def test_closing_the_account_takes_the_wallet_with_it(client, demo, login, ctx):
    order = await accepted_order(client, login)
    resident = order["resident"]
    item = (await _keep(client, resident, order["id"])).json()
    keys = await _wallet_keys(ctx, item["id"])
    # Closing waits for the open order: the agent carries it through first.
    agent = order["agent"]
    for action, body in (
        ("complete", {"outcome": "approved"}),
        (
            "deliver",
            {"deliveryMethod": "pickup", "proofUploadIds": [await upload_photo(client, agent)]},
        ),
    ):
        moved = await client.post(
            f"/mp/v1/agent/orders/{order['id']}/{action}", json=body, headers=agent
        )
        assert moved.status_code == 200, moved.text
    closed = await client.post("/mp/v1/me/close", json={"confirm": "注销"}, headers=resident)
    assert closed.status_code == 200, closed.text
    assert not any(await _stored(ctx, keys))
    row = await ctx.db.run_read(lambda s: s.get(WalletItem, item["id"]))
    assert row.removed_reason == "closed"
