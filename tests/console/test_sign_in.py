"""Signing in to the console by QR code, and the sessions it starts: who may, what the
cookies are, CSRF on every form, and every way a session ends (at once)."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select

from app.accounts import console
from app.asgi import create_app
from app.context import Context
from app.models import AuditEntry, ConsoleSession, ConsoleSignIn
from tests.conftest import make_settings, serve
from tests.console.signing_in import csrf_of, form, scan_and_confirm, scanned_code, sign_in


async def _staff_id(client, admin, name: str) -> int:
    staff = (await client.get("/mp/v1/admin/staff", headers=admin)).json()
    return int(next(s["id"] for s in staff if s["name"] == name))


async def test_a_dispatcher_signs_in_by_scanning_and_confirming_on_the_phone(
    client, demo, login, ctx
):
    page = await client.get("/console/sign-in")
    assert page.status_code == 200
    assert "<svg" in page.text and "扫码登录工作台" in page.text
    code = scanned_code(page.text)
    waiting = await client.get("/console/sign-in/state")
    assert "等待扫码" in waiting.text

    phone = await login("dispatcher1a")
    scan = await client.post("/mp/v1/auth/console/scan", json={"code": code}, headers=phone)
    assert scan.status_code == 200
    assert set(scan.json()) == {"address", "browser", "requestedAt", "expiresAt"}
    scanned = (await client.get("/console/sign-in/state")).text
    assert "李晓燕已扫码" in scanned  # whose phone read it, for the person at the screen

    confirm = await client.post("/mp/v1/auth/console/confirm", json={"code": code}, headers=phone)
    assert confirm.status_code == 204
    state = await client.get("/console/sign-in/state")
    assert state.status_code == 303 and state.headers["location"] == "/console/"
    cookie = next(v for k, v in state.headers.multi_items() if v.startswith("daiban_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # served over plain HTTP here
    board = await client.get("/console/")
    assert board.status_code == 200 and "调度台 · 店子镇" in board.text and "李晓燕" in board.text

    # The browser's sign-in is taken once: asking again starts nothing more.
    again = await client.get("/console/sign-in/state")
    assert "二维码已过期" in again.text
    sessions = await ctx.db.run_read(lambda s: s.scalar(select(func.count(ConsoleSession.id))))
    assert sessions == 1
    audited = await ctx.db.run_read(
        lambda s: s.scalar(
            select(func.count(AuditEntry.id)).where(AuditEntry.action == "console.sign_in")
        )
    )
    assert audited == 1


async def test_only_the_browser_that_asked_gets_the_session(client, demo, login, ctx, settings):
    page = await client.get("/console/sign-in")
    code = scanned_code(page.text)
    async with serve(create_app(settings, ctx=ctx)) as onlooker:
        # Someone else who read the QR code off the screen: their own browser has no
        # sign-in cookie of this code, so the confirmation gives them nothing.
        await scan_and_confirm(client, await login("dispatcher1a"), code)
        theirs = await onlooker.get("/console/sign-in/state")
        assert "二维码已过期" in theirs.text and "daiban_console" not in theirs.headers.get(
            "set-cookie", ""
        )
        assert (await onlooker.get("/console/")).status_code == 303
    assert (await client.get("/console/sign-in/state")).status_code == 303


@pytest.mark.parametrize("handle", ["resident1", "agent1a"])
async def test_a_resident_or_agent_cannot_confirm_a_console_sign_in(client, demo, login, handle):
    code = scanned_code((await client.get("/console/sign-in")).text)
    scan, confirm = await scan_and_confirm(client, await login(handle), code)
    assert scan.status_code == 403 and scan.json()["code"] == "console_staff_only"
    assert confirm.status_code == 403
    assert confirm.json()["title"] == "只有调度员和管理员可以登录工作台"
    assert "等待扫码" in (await client.get("/console/sign-in/state")).text


async def test_a_code_expires_and_cannot_be_confirmed_twice(client, demo, login, clock):
    code = scanned_code((await client.get("/console/sign-in")).text)
    _, first = await scan_and_confirm(client, await login("dispatcher1a"), code)
    assert first.status_code == 204
    _, second = await scan_and_confirm(client, await login("dispatcher1b"), code)
    assert second.status_code == 404 and second.json()["code"] == "sign_in_invalid"

    late = scanned_code((await client.get("/console/sign-in")).text)
    clock.advance(seconds=121)
    phone = await login("dispatcher1a")
    scan, confirm = await scan_and_confirm(client, phone, late)
    assert scan.status_code == 404 and confirm.status_code == 404
    assert "二维码已过期" in (await client.get("/console/sign-in/state")).text


async def test_a_page_without_a_session_goes_to_sign_in(client, demo):
    response = await client.get("/console/orders")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?why=console_signed_out"
    htmx = await client.get("/console/board/parts", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"] == "/console/sign-in?why=console_signed_out"
    told = await client.get(response.headers["location"])
    assert "请先登录" in told.text


async def test_every_form_needs_its_csrf_token(client, demo, login):
    csrf = await sign_in(client, await login("dispatcher1a"))
    refused = await client.post("/console/sign-out", data={})
    assert refused.status_code == 403 and "页面已过期，请刷新后再提交" in refused.text
    wrong = await client.post("/console/sign-out", data=form("x" * len(csrf)))
    assert wrong.status_code == 403
    assert (await client.get("/console/")).status_code == 200  # still signed in
    out = await client.post("/console/sign-out", data=form(csrf))
    assert out.status_code == 303
    assert (await client.get("/console/")).status_code == 303


async def test_a_session_ends_after_the_idle_timeout_and_its_lifetime(client, demo, login, clock):
    await sign_in(client, await login("dispatcher1a"))
    clock.advance(minutes=29)
    assert (await client.get("/console/")).status_code == 200  # and counts as activity
    clock.advance(minutes=29)
    assert (await client.get("/console/")).status_code == 200
    clock.advance(minutes=31)
    idle = await client.get("/console/")
    assert idle.headers["location"] == "/console/sign-in?why=console_session_expired"

    await sign_in(client, await login("dispatcher1a"))
    for _ in range(12 * 3):  # busy all day, a page every 20 minutes
        clock.advance(minutes=20)
        response = await client.get("/console/orders")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?why=console_session_expired"


async def test_disabling_or_rebinding_the_account_ends_its_sessions_at_once(
    client, demo, login, ctx, settings
):
    admin = await login("admin")
    await sign_in(client, await login("dispatcher1a"))
    dispatcher = await _staff_id(client, admin, "李晓燕")
    rebound = await client.post(f"/mp/v1/admin/staff/{dispatcher}/binding-code", headers=admin)
    assert rebound.status_code == 200
    ended = await client.get("/console/")
    assert ended.headers["location"] == "/console/sign-in?why=session_rebound"

    await sign_in(client, await login("dispatcher1b"))
    other = await _staff_id(client, admin, "韩立波")
    disabled = await client.patch(
        f"/mp/v1/admin/staff/{other}", json={"disabled": True}, headers=admin
    )
    assert disabled.status_code == 200
    ended = await client.get("/console/orders")
    assert ended.headers["location"] == "/console/sign-in?why=account_disabled"
    assert "账号已停用" in (await client.get(ended.headers["location"])).text


async def test_demo_codes_sign_in_in_dev_mode_only(client, demo, tmp_path, database_url):
    page = await client.get("/console/sign-in")
    csrf = csrf_of(page.text)
    resident = await client.post("/console/sign-in/dev", data=form(csrf, code="dev:resident1"))
    assert resident.status_code == 403 and "只有调度员和管理员可以登录工作台" in resident.text
    admin = await client.post("/console/sign-in/dev", data=form(csrf, code="dev:admin"))
    assert admin.status_code == 303
    assert "八有达标情况" in (await client.get("/console/")).text

    live = make_settings(
        tmp_path / "live",
        database_url,
        DAIBAN_WECHAT_MODE="live",
        DAIBAN_WECHAT_APP_ID="wx0",
        DAIBAN_WECHAT_APP_SECRET="s",
    )
    live_ctx = Context.build(live)
    async with serve(create_app(live, ctx=live_ctx)) as other:
        page = await other.get("/console/sign-in")
        assert "演示账号" not in page.text
        csrf = other.cookies["daiban_csrf"]
        refused = await other.post("/console/sign-in/dev", data=form(csrf, code="dev:admin"))
        assert refused.status_code == 404
    await live_ctx.aclose()


async def test_session_cookies_are_secure_behind_https(tmp_path, database_url, ctx, demo):
    https = make_settings(
        tmp_path / "https", database_url, DAIBAN_STORAGE_PUBLIC_URL="https://daiban.example.cn"
    )
    https_ctx = Context.build(https)
    transport = httpx.ASGITransport(app=create_app(https, ctx=https_ctx))
    # The browser sends Secure cookies back over HTTPS only (nginx ends TLS in production).
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        page = await client.get("/console/sign-in")
        cookies = page.headers.get_list("set-cookie")
        assert {c.split("=")[0] for c in cookies} == {"daiban_sign_in", "daiban_csrf"}
        assert all("; Secure" in c for c in cookies)
        assert "https://daiban.example.cn/console/q/" in page.text
        signed_in = await client.post(
            "/console/sign-in/dev", data=form(csrf_of(page.text), code="dev:dispatcher1a")
        )
        assert "; Secure" in signed_in.headers["set-cookie"]
    await https_ctx.aclose()


async def test_the_boards_own_refresh_is_not_activity(client, demo, login, clock):
    """An unattended PC with the board open is signed out after the idle timeout."""
    await sign_in(client, await login("dispatcher1a"))
    poll = {"HX-Request": "true", "x-console-poll": "1"}
    for _ in range(29):
        clock.advance(minutes=1)
        assert (await client.get("/console/board/parts", headers=poll)).status_code == 200
    clock.advance(minutes=2)
    ended = await client.get("/console/board/parts", headers=poll)
    assert ended.headers["hx-redirect"] == "/console/sign-in?why=console_session_expired"


async def test_a_confirmed_sign_in_is_taken_at_once_or_never(client, demo, login, clock, ctx):
    code = scanned_code((await client.get("/console/sign-in")).text)
    _, confirmed = await scan_and_confirm(client, await login("dispatcher1a"), code)
    assert confirmed.status_code == 204
    clock.advance(minutes=10)  # the browser was closed; its cookie comes back much later
    late = await client.get("/console/sign-in/state")
    assert "二维码已过期" in late.text and (await client.get("/console/")).status_code == 303

    # Re-binding the account also voids a sign-in it confirmed that was not taken yet.
    code = scanned_code((await client.get("/console/sign-in")).text)
    await scan_and_confirm(client, await login("dispatcher1b"), code)
    admin = await login("admin")
    staff = (await client.get("/mp/v1/admin/staff", headers=admin)).json()
    han = next(p["id"] for p in staff if p["name"] == "韩立波")
    await client.post(f"/mp/v1/admin/staff/{han}/binding-code", headers=admin)
    assert "二维码已过期" in (await client.get("/console/sign-in/state")).text


async def test_the_clean_up_removes_old_sign_ins_and_ended_sessions(
    client, demo, login, clock, ctx
):
    csrf = await sign_in(client, await login("dispatcher1a"))
    for _ in range(3):
        await client.get("/console/sign-in")
    await client.post("/console/sign-out", data=form(csrf))
    clock.advance(days=2)
    removed = await ctx.db.run_write(lambda s: console.clean_up(s, ctx))
    assert removed == 4  # the four sign-ins; the session ended only two days ago
    clock.advance(days=30)
    assert await ctx.db.run_write(lambda s: console.clean_up(s, ctx)) == 1
    left = await ctx.db.run_read(
        lambda s: (
            s.scalar(select(func.count(ConsoleSignIn.id))),
            s.scalar(select(func.count(ConsoleSession.id))),
        )
    )
    assert left == (0, 0)


async def test_pages_are_never_cached_and_allow_only_the_services_own_scripts(client, demo, login):
    await sign_in(client, await login("dispatcher1a"))
    page = await client.get("/console/")
    assert page.headers["cache-control"] == "no-store"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    asset = re.search(r'src="(/console/static/htmx.min.js\?v=\w+)"', page.text)
    assert asset
    script = await client.get(asset[1])
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
