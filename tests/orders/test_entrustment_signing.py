"""The entrustment (委托书) signed on the phone: its text from the order, the signed PDF with
the names, the item and the text's hash, kept as the order's entrustment and downloadable,
once only and only before 受理; the signature must be the resident's own fresh PNG."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any

import httpx
from pypdf import PdfReader

from app.demo import demo_id_number
from app.security.pii import mask_id_number
from tests.dispatch.test_dispatch import _enter, _entry
from tests.factories import guide, submit, taken_by_agent1a, upload_photo
from tests.images import jpeg, signature_png
from tests.orders.test_slip import pdf_text
from tests.sounds import mp3
from tests.uploads.test_voice_notes import record

ID_NUMBER = demo_id_number("370406", "19480312", "022")  # resident1 张秀英
ITEM = "RS-0001"  # its guide asks for the entrustment (委托书) among its materials
TITLE = "帮办代办委托书"


async def upload_file(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    ctype: str = "image/png",
    purpose: str = "entrustment",
) -> int:
    ticket = (
        await client.post(
            "/mp/v1/uploads",
            json={"purpose": purpose, "contentType": ctype, "size": len(data)},
            headers=headers,
        )
    ).json()
    files = {ticket["fileField"]: ("signature.png", data, ctype)}
    posted = await client.post(ticket["url"], data=ticket["fields"], files=files)
    assert posted.status_code == 204, posted.text
    done = await client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    return int(ticket["id"])


async def to_sign(client: httpx.AsyncClient, resident: dict[str, str]) -> httpx.Response:
    """A request whose entrustment the resident will sign on the phone: every other required
    material photographed, the entrustment left empty."""
    materials = {
        m["code"]: [await upload_photo(client, resident)]
        for m in (await guide(client, ITEM))["materials"]
        if m["required"] and m["code"] != "entrustment"
    }
    return await client.post(
        "/mp/v1/orders",
        json={"itemCode": ITEM, "materials": materials, "signEntrustment": True},
        headers={**resident, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"},
    )


async def under_review(client: httpx.AsyncClient, login: Any) -> dict[str, Any]:
    resident = await login("resident1")
    submitted = await to_sign(client, resident)
    assert submitted.status_code == 201, submitted.text
    order = submitted.json()
    agent = await taken_by_agent1a(client, login, order["id"])
    return {**order, "resident": resident, "agent": agent}


async def sign(
    client: httpx.AsyncClient, order_id: int, headers: dict[str, str], signature: int
) -> httpx.Response:
    return await client.post(
        f"/mp/v1/orders/{order_id}/entrustment/sign",
        json={"signatureUploadId": signature},
        headers=headers,
    )


def _slots(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["code"]: s for s in detail["checklist"]}


async def test_the_entrustment_may_be_left_to_sign_only_when_the_resident_says_so(
    client, demo, login
):
    resident = await login("resident1")
    without = await client.post(
        "/mp/v1/orders",
        json={"itemCode": ITEM, "materials": {}},
        headers={**resident, "Idempotency-Key": "tap-no-flag"},
    )
    assert "materials.entrustment" in {e["field"] for e in without.json()["errors"]}
    submitted = await to_sign(client, resident)
    assert submitted.status_code == 201, submitted.text
    order = submitted.json()
    assert _slots(order)["entrustment"]["state"] == "empty"
    assert order["entrustment"] == {
        "uploadIds": [],
        "signed": False,
        "signedAt": None,
        "uploadId": None,
        "sha256": None,
    }
    # In the pool, nobody to entrust yet: read, but not signed.
    text = (await client.get(f"/mp/v1/orders/{order['id']}/entrustment", headers=resident)).json()
    assert text["canSign"] is False and "派单" in text["whyNot"]
    signature = await upload_file(client, resident, signature_png())
    early = await sign(client, order["id"], resident, signature)
    assert early.status_code == 409 and early.json()["code"] == "entrustment_no_agent"


async def test_the_text_names_who_entrusts_whom_with_what(client, demo, login):
    order = await under_review(client, login)
    answer = await client.get(f"/mp/v1/orders/{order['id']}/entrustment", headers=order["resident"])
    assert answer.status_code == 200, answer.text
    text = answer.json()
    lines = "\n".join(text["lines"])
    assert text["title"] == TITLE
    assert f"委托人:张秀英,身份证号:{mask_id_number(ID_NUMBER)}" in lines
    assert ID_NUMBER not in lines
    assert "受托人:刘桂兰,店子村便民服务站代办员" in lines
    assert f"代为办理“{order['itemName']}”事项(办件编号 {order['number']})" in lines
    assert "委托期限:自本委托书签署之日起,至本办件办结回交或终止办理之日止" in lines
    assert text["lines"][-1] == "签署日期:2026年11月23日"
    expected = hashlib.sha256("\n".join([TITLE, *text["lines"]]).encode()).hexdigest()
    assert text["sha256"] == expected
    assert text["signed"] is False and text["canSign"] is True and text["whyNot"] is None
    # The agent reads the same text; only the resident signs.
    seen = await client.get(
        f"/mp/v1/agent/orders/{order['id']}/entrustment", headers=order["agent"]
    )
    assert seen.status_code == 200
    assert seen.json()["lines"] == text["lines"] and seen.json()["canSign"] is False
    # Another agent of the village is not this order's agent; another resident sees nothing.
    other_agent = await client.get(
        f"/mp/v1/agent/orders/{order['id']}/entrustment", headers=await login("agent1b")
    )
    assert other_agent.status_code == 403
    stranger = await client.get(
        f"/mp/v1/orders/{order['id']}/entrustment", headers=await login("resident2")
    )
    assert stranger.status_code == 404


async def test_signing_makes_the_pdf_that_becomes_the_orders_entrustment(client, demo, login):
    order = await under_review(client, login)
    resident, agent = order["resident"], order["agent"]
    text = (await client.get(f"/mp/v1/orders/{order['id']}/entrustment", headers=resident)).json()
    signature = await upload_file(client, resident, signature_png())
    signed = await sign(client, order["id"], resident, signature)
    assert signed.status_code == 200, signed.text
    view = signed.json()
    assert view["signed"] is True and view["canSign"] is False
    assert view["lines"] == text["lines"] and view["sha256"] == text["sha256"]
    pdf_id = view["uploadId"]

    # The PDF: the names, the item, the order and the hash of the text, with the signature.
    links = await client.get(f"/mp/v1/uploads/{pdf_id}/url", headers=agent)
    assert links.status_code == 200, links.text
    served = await client.get(links.json()["url"])
    assert served.headers["content-type"] == "application/pdf"
    content = pdf_text(served.content)
    for expected in (TITLE, "张秀英", "刘桂兰", order["itemName"], order["number"], view["sha256"]):
        assert expected in content, expected
    assert mask_id_number(ID_NUMBER) in content and ID_NUMBER not in content
    assert "文本校验码" in content and "委托人(签名)" in content

    assert len(PdfReader(io.BytesIO(served.content)).pages[0].images) == 1  # the signature

    # The order's entrustment: its material, its files, its timeline.
    detail = (await client.get(f"/mp/v1/agent/orders/{order['id']}", headers=agent)).json()
    assert _slots(detail)["entrustment"]["uploadIds"] == [pdf_id]
    assert _slots(detail)["entrustment"]["state"] == "submitted"
    assert detail["entrustment"]["signed"] is True
    assert detail["entrustment"]["uploadIds"] == [pdf_id]
    assert detail["entrustment"]["sha256"] == view["sha256"]
    event = detail["timeline"][-1]
    assert event["action"] == "sign_entrustment" and event["actionName"] == "签署委托书"
    assert event["note"] == "委托人已在手机上签署委托书" and event["actorRole"] == "resident"
    assert detail["status"] == "reviewing"  # not a move
    # The resident downloads it too; another resident does not.
    assert (await client.get(f"/mp/v1/uploads/{pdf_id}/url", headers=resident)).status_code == 200
    other = await client.get(f"/mp/v1/uploads/{pdf_id}/url", headers=await login("resident2"))
    assert other.status_code == 404

    # Once only; and with the entrustment in, the agent accepts (受理).
    again = await sign(
        client, order["id"], resident, await upload_file(client, resident, signature_png())
    )
    assert again.status_code == 409 and again.json()["code"] == "already_signed"
    accepted = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/accept", json={}, headers=agent
    )
    assert accepted.status_code == 200, accepted.text
    after = await client.get(f"/mp/v1/orders/{order['id']}/entrustment", headers=resident)
    assert after.json()["signed"] is True and after.json()["uploadId"] == pdf_id


async def test_the_signature_must_be_the_residents_own_fresh_png(client, demo, login):
    order = await under_review(client, login)
    resident = order["resident"]

    async def refused(signature: int, code: str = "signature_invalid") -> None:
        answer = await sign(client, order["id"], resident, signature)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == code
        if code == "signature_invalid":
            assert [e["field"] for e in answer.json()["errors"]] == ["signatureUploadId"]

    await refused(await upload_file(client, resident, jpeg(600, 300), "image/jpeg"))
    await refused(await upload_file(client, resident, signature_png(), purpose="material"))
    await refused(await upload_file(client, await login("resident2"), signature_png()))
    await refused(await upload_file(client, resident, signature_png(4000, 240)))  # a line
    await refused(await upload_file(client, resident, signature_png(blank=True)), "signature_blank")
    await refused(999_999)
    # Nothing was signed by any of these.
    detail = (await client.get(f"/mp/v1/orders/{order['id']}", headers=resident)).json()
    assert detail["entrustment"]["signed"] is False
    assert _slots(detail)["entrustment"]["state"] == "empty"


async def test_no_one_signs_another_residents_order(client, demo, login):
    order = await under_review(client, login)
    other = await login("resident2")
    answer = await sign(
        client, order["id"], other, await upload_file(client, other, signature_png())
    )
    assert answer.status_code == 404
    agent = await client.post(
        f"/mp/v1/orders/{order['id']}/entrustment/sign",
        json={"signatureUploadId": 1},
        headers=order["agent"],
    )
    assert agent.status_code == 403


async def test_after_acceptance_the_entrustment_is_no_longer_signed_on_the_phone(
    client, demo, login
):
    resident = await login("resident1")
    submitted = await submit(client, resident)  # a photo of the paper form, as ever
    assert submitted.status_code == 201, submitted.text
    order_id = submitted.json()["id"]
    agent = await taken_by_agent1a(client, login, order_id)
    accepted = await client.post(f"/mp/v1/agent/orders/{order_id}/accept", json={}, headers=agent)
    assert accepted.status_code == 200, accepted.text
    text = (await client.get(f"/mp/v1/orders/{order_id}/entrustment", headers=resident)).json()
    assert text["canSign"] is False and text["signed"] is False
    late = await sign(
        client, order_id, resident, await upload_file(client, resident, signature_png())
    )
    assert late.status_code == 409 and late.json()["code"] == "entrustment_closed"


async def test_signing_what_the_notice_asked_for_returns_the_order_to_review(client, demo, login):
    order = await under_review(client, login)
    notice = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/request-supplement",
        json={"missing": [{"code": "entrustment", "reason": "请在手机上签署委托书"}]},
        headers=order["agent"],
    )
    assert notice.status_code == 200, notice.text
    assert notice.json()["status"] == "supplement_required"
    resident = order["resident"]
    signed = await sign(
        client, order["id"], resident, await upload_file(client, resident, signature_png())
    )
    assert signed.status_code == 200, signed.text
    detail = (await client.get(f"/mp/v1/orders/{order['id']}", headers=resident)).json()
    assert detail["status"] == "reviewing"
    assert [e["action"] for e in detail["timeline"][-2:]] == ["sign_entrustment", "supplement"]


async def test_an_agents_desk_entry_brings_the_paper_form_and_may_bring_voice_notes(
    client, demo, login
):
    """代为委托: the resident signed the paper form at the desk; it cannot be left to sign on
    a phone they may not have. A voice note the agent recorded goes with it."""

    agent = await login("agent1a")
    refused = await _enter(client, agent, await _entry(client, agent, signEntrustment=True))
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["signEntrustment"]
    voice, done = await record(client, agent, mp3(4))
    assert done.status_code == 200, done.text
    entered = await _enter(client, agent, await _entry(client, agent, voiceNoteUploadIds=[voice]))
    assert entered.status_code == 201, entered.text
    assert [n["uploadId"] for n in entered.json()["voiceNotes"]] == [voice]
    assert len(entered.json()["entrustment"]["uploadIds"]) == 1  # the paper form's photo
