"""The dispatcher's agents and figures pages: duty, leave and hand-over through the same
rules as the API; the period's figures, charts, ledgers and an audited export."""

from __future__ import annotations

import io
from datetime import date

import openpyxl
from sqlalchemy import func, select

from app.models import Account, AuditEntry, Order
from tests.console.signing_in import form, sign_in
from tests.factories import agent_id, submit


async def test_leave_and_hand_over_from_the_agents_page(client, demo, login, ctx):
    phone = await login("dispatcher1a")
    csrf = await sign_in(client, phone)
    liu, wang = [await agent_id(client, phone, n) for n in ("刘桂兰", "王建军")]
    order = (await submit(client, await login("resident1"))).json()
    await client.post(f"/console/orders/{order['id']}/assign", data=form(csrf, agent_id=str(liu)))

    page = (await client.get("/console/agents")).text
    assert "刘桂兰（A岗）" in page and f'/console/orders?agent={liu}">1</a>' in page

    past = await client.post(
        f"/console/agents/{liu}/duty", data=form(csrf, status="on_leave", leave_until="2026-11-01")
    )
    assert past.status_code == 422 and "请填写请假的最后一天" in past.text
    no_day = await client.post(
        f"/console/agents/{liu}/duty", data=form(csrf, status="on_leave", leave_until="2026-02-30")
    )
    assert no_day.status_code == 422
    leave = await client.post(
        f"/console/agents/{liu}/duty", data=form(csrf, status="on_leave", leave_until="2026-11-27")
    )
    assert leave.status_code == 303
    shown = (await client.get(leave.headers["location"])).text
    assert "已更新在岗状态。" in shown and "请假至2026年11月27日" in shown

    handed = await client.post(
        f"/console/agents/{liu}/hand-over", data=form(csrf, to_agent_id="", reason="")
    )
    assert handed.status_code == 303, handed.text
    holder = await ctx.db.run_read(
        lambda s: s.scalar(select(Order.agent_id).where(Order.id == order["id"]))
    )
    assert holder == wang
    back = await client.post(
        f"/console/agents/{wang}/hand-over",
        data=form(csrf, to_agent_id="9999999999999999", reason=""),
    )
    assert back.status_code == 422


async def test_another_towns_agent_cannot_be_changed(client, demo, login, ctx):
    csrf = await sign_in(client, await login("dispatcher2a"))
    liu = await agent_id(client, await login("dispatcher1a"), "刘桂兰")
    refused = await client.post(f"/console/agents/{liu}/duty", data=form(csrf, status="off_duty"))
    assert refused.status_code == 404
    on_duty = await ctx.db.run_read(
        lambda s: s.scalar(select(Account.on_duty).where(Account.id == liu))
    )
    assert on_duty is True


async def test_figures_of_a_period_with_charts_and_an_audited_export(client, demo, login, ctx):
    await submit(client, await login("resident2"))
    await submit(client, await login("resident2"), "RS-0002")
    await sign_in(client, await login("dispatcher2a"))
    page = await client.get("/console/figures", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert page.status_code == 200
    text = page.text
    assert "2026年11月1日至2026年11月30日" in text
    assert '<span class="n">2</span><span>受理（收件）</span>' in text
    assert 'aria-label="每周收件与办结柱状图"' in text and "办理最多的事项" in text
    # Sunday 1 November alone, four whole weeks, Monday 30 November alone
    assert text.count('class="received"') == 6

    wrong = await client.get("/console/figures", params={"from": "2026-11-30", "to": "2026-11-01"})
    assert wrong.status_code == 422 and "<title>" in wrong.text

    before = await ctx.db.run_read(lambda s: s.scalar(select(func.count(AuditEntry.id))))
    export = await client.get(
        "/console/figures/export", params={"from": "2026-11-01", "to": "2026-11-30", "status": ""}
    )
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(export.content)).active
    assert sheet.max_row == 3  # a header and the two orders
    other_agent = await agent_id(client, await login("dispatcher2a"), "郑海涛")
    none = await client.get(
        "/console/figures/export",
        params={"from": "2026-11-01", "to": "2026-11-30", "village": "", "agent": str(other_agent)},
    )
    assert openpyxl.load_workbook(io.BytesIO(none.content)).active.max_row == 1  # B post: none
    after = await ctx.db.run_read(lambda s: s.scalar(select(func.count(AuditEntry.id))))
    assert after == before + 2


async def test_the_town_switches_to_automatic_dispatch(client, demo, login, ctx):
    csrf = await sign_in(client, await login("dispatcher1a"))
    page = (await client.get("/console/agents")).text
    assert 'value="false" checked' in page  # 店子镇 dispatches by hand
    switched = await client.post("/console/agents/rule", data=form(csrf, auto_dispatch="true"))
    assert switched.status_code == 303
    order = (await submit(client, await login("resident1"))).json()
    status = await ctx.db.run_read(
        lambda s: s.scalar(select(Order.status).where(Order.id == order["id"]))
    )
    assert status == "assigned"  # straight to 店子村's A post


async def test_only_an_admin_exports_in_full_and_only_for_a_purpose(client, demo, login, ctx):
    await submit(client, await login("resident2"))
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    await sign_in(client, await login("dispatcher2a"))
    refused = await client.get("/console/figures/export", params={**period, "unmasked": "true"})
    assert refused.status_code == 403 and "只有管理员" in refused.text
    await sign_in(client, await login("admin"))
    no_purpose = await client.get("/console/figures/export", params={**period, "unmasked": "true"})
    assert no_purpose.status_code == 422 and "须写明用途" in no_purpose.text
    full = await client.get(
        "/console/figures/export",
        params={**period, "unmasked": "true", "purpose": "民政局核对低保对象"},
    )
    assert full.status_code == 200
    audited = await ctx.db.run_read(
        lambda s: s.scalars(
            select(AuditEntry.purpose).where(AuditEntry.action == "orders.export_unmasked")
        ).all()
    )
    assert audited == ["民政局核对低保对象"]


def test_a_years_weeks_reach_its_last_day():
    from console.figures import weeks

    covered = weeks(date(2025, 12, 28), date(2026, 12, 29))
    assert covered[0] == (date(2025, 12, 28), date(2025, 12, 28))
    assert covered[-1] == (date(2026, 12, 28), date(2026, 12, 29))
    assert len(covered) == 54
