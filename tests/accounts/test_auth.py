"""Login in dev mode, access tokens (expired, forged, wrong role) and refresh-token rotation."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from app.security.tokens import VERIFIED_MOST, AccessTokens, Principal
from tests.conftest import Clock


async def test_dev_login_as_demo_person_returns_tokens_and_masked_profile(client, demo):
    response = await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})
    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == "Bearer"
    assert body["account"]["role"] == "resident"
    assert body["account"]["name"] == "张秀英"
    assert body["account"]["idNumber"].startswith("370") and "*" * 11 in body["account"]["idNumber"]
    assert body["account"]["phone"] == "139****1234"
    assert "sessionKey" not in response.text and "session_key" not in response.text


async def test_first_login_creates_a_resident_with_an_empty_profile(client, demo):
    response = await client.post("/mp/v1/auth/login", json={"code": "dev:newcomer"})
    account = response.json()["account"]
    assert account["role"] == "resident"
    assert account["profileComplete"] is False
    again = await client.post("/mp/v1/auth/login", json={"code": "dev:newcomer"})
    assert again.json()["account"]["id"] == account["id"]


async def test_dev_login_refuses_a_code_without_the_dev_prefix(client, demo):
    response = await client.post("/mp/v1/auth/login", json={"code": "resident1"})
    assert response.status_code == 400
    assert response.json()["code"] == "wechat_code_invalid"


async def test_missing_token_is_401(client, demo):
    response = await client.get("/mp/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_expired_access_token_is_401_token_expired(client, demo, login, clock: Clock):
    headers = await login("resident1")
    # used while good, so its check is remembered (AccessTokens.verify): the expiry is not
    clock.advance(seconds=899)
    assert (await client.get("/mp/v1/me", headers=headers)).status_code == 200
    clock.advance(seconds=2)
    response = await client.get("/mp/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    other = await login("resident2")
    clock.advance(seconds=901)  # never used while good
    assert (await client.get("/mp/v1/me", headers=other)).json()["code"] == "token_expired"


async def test_forged_token_is_401_token_invalid(client, demo, login):
    headers = await login("resident1")
    assert (await client.get("/mp/v1/me", headers=headers)).status_code == 200  # remembered
    token = headers["Authorization"].removeprefix("Bearer ")
    version, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["role"] = "admin"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for forged in (
        f"{version}.{forged_body}.{signature}",
        f"{version}.{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}",
        f"{token}A",
        "v1.garbage.sig",
        "not-a-token",
    ):
        response = await client.get(
            "/mp/v1/admin/staff", headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status_code == 401, forged
        assert response.json()["code"] == "token_invalid"


async def test_each_role_router_refuses_other_roles_with_403(client, demo, login):
    cases = {
        "/mp/v1/admin/staff": ("admin", ["resident1", "agent1a", "dispatcher1a"]),
        "/mp/v1/dispatch/agents": ("dispatcher1a", ["resident1", "agent1a", "admin"]),
        "/mp/v1/agent/station": ("agent1a", ["resident1", "dispatcher1a", "admin"]),
    }
    for path, (allowed, refused) in cases.items():
        assert (await client.get(path, headers=await login(allowed))).status_code == 200, path
        for handle in refused:
            response = await client.get(path, headers=await login(handle))
            assert response.status_code == 403, (path, handle)
            assert response.json()["code"] == "forbidden"


async def test_refresh_rotates_and_the_old_token_stops_working(client, demo):
    first = (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})).json()
    second = await client.post("/mp/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert second.status_code == 200
    assert second.json()["refreshToken"] != first["refreshToken"]
    me = await client.get(
        "/mp/v1/me", headers={"Authorization": f"Bearer {second.json()['accessToken']}"}
    )
    assert me.json()["name"] == "张秀英"


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(client, demo):
    first = (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})).json()
    second = (
        await client.post("/mp/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    ).json()
    reuse = await client.post("/mp/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh_token_reused"
    # The thief's reuse also kills the legitimate newest token of that family.
    after = await client.post("/mp/v1/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert after.status_code == 401
    # Another login (another family) is untouched.
    other = (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})).json()
    ok = await client.post("/mp/v1/auth/refresh", json={"refreshToken": other["refreshToken"]})
    assert ok.status_code == 200


async def test_expired_refresh_token_is_refused(client, demo, clock: Clock):
    first = (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})).json()
    clock.advance(days=31)
    response = await client.post(
        "/mp/v1/auth/refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


async def test_unknown_refresh_token_is_refused(client, demo):
    response = await client.post("/mp/v1/auth/refresh", json={"refreshToken": "nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


async def test_logout_revokes_the_refresh_token(client, demo):
    first = (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})).json()
    assert (
        await client.post("/mp/v1/auth/logout", json={"refreshToken": first["refreshToken"]})
    ).status_code == 204
    response = await client.post(
        "/mp/v1/auth/refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert response.status_code == 401


def test_tokens_remembered_are_at_most_a_bounded_number() -> None:
    tokens = AccessTokens("secret", 900)
    now = datetime(2026, 12, 6, tzinfo=UTC)
    issued = [
        tokens.issue(Principal(i, "resident", None, f"login{i}"), now)[0]
        for i in range(VERIFIED_MOST + 5)
    ]
    for i, token in enumerate(issued):
        assert tokens.verify(token, now).account_id == i
        assert len(tokens._verified) <= VERIFIED_MOST
    assert tokens.verify(issued[0], now).account_id == 0  # forgotten, checked again
