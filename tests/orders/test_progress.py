"""上报件 and 联办件 after 受理 (seed 000): an escalated order's steps up to the department and
back, each a timeline event the resident reads in plain Chinese, with the clock unchanged;
a joint order's parts, one per department of its guide, and 办结 only once each is done or
its reason for not acting recorded."""

from __future__ import annotations

from typing import Any

from tests.factories import submit, taken_by_agent1a, upload_photo

ESCALATED = "RS-0003"  # 城乡居民基本养老保险待遇领取申请: 上报件, decided by 区人社局
JOINT = "MZ-0014"  # 困难残疾人生活补贴申请: 联办件
PROMISED = "RS-0001"


async def _accepted(client: Any, login: Any, code: str) -> tuple[dict, dict, dict]:
    """resident1's order of `code`, taken and accepted by agent1a: (order, resident, agent)."""
    resident = await login("resident1")
    submitted = await submit(client, resident, code)
    assert submitted.status_code == 201, submitted.text
    order = submitted.json()
    agent = await taken_by_agent1a(client, login, order["id"])
    accepted = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/accept", json={}, headers=agent
    )
    assert accepted.status_code == 200, accepted.text
    return accepted.json(), resident, agent


async def _step(client: Any, agent: dict, order_id: int, **body: Any) -> Any:
    body.setdefault("on", "2026-11-23")  # the day of 受理
    return await client.post(f"/mp/v1/agent/orders/{order_id}/progress", json=body, headers=agent)


async def test_an_escalated_orders_steps_reach_the_resident_in_plain_chinese(
    client, demo, login, clock
):
    order, resident, agent = await _accepted(client, login, ESCALATED)
    assert order["kind"] == "escalated" and order["kindName"] == "上报件"
    assert "progress" in order["nextActions"]
    receipt = await upload_photo(client, agent)
    sent = await _step(
        client, agent, order["id"], step="sent", department="hrss", receiptUploadIds=[receipt]
    )
    assert sent.status_code == 200, sent.text
    clock.advance(days=2)
    agent = await login("agent1a")
    resident = await login("resident1")
    received = await _step(client, agent, order["id"], step="received", department="hrss")
    assert received.status_code == 200, received.text
    replied = await _step(
        client, agent, order["id"], step="replied", department="hrss", note="审核通过"
    )
    assert replied.status_code == 200, replied.text
    # A level above the district is named as the office it went to.
    city = await _step(
        client,
        agent,
        order["id"],
        step="sent",
        office="市社会保险事业中心",
        receiptUploadIds=[await upload_photo(client, agent)],
    )
    assert city.status_code == 200, city.text

    seen = (await client.get(f"/mp/v1/orders/{order['id']}", headers=resident)).json()
    notes = [e["note"] for e in seen["timeline"] if e["action"] == "progress"]
    assert notes == [
        "已报送区人力资源和社会保障局审核",
        "区人力资源和社会保障局已受理",
        "区人力资源和社会保障局已作出答复:审核通过",
        "已报送市社会保险事业中心审核",
    ]
    # The steps do not move the order or its clock: still 办理中, due as promised at 受理.
    assert seen["status"] == "accepted" and seen["dueAt"] == order["dueAt"]
    assert [(p["name"], p["step"]) for p in seen["progress"]] == [
        ("区人力资源和社会保障局", "replied"),
        ("市社会保险事业中心", "sent"),
    ]
    # The receipt photo is the order's now.
    sent_event = next(e for e in seen["timeline"] if e["action"] == "progress")
    assert sent_event["data"]["receiptUploadIds"] == [receipt]
    # The resident is told of the sending and the reply, not of the department's receipt.
    inbox = (await client.get("/mp/v1/me/messages", headers=resident)).json()["items"]
    told = [m["body"] for m in inbox if m["kind"] == "progressed"]
    assert len(told) == 3
    assert any("已报送区人力资源和社会保障局审核" in body for body in told)
    assert not any("已受理" in body for body in told)


async def test_an_escalated_step_needs_its_receipt_its_order_and_a_sensible_date(
    client, demo, login
):
    order, _, agent = await _accepted(client, login, ESCALATED)
    no_receipt = await _step(client, agent, order["id"], step="sent", department="civil")
    assert no_receipt.status_code == 422
    assert no_receipt.json()["errors"][0]["field"] == "receiptUploadIds"
    too_early = await _step(client, agent, order["id"], step="received", department="civil")
    assert too_early.status_code == 422
    assert "区民政局" in too_early.json()["detail"]
    for on in ("2026-11-22", "2026-11-24"):  # before 受理 (the 23rd), after today
        dated = await _step(
            client,
            agent,
            order["id"],
            step="sent",
            department="civil",
            on=on,
            receiptUploadIds=[await upload_photo(client, agent)],
        )
        assert dated.status_code == 422 and dated.json()["errors"][0]["field"] == "on"
    unknown = await _step(
        client,
        agent,
        order["id"],
        step="sent",
        department="nosuch",
        receiptUploadIds=[await upload_photo(client, agent)],
    )
    assert unknown.status_code == 422
    both = await _step(
        client,
        agent,
        order["id"],
        step="sent",
        department="civil",
        office="市民政局",
        receiptUploadIds=[await upload_photo(client, agent)],
    )
    assert both.status_code == 422
    not_acted = await _step(
        client, agent, order["id"], step="not_acted", department="civil", note="不归口"
    )
    assert not_acted.status_code == 422  # only a joint item's department can not act
    detail = (await client.get(f"/mp/v1/agent/orders/{order['id']}", headers=agent)).json()
    assert detail["progress"] == [] and not any(
        e["action"] == "progress" for e in detail["timeline"]
    )


