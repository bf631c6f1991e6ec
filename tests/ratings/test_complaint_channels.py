"""Complaints by phone, in person or by letter (seed 002: 投诉可采用口头、电话或书面形式 …
当日或次日给予答复), recorded by the town's staff for the complainant, through the HTTP API
with injected time.

resident2 (李建国, 西集村, 西集镇) has the mini-program; 西集镇's dispatchers are 杨春华
(dispatcher2a) and 朱永明; its agents 吴秀芳 (A) and 郑海涛 (B) at 西集村. 店子镇 is the
other town (dispatcher1a).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from app.demo import demo_id_number
from app.models import Account, AuditEntry, Complaint, Notification
from tests.factories import agent_id, submit
from tests.images import jpeg
from tests.notifications.test_reminders import at, messages, tick

RESIDENT2_ID = demo_id_number("370406", "19650817", "031")
STRANGER_ID = demo_id_number("370406", "19410517", "001")  # no account anywhere
PATH = "/mp/v1/dispatch/complaints"


async def _order_of_resident2(client, login) -> dict:
    made = await submit(client, await login("resident2"))
    assert made.status_code == 201, made.text
    return made.json()


async def _complaint_photo(client, headers) -> int:
    """A photo of a letter, uploaded by the staff member with purpose complaint."""
    data = jpeg(800, 600)
    ticket = (
        await client.post(
            "/mp/v1/uploads",
            json={"purpose": "complaint", "contentType": "image/jpeg", "size": len(data)},
            headers=headers,
        )
    ).json()
    files = {ticket["fileField"]: ("letter.jpg", data, "image/jpeg")}
    assert (await client.post(ticket["url"], data=ticket["fields"], files=files)).status_code == 204
    done = await client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    return int(ticket["id"])


async def _audits(ctx, action: str) -> list[AuditEntry]:
    return await ctx.db.run_read(
        lambda s: list(
            s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )
    )


async def test_a_phone_complaint_is_due_at_the_end_of_the_next_natural_day_by_default(
    client, demo, login, ctx, clock
):
    """Recorded on a Friday afternoon: due at the end of Saturday (the seed's 次日), the
    district's admins told on Monday morning that it is late; answered, the resident gets
    the answer in the app and says it is resolved."""
    clock.current = at(2026, 11, 27, 15, 0)  # Friday
    order = await _order_of_resident2(client, login)
    dispatcher = await login("dispatcher2a")
    made = await client.post(
        PATH,
        json={
            "channel": "phone",
            "idNumber": RESIDENT2_ID,
            "orderNumber": order["number"],
            "text": "来电反映:代办员电话一直打不通",
        },
        headers=dispatcher,
    )
    assert made.status_code == 201, made.text
    complaint = made.json()
    assert complaint["dueAt"] == "2026-11-28T16:00:00Z"  # the end of Saturday 28 Nov
    assert complaint["channel"] == "phone" and complaint["channelName"] == "电话"
    assert complaint["receivedByName"] == "杨春华" and complaint["inApp"] is True
    assert complaint["residentName"] == "李建国" and complaint["agentName"] == "吴秀芳"
    assert complaint["orderId"] == order["id"] and complaint["contactPhone"] is None
    [told] = await messages(ctx, "dispatcher2b", "complaint")
    assert "11月28日24时" in told.body
    await tick(ctx, clock, at(2026, 11, 30, 9, 0))  # Monday morning: late
    assert len(await messages(ctx, "admin", "complaint_overdue")) == 1

    answered = await client.post(
        f"{PATH}/{complaint['id']}/answer",
        json={"answer": "已核实,代办员下乡,已调整值班电话"},
        headers=await login("dispatcher2a"),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["answeredOnTime"] is False and answered.json()["status"] == "answered"
    resident = await login("resident2")
    [note] = await messages(ctx, "resident2", "complaint_answered")
    assert "已调整值班电话" in note.body
    [mine] = (await client.get("/mp/v1/complaints", headers=resident)).json()
    assert mine["id"] == complaint["id"] and mine["answer"].startswith("已核实")
    assert mine["receivedByName"] is None  # staff-only fields stay out of the resident's view
    closed = await client.post(
        f"/mp/v1/complaints/{complaint['id']}/feedback", json={"resolved": True}, headers=resident
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


@pytest.mark.parametrize(
    ("settings", "due"),
    [("natural", "2026-10-01T16:00:00Z"), ("working", "2026-10-08T16:00:00Z")],
    indirect=["settings"],
)
async def test_next_day_is_natural_or_working_as_the_setting_says(client, demo, login, clock, due):
    """The last working day before National Day: the next natural day is 1 October, the
    next working day 8 October (DAIBAN_RATINGS_COMPLAINT_NEXT_DAY)."""
    clock.current = at(2026, 9, 30, 16, 0)
    dispatcher = await login("dispatcher2a")
    agent = await agent_id(client, dispatcher, "吴秀芳")
    made = await client.post(
        PATH,
        json={"channel": "in_person", "anonymous": True, "agentId": agent, "text": "服务态度生硬"},
        headers=dispatcher,
    )
    assert made.status_code == 201, made.text
    assert made.json()["dueAt"] == due
    in_app = await client.post(
        "/mp/v1/complaints",
        json={"agentId": agent, "text": "服务态度生硬"},
        headers=await login("resident2"),
    )
    assert in_app.json()["dueAt"] == due  # the same rule for a complaint in the app


@pytest.mark.parametrize("settings", ["working"], indirect=True)
async def test_next_working_day_a_phone_complaint_on_friday_is_due_on_monday(
    client, demo, login, clock
):
    clock.current = at(2026, 11, 27, 15, 0)  # Friday
    order = await _order_of_resident2(client, login)
    made = await client.post(
        PATH,
        json={"channel": "phone", "phone": "13700001111", "orderId": order["id"], "text": "没人管"},
        headers=await login("dispatcher2a"),
    )
    assert made.status_code == 201, made.text
    assert made.json()["dueAt"] == "2026-11-30T16:00:00Z"  # the end of Monday 30 Nov


async def test_a_letter_from_someone_without_an_account_needs_how_it_was_answered(
    client, demo, login, ctx
):
    """No account with that ID number: the contact is kept encrypted (never the plain ID
    number), shown masked in the list and in full on the detail (audited); the answer must
    say how it reached them, and the staff record whether it resolved the matter."""
    dispatcher = await login("dispatcher2a")
    photo = await _complaint_photo(client, dispatcher)
    agent = await agent_id(client, dispatcher, "郑海涛")
    made = await client.post(
        PATH,
        json={
            "channel": "letter",
            "idNumber": STRANGER_ID.lower(),
            "phone": "13806321234",
            "name": "王德顺",
            "agentId": agent,
            "text": "来信反映:代办员多次不在岗\n请镇里核实",
            "uploadIds": [photo],
        },
        headers=dispatcher,
    )
    assert made.status_code == 201, made.text
    complaint = made.json()
    assert complaint["inApp"] is False and complaint["residentName"] is None
    assert complaint["channelName"] == "信件" and complaint["uploadIds"] == [photo]
    row = await ctx.db.run_read(lambda s: s.get(Complaint, complaint["id"]))
    assert row.resident_id is None and row.contact_id_number_hash
    stored = " ".join(
        str(v) for v in (row.contact_id_number_enc, row.contact_phone_enc, row.text, row.upload_ids)
    )
    assert STRANGER_ID not in stored and "13806321234" not in stored

    [listed] = (await client.get(PATH, headers=dispatcher)).json()
    assert listed["contactPhone"] == "138****1234" and listed["contactName"] == "王**"
    assert listed["contactIdNumber"] == STRANGER_ID[:3] + "*" * 11 + STRANGER_ID[-4:]
    reads = len(await _audits(ctx, "pii.read"))
    detail = (await client.get(f"{PATH}/{complaint['id']}", headers=dispatcher)).json()
    assert detail["contactPhone"] == "13806321234" and detail["contactName"] == "王德顺"
    assert detail["contactIdNumber"] != STRANGER_ID  # never in full
    assert len(await _audits(ctx, "pii.read")) == reads + 1

    no_way = await client.post(
        f"{PATH}/{complaint['id']}/answer", json={"answer": "已核实处理"}, headers=dispatcher
    )
    assert no_way.status_code == 422
    assert no_way.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in no_way.json()["errors"]] == ["answeredVia"]
    answered = await client.post(
        f"{PATH}/{complaint['id']}/answer",
        json={"answer": "已核实处理", "answeredVia": "letter", "note": "12月1日寄出书面答复"},
        headers=dispatcher,
    )
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["status"] == "answered" and body["answeredViaName"] == "书面答复"
    assert body["answeredNote"] == "12月1日寄出书面答复"
    sent = await ctx.db.run_read(
        lambda s: s.scalar(
            select(func.count(Notification.id)).where(Notification.kind == "complaint_answered")
        )
    )
    assert sent == 0  # no one in the app to tell
    feedback = await client.post(
        f"{PATH}/{complaint['id']}/feedback",
        json={"resolved": False, "comment": "回访:群众仍不满意"},
        headers=dispatcher,
    )
    assert feedback.status_code == 200 and feedback.json()["status"] == "closed"
    assert feedback.json()["resolved"] is False


async def test_an_anonymous_complaint_is_answered_with_how_and_then_closed(client, demo, login):
    dispatcher = await login("dispatcher2a")
    agent = await agent_id(client, dispatcher, "吴秀芳")
    made = await client.post(
        PATH,
        json={"channel": "letter", "anonymous": True, "agentId": agent, "text": "匿名信:服务差"},
        headers=dispatcher,
    )
    assert made.status_code == 201, made.text
    assert made.json()["anonymous"] is True and made.json()["inApp"] is False
    path = f"{PATH}/{made.json()['id']}/answer"
    refused = await client.post(path, json={"answer": "已批评教育"}, headers=dispatcher)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "answeredVia"
    answered = await client.post(
        path, json={"answer": "已批评教育", "answeredVia": "notice"}, headers=dispatcher
    )
    assert answered.status_code == 200, answered.text
    assert (
        answered.json()["status"] == "closed" and answered.json()["answeredViaName"] == "公示答复"
    )


async def test_a_complaint_with_an_app_account_is_not_given_feedback_by_staff(client, demo, login):
    order = await _order_of_resident2(client, login)
    dispatcher = await login("dispatcher2a")
    made = await client.post(
        PATH,
        json={"channel": "phone", "idNumber": RESIDENT2_ID, "orderId": order["id"], "text": "慢"},
        headers=dispatcher,
    )
    path = f"{PATH}/{made.json()['id']}"
    await client.post(f"{path}/answer", json={"answer": "已催办"}, headers=dispatcher)
    staff = await client.post(f"{path}/feedback", json={"resolved": True}, headers=dispatcher)
    assert staff.status_code == 409  # the resident says it in the app


async def test_a_typed_phone_not_confirmed_by_wechat_does_not_reach_an_account(
    client, demo, login, ctx
):
    """resident2's phone was typed, not confirmed by WeChat: the answer must not go to
    whoever typed it. Once WeChat confirmed it, the phone finds the account."""
    order = await _order_of_resident2(client, login)
    dispatcher = await login("dispatcher2a")
    body = {"channel": "phone", "phone": "13706325678", "orderId": order["id"], "text": "慢"}
    first = await client.post(PATH, json=body, headers=dispatcher)
    assert first.status_code == 201 and first.json()["inApp"] is False
    await ctx.db.run_write(
        lambda s: s.execute(
            update(Account)
            .where(Account.openid == "dev_resident2")
            .values(phone_verified_at=at(2026, 11, 1))
        )
    )
    second = await client.post(PATH, json=body, headers=dispatcher)
    assert second.status_code == 201 and second.json()["inApp"] is True
    assert second.json()["residentName"] == "李建国"


async def test_a_dispatcher_cannot_record_one_against_an_order_or_agent_of_another_town(
    client, demo, login, ctx
):
    order = await _order_of_resident2(client, login)  # 西集镇
    theirs = await agent_id(client, await login("dispatcher2a"), "吴秀芳")
    other = await login("dispatcher1a")  # 店子镇
    mine = await agent_id(client, other, "刘桂兰")
    for about in (
        {"orderNumber": order["number"]},
        {"orderId": order["id"]},
        {"agentId": theirs},
        {"orderId": order["id"], "agentId": mine},
    ):
        refused = await client.post(
            PATH,
            json={"channel": "phone", "anonymous": True, "text": "不满意", **about},
            headers=other,
        )
        assert refused.status_code == 404, (about, refused.text)
    # Their own town's agent named with another town's order: not theirs either.
    mixed = await client.post(
        PATH,
        json={
            "channel": "phone",
            "anonymous": True,
            "text": "x",
            "orderId": order["id"],
            "agentId": mine,
        },
        headers=await login("dispatcher2a"),
    )
    assert mixed.status_code == 404
    assert await ctx.db.run_read(lambda s: s.scalar(select(func.count(Complaint.id)))) == 0
    # The district's admin may record one for any town of the district.
    admin = await client.post(
        "/mp/v1/admin/complaints",
        json={
            "channel": "letter",
            "anonymous": True,
            "text": "来信",
            "orderNumber": order["number"],
        },
        headers=await login("admin"),
    )
    assert admin.status_code == 201, admin.text
    assert admin.json()["receivedByName"] == "王立新"


async def test_the_lookup_by_id_number_is_audited_with_its_purpose(client, demo, login, ctx):
    dispatcher = await login("dispatcher2a")
    agent = await agent_id(client, dispatcher, "吴秀芳")
    made = await client.post(
        PATH,
        json={"channel": "in_person", "idNumber": RESIDENT2_ID, "agentId": agent, "text": "态度差"},
        headers=dispatcher,
    )
    assert made.status_code == 201, made.text
    [entry] = await _audits(ctx, "pii.search")
    assert entry.target == f"complaint:{made.json()['id']}" and entry.purpose == "登记来访投诉"
    assert entry.detail == {"by": ["id_number"], "found": True}
    assert RESIDENT2_ID not in str(entry.detail)
    anonymous = await client.post(
        PATH,
        json={"channel": "letter", "anonymous": True, "agentId": agent, "text": "匿名"},
        headers=dispatcher,
    )
    assert anonymous.status_code == 201
    assert len(await _audits(ctx, "pii.search")) == 1  # no personal data, nothing to audit


async def test_bad_input_gets_problem_details_never_500(client, demo, login, ctx):
    dispatcher = await login("dispatcher2a")
    agent = await agent_id(client, dispatcher, "吴秀芳")
    material = await _material_photo(client, dispatcher)
    good = {"channel": "phone", "anonymous": True, "agentId": agent, "text": "态度差"}
    bad = [
        ({"channel": "fax"}, "channel"),
        ({"channel": "mini_program"}, "channel"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "态度差\x00"}, "text"),
        ({"text": "长" * 1001}, "text"),
        ({"agentId": 2**64}, "agentId"),
        ({"agentId": 0}, "agentId"),
        ({"orderId": 2**63}, "orderId"),
        ({"orderNumber": "DB" + "9" * 40}, "orderNumber"),
        ({"anonymous": False}, "phone"),
        ({"anonymous": True, "phone": "13800001111"}, "anonymous"),
        ({"anonymous": False, "phone": "abc"}, "phone"),
        ({"anonymous": False, "idNumber": "370406194105170018"}, "idNumber"),
        ({"anonymous": False, "phone": "1380000\x001111"}, "phone"),
        ({"anonymous": False, "phone": "13800001111", "name": "王\x1b德顺"}, "name"),
        ({"agentId": None}, "orderNumber"),
        ({"uploadIds": [material]}, "uploadIds"),
        ({"uploadIds": [2**62]}, "uploadIds"),
        ({"uploadIds": [1] * 21}, "uploadIds"),
        ({"surprise": 1}, None),
    ]
    for change, field in bad:
        answer = await client.post(PATH, json={**good, **change}, headers=dispatcher)
        assert answer.status_code == 422, (change, answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in [e["field"] for e in answer.json()["errors"]], (change, answer.text)
    assert (await client.post(PATH, content=b"{", headers=dispatcher)).status_code == 400
    unknown_order = await client.post(
        PATH, json={**good, "agentId": None, "orderNumber": "DB20261123999999"}, headers=dispatcher
    )
    assert unknown_order.status_code == 404
    assert await ctx.db.run_read(lambda s: s.scalar(select(func.count(Complaint.id)))) == 0

    made = await client.post(PATH, json=good, headers=dispatcher)
    path = f"{PATH}/{made.json()['id']}"
    for body in (
        {"answer": "好", "answeredVia": "fax"},
        {"answer": "", "answeredVia": "phone"},
        {"answer": "好\x00", "answeredVia": "phone"},
        {"answer": "好", "answeredVia": "phone", "note": "x" * 501},
    ):
        refused = await client.post(f"{path}/answer", json=body, headers=dispatcher)
        assert refused.status_code == 422, (body, refused.text)
    assert (await client.get(f"{PATH}/{2**70}", headers=dispatcher)).status_code == 404
    assert (
        await client.post(f"{PATH}/{2**70}/answer", json={"answer": "好"}, headers=dispatcher)
    ).status_code == 404
    agent_user = await login("agent4a")
    assert (await client.post(PATH, json=good, headers=agent_user)).status_code == 403
    resident = await login("resident2")
    assert (await client.post(PATH, json=good, headers=resident)).status_code == 403


async def _material_photo(client, headers) -> int:
    from tests.factories import upload_photo

    return await upload_photo(client, headers)
