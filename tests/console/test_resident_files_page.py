"""The order page shows what the resident brought beyond photos: a material that came from
their wallet (材料夹, with when and by whom it was first verified), their voice notes, and
the entrustment they signed on the phone with its text's hash."""

from __future__ import annotations

import uuid

from tests.console.signing_in import sign_in
from tests.factories import agent_id, guide, upload_photo
from tests.images import signature_png
from tests.orders.test_entrustment_signing import sign, upload_file
from tests.orders.test_slip import accepted_order
from tests.sounds import mp3
from tests.uploads.test_voice_notes import record


async def test_the_order_page_shows_wallet_copies_voice_notes_and_the_signed_entrustment(
    client, demo, login
):
    first = await accepted_order(client, login)  # resident1's, accepted by 刘桂兰
    resident = first["resident"]
    item = await client.post(
        "/mp/v1/me/wallet",
        json={"orderId": first["id"], "material": "id_card", "consent": True},
        headers=resident,
    )
    assert item.status_code == 201, item.text
    used = await client.post(f"/mp/v1/me/wallet/{item.json()['id']}/use", headers=resident)
    id_card = used.json()["uploadIds"]
    voice, answer = await record(client, resident, mp3(4))
    assert answer.status_code == 200, answer.text
    materials = {}
    for m in (await guide(client, "RS-0001"))["materials"]:
        if m["required"] and m["code"] != "entrustment":
            materials[m["code"]] = (
                id_card if m["code"] == "id_card" else [await upload_photo(client, resident)]
            )
    made = await client.post(
        "/mp/v1/orders",
        json={
            "itemCode": "RS-0001",
            "materials": materials,
            "voiceNoteUploadIds": [voice],
            "signEntrustment": True,
        },
        headers={**resident, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"},
    )
    assert made.status_code == 201, made.text
    order = made.json()
    phone = await login("dispatcher1a")
    assigned = await client.post(
        f"/mp/v1/dispatch/orders/{order['id']}/assign",
        json={"agentId": await agent_id(client, phone, "刘桂兰")},
        headers=phone,
    )
    assert assigned.status_code == 200, assigned.text
    signature = await upload_file(client, resident, signature_png())
    signed = await sign(client, order["id"], resident, signature)
    assert signed.status_code == 200, signed.text

    await sign_in(client, phone)
    page = (await client.get(f"/console/orders/{order['id']}")).text
    assert "来自材料夹" in page and "由刘桂兰核验" in page
    assert "语音留言" in page and f"/console/orders/{order['id']}/uploads/{voice}" in page
    assert "在手机上签署" in page and signed.json()["sha256"] in page
