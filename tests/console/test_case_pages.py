"""The dispatcher's cases on the console: a complaint answered by its deadline, a bad
rating's case verified and answered, an appeal against a rating; another town sees none."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.demo import demo_id_number
from app.models import AuditEntry, Complaint, Rectification
from tests.console.signing_in import form, sign_in
from tests.factories import delivered, submit
from tests.images import jpeg


async def _complaint(client, login) -> dict:
    order_id = (await submit(client, await login("resident2"))).json()["id"]
    made = await client.post(
        "/mp/v1/complaints",
        json={"orderId": order_id, "text": "代办员电话一直打不通"},
        headers=await login("resident2"),
    )
    assert made.status_code == 201, made.text
    return made.json()


async def test_a_complaint_is_answered_from_the_console_with_its_deadline_shown(
    client, demo, login, ctx
):
    complaint = await _complaint(client, login)
    csrf = await sign_in(client, await login("dispatcher2a"))
    cases = (await client.get("/console/cases")).text
    assert "代办员电话一直打不通" in cases and "投诉（1）" in cases
    assert "2026-11-24 24:00" in cases  # the end of the next day, Shanghai time

    page = f"/console/cases/complaints/{complaint['id']}"
    empty = await client.post(f"{page}/answer", data=form(csrf, answer=""))
    assert empty.status_code == 400
    answered = await client.post(f"{page}/answer", data=form(csrf, answer="已调整值班电话，请放心"))
    assert answered.status_code == 303 and answered.headers["location"] == f"{page}?done=answer"
    shown = (await client.get(answered.headers["location"])).text
    assert "已答复，群众会在小程序中收到。" in shown and "已调整值班电话，请放心" in shown
    assert 'action="/console/cases/complaints' not in shown  # no second answer offered
    mine = await client.get(
        f"/mp/v1/complaints/{complaint['id']}", headers=await login("resident2")
    )
    assert mine.json()["answer"] == "已调整值班电话，请放心"

    twice = await client.post(f"{page}/answer", data=form(csrf, answer="再答复一次"))
    assert twice.status_code == 409 and "该投诉已经答复过了" in twice.text
    status = await ctx.db.run_read(
        lambda s: s.scalar(select(Complaint.answer).where(Complaint.id == complaint["id"]))
    )
    assert status == "已调整值班电话，请放心"


async def test_a_bad_ratings_case_is_verified_then_answered(client, demo, login, ctx):
    order_id = await delivered(client, login)
    rated = await client.post(
        f"/mp/v1/orders/{order_id}/rating",
        json={"grade": 1, "tags": ["态度差"]},
        headers=await login("resident2"),
    )
    assert rated.status_code in (200, 201), rated.text
    csrf = await sign_in(client, await login("dispatcher2a"))
    cases = (await client.get("/console/cases")).text
    link = re.search(r'href="(/console/cases/rectifications/\d+)"', cases)
    assert link and "待核实" in cases
    reads = await ctx.db.run_read(
        lambda s: s.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "pii.read"))
    )
    page = (await client.get(link[1])).text
    assert "李建国" in page  # the resident, for the call-back
    after = await ctx.db.run_read(
        lambda s: s.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "pii.read"))
    )
    assert after == reads + 1  # and that read is audited

    verified = await client.post(f"{link[1]}/verify", data=form(csrf, note="已电话回访，情况属实"))
    assert verified.status_code == 303
    assert "已记录核实情况。" in (await client.get(verified.headers["location"])).text
    answered = await client.post(
        f"{link[1]}/answer", data=form(csrf, kind="fixed", answer="已对代办员批评教育")
    )
    assert answered.status_code == 303
    again = await client.post(f"{link[1]}/verify", data=form(csrf, note="再核实一次"))
    assert again.status_code == 409 and 'role="alert"' in again.text
    status = await ctx.db.run_read(lambda s: s.scalar(select(Rectification.status)))
    assert status == "answered"

    ratings = (await client.get("/console/ratings", params={"grade": 1})).text
    rating_form = re.search(r'action="(/console/ratings/\d+/appeal)"', ratings)
    assert rating_form
    appealed = await client.post(
        rating_form[1], data=form(csrf, reason="malicious", evidence="群众当面表示满意")
    )
    assert appealed.status_code == 303
    assert "群众当面表示满意" in (await client.get("/console/cases")).text

    # The rating counts in the satisfaction drawn by village and by agent.
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    figures = (await client.get("/console/figures", params=period)).text
    village = figures[figures.index('aria-label="各村满意率"') :]
    assert "西集村" in village and "0.0%（1 条）" in village
    assert "吴秀芳" in figures[figures.index('aria-label="各代办员满意率"') :]


async def test_another_towns_dispatcher_sees_no_case(client, demo, login):
    complaint = await _complaint(client, login)
    await sign_in(client, await login("dispatcher1a"))
    assert "没有投诉。" in (await client.get("/console/cases")).text
    page = await client.get(f"/console/cases/complaints/{complaint['id']}")
    assert page.status_code == 404
    assert (await client.get("/console/ratings?grade=9")).status_code == 422


# 登记电话/来访/信件投诉 (seed 002: 投诉可采用口头、电话或书面形式)


async def test_a_letter_is_recorded_from_the_console_and_its_answer_says_how_it_was_given(
    client, demo, login, ctx, clock
):
    """No account with that ID number: recorded with the letter's photo, shown with its
    channel, who received it and its deadline (the end of the next natural day by default);
    the answer asks how it was given."""
    # The service stores the photo itself, stamped by the file system's clock: the service's
    # clock reads the same here, as it does in production.
    clock.current = datetime.now(UTC)
    tomorrow = clock.current.astimezone(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
    csrf = await sign_in(client, await login("dispatcher2a"))
    cases = (await client.get("/console/cases")).text
    assert "登记电话/来访/信件投诉" in cases and "吴秀芳" in cases  # the town's agents to pick
    agent = re.search(r'<option value="(\d+)">吴秀芳', cases)
    assert agent
    letter = jpeg(800, 600)
    made = await client.post(
        "/console/cases/complaints",
        data=form(
            csrf,
            channel="letter",
            name="王德顺",
            phone="13806321234",
            id_number=demo_id_number("370406", "19410517", "001"),
            agent_id=agent[1],
            order_number="",
            text="来信反映：代办员多次不在岗\r\n请镇里核实",
        ),
        files={"photo": ("letter.jpg", letter, "image/jpeg")},
    )
    assert made.status_code == 303, made.text
    page_path = made.headers["location"].split("?")[0]
    page = (await client.get(made.headers["location"])).text
    assert f"已登记，请在 {tomorrow:%Y-%m-%d} 24:00 前答复。" in page
    assert "信件（杨春华受理）" in page and "王德顺" in page and "13806321234" in page
    assert "未注册小程序" in page and "照片" in page
    stored = await ctx.db.run_read(lambda s: s.scalars(select(Complaint)).one())
    assert stored.channel == "letter" and stored.resident_id is None and len(stored.upload_ids) == 1
    listed = (await client.get("/console/cases")).text
    assert "信件" in listed and "杨春华受理" in listed and "138****1234" in listed
    assert "13806321234" not in listed  # in full only on its own page (audited)

    no_way = await client.post(f"{page_path}/answer", data=form(csrf, answer="已核实处理"))
    assert no_way.status_code == 422 and "请选择答复方式" in no_way.text
    answered = await client.post(
        f"{page_path}/answer",
        data=form(csrf, answer="已核实处理", answered_via="phone", note="电话告知本人"),
    )
    assert answered.status_code == 303
    shown = (await client.get(answered.headers["location"])).text
    assert "已记录答复（电话回复）。" in shown and "电话回复：电话告知本人" in shown
    feedback = await client.post(
        f"{page_path}/feedback", data=form(csrf, resolved="true", note="群众表示满意")
    )
    assert feedback.status_code == 303
    assert "已解决：群众表示满意" in (await client.get(feedback.headers["location"])).text


async def test_a_phone_complaint_of_a_resident_with_the_app_is_answered_in_the_app(
    client, demo, login, ctx
):
    order = (await submit(client, await login("resident2"))).json()
    csrf = await sign_in(client, await login("dispatcher2a"))
    made = await client.post(
        "/console/cases/complaints",
        data=form(
            csrf,
            channel="phone",
            id_number=demo_id_number("370406", "19650817", "031"),
            order_number=order["number"],
            text="来电：提交后没人联系",
        ),
    )
    assert made.status_code == 303, made.text
    page = made.headers["location"].split("?")[0]
    shown = (await client.get(page)).text
    assert "李建国（使用小程序）" in shown and "电话（杨春华受理）" in shown
    assert 'name="answered_via"' not in shown  # the answer reaches them in the app
    answered = await client.post(f"{page}/answer", data=form(csrf, answer="已安排代办员联系"))
    assert answered.status_code == 303
    assert "已答复，群众会在小程序中收到。" in (await client.get(answered.headers["location"])).text
    mine = (await client.get("/mp/v1/complaints", headers=await login("resident2"))).json()
    assert mine[0]["answer"] == "已安排代办员联系" and mine[0]["channel"] == "phone"


async def test_a_complaint_against_another_towns_order_is_not_recorded_and_bad_forms_refused(
    client, demo, login, ctx
):
    order = (await submit(client, await login("resident2"))).json()  # 西集镇
    csrf = await sign_in(client, await login("dispatcher1a"))  # 店子镇
    other = await client.post(
        "/console/cases/complaints",
        data=form(csrf, channel="phone", anonymous="on", order_number=order["number"], text="慢"),
    )
    assert other.status_code == 404 and "没有编号为" in other.text
    for fields in (
        {"channel": "fax", "anonymous": "on", "text": "慢"},
        {"channel": "phone", "anonymous": "on", "text": "慢\x00"},
        {"channel": "phone", "anonymous": "on", "text": ""},
        {"channel": "phone", "text": "慢", "agent_id": "99999999999999999999"},
        {"channel": "phone", "text": "慢", "phone": "13800001111", "anonymous": "on"},
    ):
        refused = await client.post("/console/cases/complaints", data=form(csrf, **fields))
        assert refused.status_code in (400, 422), (fields, refused.status_code)
        assert 'role="alert"' in refused.text or "填写的内容有误" in refused.text
    assert await ctx.db.run_read(lambda s: s.scalar(select(func.count(Complaint.id)))) == 0
