"""The dispatcher's cases on the console: a complaint answered by its deadline, a bad
rating's case verified and answered, an appeal against a rating; another town sees none."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from app.models import AuditEntry, Complaint, Rectification
from tests.console.signing_in import form, sign_in
from tests.factories import delivered, submit


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
