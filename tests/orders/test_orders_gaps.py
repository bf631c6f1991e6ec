"""容缺受理: the materials an item's guide marks `may_follow` are submitted and accepted
missing; they follow while the clock runs, and the order is not approved without them. A
material its guide does not mark must be there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import yaml

from app.demo import CATALOGUE_FILE
from tests.conftest import Clock
from tests.factories import taken_by_agent1a, upload_photo

ITEM = "RS-0001"  # id_card, hukou_book, application_form, entrustment: all required


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai


async def _mark_hukou_book(client, login, may_follow: bool = True) -> None:
    """The guide of ITEM with its household register marked (or not) as one that may follow;
    nothing else of the guide changes."""
    body = next(i for i in yaml.safe_load(CATALOGUE_FILE.read_text())["items"] if i["code"] == ITEM)
    for material in body["materials"]:
        material["may_follow"] = material["code"] == "hukou_book" and may_follow
    edited = await client.put(
        f"/mp/v1/admin/catalogue/items/{ITEM}", json=body, headers=await login("admin")
    )
    assert edited.status_code == 200, edited.text
    marks = {m["code"]: m["mayFollow"] for m in edited.json()["materials"]}
    assert marks["hukou_book"] is may_follow and edited.json()["allowAcceptWithGaps"] is may_follow


async def _post(client, resident, materials):
    return await client.post(
        "/mp/v1/orders",
        json={"itemCode": ITEM, "materials": materials},
        headers={**resident, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"},
    )


async def _essentials(client, resident) -> dict[str, list[int]]:
    """A photo for each material that can never follow (容缺 or not)."""
    return {
        code: [await upload_photo(client, resident)]
        for code in ("id_card", "application_form", "entrustment")
    }


def _slots(detail) -> dict[str, dict]:
    return {s["code"]: s for s in detail["checklist"]}


async def test_minor_materials_may_follow_but_the_essential_ones_may_not(client, demo, login):
    await _mark_hukou_book(client, login)
    resident = await login("resident1")
    photo = await upload_photo(client, resident)
    nothing = await _post(client, resident, {"application_form": [photo]})
    assert nothing.status_code == 422, nothing.text
    # The applicant's ID and the entrustment cannot follow; the household register can.
    fields = {e["field"] for e in nothing.json()["errors"]}
    assert fields == {"materials.id_card", "materials.entrustment"}
    essentials = await _essentials(client, resident)
    submitted = await _post(client, resident, essentials)
    assert submitted.status_code == 201, submitted.text
    slots = _slots(submitted.json())
    assert slots["hukou_book"]["mayFollow"] is True and slots["hukou_book"]["state"] == "empty"
    assert not any(slots[c]["mayFollow"] for c in essentials)


async def test_accepted_with_a_gap_then_supplemented_while_the_clock_runs(
    client, demo, login, clock
):
    await _mark_hukou_book(client, login)
    resident = await login("resident1")
    essentials = await _essentials(client, resident)
    order_id = (await _post(client, resident, essentials)).json()["id"]
    agent = await taken_by_agent1a(client, login, order_id)
    accepted = await client.post(f"/mp/v1/agent/orders/{order_id}/accept", json={}, headers=agent)
    assert accepted.status_code == 200, accepted.text
    detail = accepted.json()
    assert detail["status"] == "accepted" and detail["dueAt"] == "2026-11-30T16:00:00Z"
    gap = _slots(detail)["hukou_book"]
    assert (gap["state"], gap["reason"]) == ("missing", "容缺受理,请在办结前补正")
    assert detail["acceptanceSlip"]["materialsToFollow"] == ["居民户口簿"]
    assert detail["timeline"][-1]["data"]["gaps"] == [{"code": "hukou_book", "name": "居民户口簿"}]
    mine = (await client.get(f"/mp/v1/orders/{order_id}", headers=resident)).json()
    assert "supplement" in mine["nextActions"]

    not_yet = await client.post(
        f"/mp/v1/agent/orders/{order_id}/complete", json={"outcome": "approved"}, headers=agent
    )
    assert not_yet.status_code == 409, not_yet.text
    assert not_yet.json()["code"] == "materials_outstanding"
    assert not_yet.json()["errors"] == [
        {"field": "materials.hukou_book", "message": "居民户口簿尚未补正"}
    ]

    clock.advance(days=1)
    resident, agent = await login("resident1"), await login("agent1a")
    wrong = await client.post(
        f"/mp/v1/orders/{order_id}/supplement",
        json={"materials": {"id_card": [await upload_photo(client, resident)]}},
        headers=resident,
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "materials.id_card"
    page = await upload_photo(client, resident)
    sent = await client.post(
        f"/mp/v1/orders/{order_id}/supplement",
        json={"materials": {"hukou_book": [page]}},
        headers=resident,
    )
    assert sent.status_code == 200, sent.text
    after = sent.json()
    assert after["status"] == "accepted" and after["dueAt"] == detail["dueAt"]  # clock ran on
    assert after["remainingWorkingDays"] == 4
    assert _slots(after)["hukou_book"]["state"] == "submitted"
    assert _slots(after)["hukou_book"]["uploadIds"] == [page]
    assert after["timeline"][-1]["action"] == "supplement"
    assert after["timeline"][-1]["data"] == {"codes": ["hukou_book"]}
    assert "supplement" not in after["nextActions"]
    # The slip keeps what was said on the day of acceptance.
    assert after["acceptanceSlip"]["materialsToFollow"] == ["居民户口簿"]
    inbox = (await client.get("/mp/v1/me/messages", headers=agent)).json()
    assert inbox["items"][0]["title"] == "容缺材料已补正"

    again = await client.post(
        f"/mp/v1/orders/{order_id}/supplement",
        json={"materials": {"hukou_book": [await upload_photo(client, resident)]}},
        headers=resident,
    )
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"
    done = await client.post(
        f"/mp/v1/agent/orders/{order_id}/complete", json={"outcome": "approved"}, headers=agent
    )
    assert done.status_code == 200, done.text


async def test_without_gaps_allowed_acceptance_needs_every_required_material(client, demo, login):
    """The same item with no material marked: nothing may follow, at submission or acceptance."""
    await _mark_hukou_book(client, login, may_follow=False)
    resident = await login("resident1")
    essentials = await _essentials(client, resident)
    refused = await _post(client, resident, essentials)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["materials.hukou_book"]


async def test_a_supplement_notice_need_not_list_what_may_follow(client, demo, login):
    await _mark_hukou_book(client, login)
    resident = await login("resident1")
    essentials = await _essentials(client, resident)
    order_id = (await _post(client, resident, essentials)).json()["id"]
    agent = await taken_by_agent1a(client, login, order_id)
    asked = await client.post(
        f"/mp/v1/agent/orders/{order_id}/request-supplement",
        json={"missing": [{"code": "id_card", "reason": "照片模糊"}]},
        headers=agent,
    )
    assert asked.status_code == 200, asked.text
    sent = await client.post(
        f"/mp/v1/orders/{order_id}/supplement",
        json={"materials": {"id_card": [await upload_photo(client, resident)]}},
        headers=resident,
    )
    assert sent.status_code == 200 and sent.json()["status"] == "reviewing", sent.text
    accepted = await client.post(f"/mp/v1/agent/orders/{order_id}/accept", json={}, headers=agent)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["acceptanceSlip"]["materialsToFollow"] == ["居民户口簿"]


async def test_a_marked_hukou_book_may_follow_and_an_unmarked_one_may_not(client, demo, login):
    """As shipped, RS-0001 marks the household register: accepted without it (容缺). Once
    the guide no longer marks it, a new order cannot go without it, while the order already
    submitted keeps the guide it was submitted under."""
    resident = await login("resident1")
    first = await _post(client, resident, await _essentials(client, resident))
    assert first.status_code == 201, first.text
    assert _slots(first.json())["hukou_book"]["mayFollow"] is True

    await _mark_hukou_book(client, login, may_follow=False)
    refused = await _post(client, resident, await _essentials(client, resident))
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["materials.hukou_book"]
    complete = await _post(
        client,
        resident,
        {
            **await _essentials(client, resident),
            "hukou_book": [await upload_photo(client, resident)],
        },
    )
    assert complete.status_code == 201, complete.text
    assert _slots(complete.json())["hukou_book"]["mayFollow"] is False

    agent = await taken_by_agent1a(client, login, first.json()["id"])
    accepted = await client.post(
        f"/mp/v1/agent/orders/{first.json()['id']}/accept", json={}, headers=agent
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["acceptanceSlip"]["materialsToFollow"] == ["居民户口簿"]
    assert _slots(accepted.json())["hukou_book"]["state"] == "missing"
