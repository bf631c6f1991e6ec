"""A complaint's photos and a letter are evidence: the clean-up of unattached uploads leaves
them, the town's staff can open them, no order can take them, and the retention job
removes them (and a complainant's recorded contact) once the complaint has been closed for
DAIBAN_RETENTION_ORDER_FILES_DAYS."""

from __future__ import annotations

from sqlalchemy import select

from app.models import Complaint
from app.retention.run import run_retention
from app.uploads.service import cleanup_unattached
from tests.factories import agent_id, delivered, submit, upload_photo
from tests.ratings.test_complaint_channels import STRANGER_ID, _complaint_photo


async def test_a_complaints_photo_outlives_the_clean_up_and_only_the_town_opens_it(
    client, demo, login, ctx, clock
):
    resident = await login("resident2")
    order = (await submit(client, resident)).json()
    photo = await _complaint_photo(client, resident)
    loose = await upload_photo(client, resident)  # never used: the clean-up's to remove
    made = await client.post(
        "/mp/v1/complaints",
        json={"orderId": order["id"], "text": "代办员态度不好", "uploadIds": [photo]},
        headers=resident,
    )
    assert made.status_code == 201, made.text

    clock.advance(hours=ctx.settings.storage.unattached_upload_ttl_hours + 1)
    assert await cleanup_unattached(ctx) == 1
    resident = await login("resident2")
    assert (await client.get(f"/mp/v1/uploads/{loose}", headers=resident)).status_code == 404
    for who in ("resident2", "dispatcher2a", "admin"):
        opened = await client.get(f"/mp/v1/uploads/{photo}/url", headers=await login(who))
        assert opened.status_code == 200, (who, opened.text)
    other_town = await client.get(
        f"/mp/v1/uploads/{photo}/url", headers=await login("dispatcher1a")
    )
    assert other_town.status_code == 404

    # Kept for the complaint, it cannot become an order's material as well.
    reused = await client.post(
        "/mp/v1/orders",
        json={"itemCode": "RS-0009", "materials": {"id_card": [photo]}},
        headers={**resident, "Idempotency-Key": "tap-reuse-complaint-photo"},
    )
    assert reused.status_code == 422
    assert "投诉" in reused.json()["errors"][0]["message"]


async def test_a_closed_complaints_files_and_contact_are_removed_after_the_retention_time(
    client, demo, login, ctx, clock
):
    dispatcher = await login("dispatcher2a")
    letter = await _complaint_photo(client, dispatcher)
    made = await client.post(
        "/mp/v1/dispatch/complaints",
        json={
            "channel": "letter",
            "idNumber": STRANGER_ID,
            "phone": "13906321234",
            "name": "赵大爷",
            "agentId": await agent_id(client, dispatcher, "吴秀芳"),
            "text": "来信反映代办员多次未按约定上门",
            "uploadIds": [letter],
        },
        headers=dispatcher,
    )
    assert made.status_code == 201, made.text
    path = f"/mp/v1/dispatch/complaints/{made.json()['id']}"
    answered = await client.post(
        f"{path}/answer",
        json={"answer": "已约谈代办员并上门致歉", "answeredVia": "phone"},
        headers=dispatcher,
    )
    assert answered.status_code == 200, answered.text
    closed = await client.post(f"{path}/feedback", json={"resolved": True}, headers=dispatcher)
    assert closed.status_code == 200, closed.text

    # Not yet: the complaint closed less than the retention time ago.
    clock.advance(days=ctx.settings.retention.order_files_days - 1)
    outcome = await run_retention(ctx)
    assert (outcome.case_files, outcome.complaint_contacts) == (0, 0)
    clock.advance(days=2)
    outcome = await run_retention(ctx)
    assert (outcome.case_files, outcome.complaint_contacts) == (1, 1)
    gone = await client.get(f"/mp/v1/uploads/{letter}/url", headers=await login("dispatcher2a"))
    assert gone.status_code == 410 and gone.json()["code"] == "file_removed"
    complaint = await ctx.db.run_read(
        lambda s: s.scalar(select(Complaint).where(Complaint.id == made.json()["id"]))
    )
    assert complaint.contact_name is None and complaint.contact_phone_enc is None
    assert complaint.contact_id_number_enc is None and complaint.contact_id_number_hash is None
    assert complaint.text == "来信反映代办员多次未按约定上门"  # the complaint itself stays
    again = await run_retention(ctx)
    assert (again.case_files, again.complaint_contacts) == (0, 0)


async def test_an_appeals_evidence_outlives_the_clean_up_and_the_district_opens_it(
    client, demo, login, ctx, clock
):
    order_id = await delivered(client, login)
    rated = await client.post(
        f"/mp/v1/orders/{order_id}/rating", json={"grade": 1}, headers=await login("resident2")
    )
    assert rated.status_code in (200, 201), rated.text
    dispatcher = await login("dispatcher2a")
    evidence = await upload_photo(client, dispatcher)
    ratings = (await client.get("/mp/v1/dispatch/ratings", headers=dispatcher)).json()
    rating_id = next(r["id"] for r in ratings if r["orderId"] == order_id)
    appealed = await client.post(
        f"/mp/v1/dispatch/ratings/{rating_id}/appeal",
        json={
            "reason": "malicious",
            "evidence": "通话录音截图",
            "evidenceUploadIds": [evidence],
        },
        headers=dispatcher,
    )
    assert appealed.status_code == 201, appealed.text
    clock.advance(hours=ctx.settings.storage.unattached_upload_ttl_hours + 1)
    await cleanup_unattached(ctx)
    for who, status in (("admin", 200), ("dispatcher2a", 200), ("dispatcher1a", 404)):
        opened = await client.get(f"/mp/v1/uploads/{evidence}/url", headers=await login(who))
        assert opened.status_code == status, (who, opened.text)