async def test_a_joint_order_completes_only_when_every_department_has_done_its_part(
    client, demo, login
):
    order, resident, agent = await _accepted(client, login, JOINT)
    assert order["kind"] == "joint"
    parts = order["progress"]
    assert len(parts) >= 2 and all(p["step"] is None for p in parts)
    lead, *others = [p["department"] for p in parts]
    assert lead == "civil"  # the guide's lead department comes first

    refused = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/complete", json={"outcome": "approved"}, headers=agent
    )
    assert refused.status_code == 409 and refused.json()["code"] == "joint_parts_outstanding"
    assert len(refused.json()["errors"]) == len(parts)

    # A body outside the guide's departments is no part of a joint order.
    outside = await _step(client, agent, order["id"], step="sent", department="tax")
    assert outside.status_code == 422
    assert (
        await _step(client, agent, order["id"], step="replied", department=lead)
    ).status_code == 200
    silent = await _step(client, agent, order["id"], step="not_acted", department=others[0])
    assert silent.status_code == 422 and silent.json()["errors"][0]["field"] == "note"
    for code in others:
        sent = await _step(client, agent, order["id"], step="sent", department=code)
        assert sent.status_code == 200, sent.text  # a joint hand-over needs no receipt
    still = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/complete", json={"outcome": "approved"}, headers=agent
    )
    assert still.status_code == 409 and len(still.json()["errors"]) == len(others)
    first, *rest = others
    done = await _step(
        client, agent, order["id"], step="not_acted", department=first, note="申请人已在该部门登记"
    )
    assert done.status_code == 200, done.text
    for code in rest:
        assert (
            await _step(client, agent, order["id"], step="replied", department=code)
        ).status_code == 200

    completed = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/complete", json={"outcome": "approved"}, headers=agent
    )
    assert completed.status_code == 200, completed.text
    seen = (await client.get(f"/mp/v1/orders/{order['id']}", headers=resident)).json()
    notes = [e["note"] for e in seen["timeline"] if e["action"] == "progress"]
    assert any(n.endswith("未参与办理:申请人已在该部门登记") for n in notes)
    assert any(n.endswith("已办结承办部分") for n in notes)


async def test_a_denied_joint_order_need_not_wait_for_every_department(client, demo, login):
    order, _, agent = await _accepted(client, login, JOINT)
    denied = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/complete",
        json={"outcome": "denied", "reason": "经区民政局审核不符合条件"},
        headers=agent,
    )
    assert denied.status_code == 200, denied.text


async def test_a_promised_item_records_no_progress(client, demo, login):
    order, _, agent = await _accepted(client, login, PROMISED)
    assert "progress" not in order["nextActions"] and order["progress"] == []
    refused = await _step(
        client,
        agent,
        order["id"],
        step="sent",
        department="hrss",
        receiptUploadIds=[await upload_photo(client, agent)],
    )
    assert refused.status_code == 409 and refused.json()["code"] == "progress_not_tracked"


async def test_only_the_orders_own_agent_records_progress_and_only_once_accepted(
    client, demo, login
):
    resident = await login("resident1")
    order = (await submit(client, resident, ESCALATED)).json()
    agent = await taken_by_agent1a(client, login, order["id"])
    before = await _step(
        client,
        agent,
        order["id"],
        step="sent",
        department="hrss",
        receiptUploadIds=[await upload_photo(client, agent)],
    )
    assert before.status_code == 409  # still under review: nothing has been accepted yet
    await client.post(f"/mp/v1/agent/orders/{order['id']}/accept", json={}, headers=agent)
    other = await login("agent1b")
    stranger = await _step(
        client,
        other,
        order["id"],
        step="sent",
        department="hrss",
        receiptUploadIds=[await upload_photo(client, other)],
    )
    assert stranger.status_code in (403, 404)
    dispatcher = await login("dispatcher1a")
    staff = await client.post(
        f"/mp/v1/dispatch/orders/{order['id']}/progress",
        json={"step": "sent", "on": "2026-11-23", "department": "hrss"},
        headers=dispatcher,
    )
    assert staff.status_code in (403, 404, 405)
    detail = (await client.get(f"/mp/v1/agent/orders/{order['id']}", headers=agent)).json()
    assert detail["progress"] == []
