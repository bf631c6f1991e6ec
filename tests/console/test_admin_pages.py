"""The district admin's pages: readiness, staff and binding codes, appeals, the calendar,
the audit log and the jobs; a dispatcher is refused every one of them."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import httpx
import openpyxl
import pytest
from sqlalchemy import select

from app.asgi import create_app
from app.models import Account, CalendarOverride
from tests.accounts.test_staff_import import FIRST, sheet
from tests.console.signing_in import form, sign_in
from tests.factories import delivered
from tests.images import jpeg


async def test_the_admins_home_is_the_districts_readiness(client, demo, login):
    await sign_in(client, await login("admin"))
    page = (await client.get("/console/")).text
    assert "山亭区 · 八有达标情况" in page and "<td>" in page


async def test_staff_are_created_edited_and_disabled_from_the_console(
    client, demo, login, ctx, settings
):
    csrf = await sign_in(client, await login("admin"))
    page = (await client.get("/console/admin/staff")).text
    assert "李晓燕" in page and "刘桂兰" in page
    town = re.search(r'<option value="(\d+)">店子镇</option>', page)
    assert town
    created = await client.post(
        "/console/admin/staff",
        data=form(
            csrf, role="dispatcher", name="赵新来", region_id=town[1], work_phone="", post=""
        ),
    )
    assert created.status_code == 200
    code = re.search(r'<strong class="code">([A-Z0-9]+)</strong>', created.text)
    assert code and "绑定码只显示这一次" in created.text
    again = (await client.get("/console/admin/staff")).text
    assert "赵新来" in again and code[1] not in again  # shown once only

    # The new dispatcher binds a phone with the code and signs in to the console.
    phone = await login("newcomer")
    bound = await client.post("/mp/v1/auth/bind-staff", json={"code": code[1]}, headers=phone)
    assert bound.status_code == 200, bound.text
    newcomer = {"Authorization": f"Bearer {bound.json()['accessToken']}"}
    transport = httpx.ASGITransport(app=create_app(settings, ctx=ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        await sign_in(browser, newcomer)
        assert "赵新来" in (await browser.get("/console/")).text

        staff_id = await ctx.db.run_read(
            lambda s: s.scalar(select(Account.id).where(Account.name == "赵新来"))
        )
        renamed = await client.post(
            f"/console/admin/staff/{staff_id}",
            data=form(csrf, name="赵欣来", work_phone="0632-1234567"),
        )
        assert renamed.status_code == 303
        assert "已保存。" in (await client.get(renamed.headers["location"])).text
        off = await client.post(
            f"/console/admin/staff/{staff_id}/switch", data=form(csrf, disabled="true")
        )
        assert off.status_code == 303
        ended = await browser.get("/console/")
        assert ended.headers["location"] == "/console/sign-in?why=account_disabled"

    bad = await client.post(
        "/console/admin/staff",
        data=form(csrf, role="agent", name="钱多多", region_id=town[1], work_phone="12", post="A"),
    )
    assert bad.status_code == 422 and 'role="alert"' in bad.text


async def test_an_appeal_is_decided_from_the_console(client, demo, login):
    order_id = await delivered(client, login)
    resident, dispatcher = await login("resident2"), await login("dispatcher2a")
    await client.post(f"/mp/v1/orders/{order_id}/rating", json={"grade": 1}, headers=resident)
    rating = (await client.get("/mp/v1/dispatch/ratings", headers=dispatcher)).json()[0]
    appealed = await client.post(
        f"/mp/v1/dispatch/ratings/{rating['id']}/appeal",
        json={"reason": "mistaken", "evidence": "群众误点了一星"},
        headers=dispatcher,
    )
    assert appealed.status_code == 201
    csrf = await sign_in(client, await login("admin"))
    page = (await client.get("/console/admin/appeals")).text
    assert "群众误点了一星" in page and "待复核" in page
    decided = await client.post(
        f"/console/admin/appeals/{appealed.json()['id']}/decide",
        data=form(csrf, upheld="true", note="已电话核实"),
    )
    assert decided.status_code == 303
    after = (await client.get(decided.headers["location"])).text
    assert "申诉成立：已电话核实" in after


async def test_a_years_calendar_is_entered_line_by_line(client, demo, login, ctx):
    csrf = await sign_in(client, await login("admin"))
    moved = await client.get("/console/admin/calendar")
    assert moved.status_code in (301, 302, 307) and moved.headers["location"].endswith("/2027")
    wrong = await client.post(
        "/console/admin/calendar/2027",
        data=form(csrf, days="2027-01-01 休 元旦\n2027-13-01 休\n2027-02-07 上班"),
    )
    assert wrong.status_code == 422 and "第2行" in wrong.text and "第3行" in wrong.text
    assert "2027-02-07 上班" in wrong.text  # what was typed is kept to correct
    saved = await client.post(
        "/console/admin/calendar/2027",
        data=form(csrf, days="2027-01-01 休 元旦\n\n2027-02-07 班 春节调休", complete="true"),
    )
    assert saved.status_code == 303
    days = await ctx.db.run_read(
        lambda s: [(d.day.isoformat(), d.is_workday) for d in s.scalars(select(CalendarOverride))]
    )
    assert ("2027-01-01", False) in days and ("2027-02-07", True) in days
    page = (await client.get(saved.headers["location"])).text
    assert "2027-02-07 班 春节调休" in page and "已录入" in page


async def test_the_audit_log_and_the_jobs_are_shown(client, demo, login):
    await sign_in(client, await login("admin"))
    audit = (await client.get("/console/admin/audit", params={"action": "console.sign_in"})).text
    assert "console.sign_in" in audit and "王立新" in audit
    assert (await client.get("/console/admin/jobs")).status_code == 200


@pytest.mark.parametrize(
    "path", ["/console/admin/staff", "/console/admin/appeals", "/console/admin/audit"]
)
async def test_a_dispatcher_is_refused_the_admins_pages(client, demo, login, path):
    csrf = await sign_in(client, await login("dispatcher1a"))
    page = await client.get(path)
    assert page.status_code == 403 and "这是区管理员的页面" in page.text
    created = await client.post(
        "/console/admin/staff", data=form(csrf, role="admin", name="冒充", region_id="1")
    )
    assert created.status_code == 403


async def test_a_staff_sheet_is_imported_and_its_codes_downloaded_once(client, demo, login):
    csrf = await sign_in(client, await login("admin"))
    imported = await client.post(
        "/console/admin/staff/import",
        data={"_csrf_token": csrf},
        files={"file": ("staff.xlsx", FIRST, "application/octet-stream")},
    )
    assert imported.status_code == 200, imported.text[:500]
    assert "attachment" in imported.headers["content-disposition"]
    codes = openpyxl.load_workbook(io.BytesIO(imported.content)).active
    assert codes.max_row == 5  # a header and the four new people, each with a code
    assert "周中心" in (await client.get("/console/admin/staff")).text

    wrong = sheet(["", "代办员", "C", "999999999999", "12", None, None])
    refused = await client.post(
        "/console/admin/staff/import",
        data={"_csrf_token": csrf},
        files={"file": ("staff.xlsx", wrong, "application/octet-stream")},
    )
    assert (
        refused.status_code == 422 and "第2行" in refused.text and "未导入任何内容" in refused.text
    )


async def test_a_card_photo_goes_through_the_uploads_checks(client, demo, login, ctx, clock):
    # The service stores the file itself, stamped by the file system's clock: the service's
    # clock reads the same here, as it does in production.
    clock.current = datetime.now(UTC)
    csrf = await sign_in(client, await login("admin"))
    liu = await ctx.db.run_read(
        lambda s: s.scalar(select(Account.id).where(Account.name == "刘桂兰"))
    )
    photo = await client.post(
        f"/console/admin/staff/{liu}/photo",
        data={"_csrf_token": csrf},
        files={"file": ("me.jpg", jpeg(600, 800), "image/jpeg")},
    )
    assert photo.status_code == 303, photo.text[:300]
    card = await client.get("/mp/v1/agent/station", headers=await login("agent1a"))
    mine = next(a for a in card.json() if a["name"] == "刘桂兰")
    assert mine.get("photoUrl")
    page = (await client.get(photo.headers["location"])).text
    assert "已设置公示照片。" in page and "有公示照片" in page

    fake = await client.post(
        f"/console/admin/staff/{liu}/photo",
        data={"_csrf_token": csrf},
        files={"file": ("me.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg")},
    )
    assert fake.status_code in (409, 422) and 'role="alert"' in fake.text
    removed = await client.post(f"/console/admin/staff/{liu}/photo/remove", data=form(csrf))
    assert removed.status_code == 303
    assert "已撤下公示照片。" in (await client.get(removed.headers["location"])).text
