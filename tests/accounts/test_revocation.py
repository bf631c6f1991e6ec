"""Who may still act: ending a login ends its access tokens on the next request, in this
process and in others; each ending is told by its own code; logins per account are capped."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from app.asgi import create_app
from app.context import Context
from app.models import Order, RefreshToken
from tests.conftest import serve
from tests.factories import agent_id, submit


async def _tokens(client, handle: str) -> dict[str, str]:
    response = await client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
    assert response.status_code == 200, response.text
    body = response.json()
    return {"access": body["accessToken"], "refresh": body["refreshToken"]}


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access']}"}


async def _staff_id(client, admin, name: str) -> int:
    staff = (await client.get("/mp/v1/admin/staff", headers=admin)).json()
    return int(next(s["id"] for s in staff if s["name"] == name))


async def test_a_disabled_agent_cannot_take_an_order_with_an_earlier_token(
    client, demo, login, ctx
):
    order = (await submit(client, await login("resident1"))).json()
    dispatcher = await login("dispatcher1a")
    assigned = await client.post(
        f"/mp/v1/dispatch/orders/{order['id']}/assign",
        json={"agentId": await agent_id(client, dispatcher, "刘桂兰")},
        headers=dispatcher,
    )
    assert assigned.status_code == 200
    agent = await _tokens(client, "agent1a")
    admin = await login("admin")
    disabled = await client.patch(
        f"/mp/v1/admin/staff/{await _staff_id(client, admin, '刘桂兰')}",
        json={"disabled": True},
        headers=admin,
    )
    assert disabled.status_code == 200
    take = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/take", json={}, headers=_bearer(agent)
    )
    assert take.status_code == 401 and take.json()["code"] == "account_disabled"
    status = await ctx.db.run_read(
        lambda s: s.scalar(select(Order.status).where(Order.id == order["id"]))
    )
    assert status == "assigned"
    refresh = await client.post("/mp/v1/auth/refresh", json={"refreshToken": agent["refresh"]})
    assert refresh.status_code == 401 and refresh.json()["code"] == "account_disabled"


async def test_logout_ends_the_access_token_at_once_and_says_so_on_refresh(client, demo):
    tokens = await _tokens(client, "resident1")
    assert (await client.get("/mp/v1/me", headers=_bearer(tokens))).status_code == 200
    out = await client.post("/mp/v1/auth/logout", json={"refreshToken": tokens["refresh"]})
    assert out.status_code == 204
    me = await client.get("/mp/v1/me", headers=_bearer(tokens))
    assert me.status_code == 401 and me.json()["code"] == "token_revoked"
    refresh = await client.post("/mp/v1/auth/refresh", json={"refreshToken": tokens["refresh"]})
    assert refresh.status_code == 401 and refresh.json()["code"] == "session_ended"
    # Another login of the same person is untouched.
    other = await _tokens(client, "resident1")
    assert (await client.get("/mp/v1/me", headers=_bearer(other))).status_code == 200


async def test_reusing_a_rotated_refresh_token_ends_the_logins_access_tokens(client, demo):
    first = await _tokens(client, "resident1")
    rotated = await client.post("/mp/v1/auth/refresh", json={"refreshToken": first["refresh"]})
    second = {"access": rotated.json()["accessToken"], "refresh": rotated.json()["refreshToken"]}
    assert (await client.get("/mp/v1/me", headers=_bearer(second))).status_code == 200
    reuse = await client.post("/mp/v1/auth/refresh", json={"refreshToken": first["refresh"]})
    assert reuse.json()["code"] == "refresh_token_reused"
    for tokens in (first, second):
        me = await client.get("/mp/v1/me", headers=_bearer(tokens))
        assert me.status_code == 401 and me.json()["code"] == "token_revoked"
    again = await client.post("/mp/v1/auth/refresh", json={"refreshToken": second["refresh"]})
    assert again.json()["code"] == "refresh_token_reused"


async def test_rebinding_a_staff_account_ends_the_old_phones_login(client, demo, login):
    agent = await _tokens(client, "agent1a")
    admin = await login("admin")
    code = await client.post(
        f"/mp/v1/admin/staff/{await _staff_id(client, admin, '刘桂兰')}/binding-code",
        headers=admin,
    )
    assert code.status_code == 200
    duty = await client.get("/mp/v1/agent/duty", headers=_bearer(agent))
    assert duty.status_code == 401 and duty.json()["code"] == "token_revoked"
    refresh = await client.post("/mp/v1/auth/refresh", json={"refreshToken": agent["refresh"]})
    assert refresh.status_code == 401 and refresh.json()["code"] == "session_rebound"


async def test_an_admin_cannot_unbind_their_own_phone(client, demo, login):
    admin = await login("admin")
    me = (await client.get("/mp/v1/me", headers=admin)).json()
    response = await client.post(f"/mp/v1/admin/staff/{me['id']}/binding-code", headers=admin)
    assert response.status_code == 409
    assert (await client.get("/mp/v1/me", headers=admin)).status_code == 200


async def test_three_hundred_logins_leave_only_the_newest_few(client, demo, ctx, settings):
    cap = settings.security.max_logins_per_account
    first = await _tokens(client, "resident2")
    for _ in range(299):
        await _tokens(client, "resident2")
    live = await ctx.db.run_read(
        lambda s: s.scalar(
            select(func.count(func.distinct(RefreshToken.family_id))).where(
                RefreshToken.revoked_at.is_(None)
            )
        )
    )
    assert live == cap
    me = await client.get("/mp/v1/me", headers=_bearer(first))
    assert me.status_code == 401 and me.json()["code"] == "token_revoked"
    refresh = await client.post("/mp/v1/auth/refresh", json={"refreshToken": first["refresh"]})
    assert refresh.json()["code"] == "session_limit"


async def test_another_process_refuses_the_token_on_its_next_request(client, demo, settings, clock):
    """Two contexts on one database are two API processes: each has its own set of ended
    logins, and the second hears of the first's logout by the signal sent with its commit
    (the stamp file on SQLite, NOTIFY on PostgreSQL)."""
    other_ctx = Context.build(settings)
    other_ctx.now = clock
    try:
        async with serve(create_app(settings, ctx=other_ctx)) as other:
            tokens = await _tokens(client, "resident1")
            assert (await other.get("/mp/v1/me", headers=_bearer(tokens))).status_code == 200
            await client.post("/mp/v1/auth/logout", json={"refreshToken": tokens["refresh"]})
            for _ in range(50):  # NOTIFY arrives over a socket: allow it a moment
                me = await other.get("/mp/v1/me", headers=_bearer(tokens))
                if me.status_code == 401:
                    break
                await asyncio.sleep(0.01)
            assert me.status_code == 401 and me.json()["code"] == "token_revoked"
    finally:
        await other_ctx.aclose()
