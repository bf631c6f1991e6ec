"""Live WeChat mode: the real httpx client against a local server answering like WeChat."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.asgi import create_app
from app.context import Context
from tests.conftest import make_settings, serve
from tests.wechat_server import FakeWeChat


@pytest.fixture
def wechat():
    with FakeWeChat(slow_seconds=1.5) as server:
        yield server


@pytest.fixture
async def live_client(database_url: str, tmp_path: Path, wechat: FakeWeChat, clock):
    settings = make_settings(
        tmp_path / "var",
        database_url,
        DAIBAN_WECHAT_MODE="live",
        DAIBAN_WECHAT_APP_ID="wx-test-app",
        DAIBAN_WECHAT_APP_SECRET="wx-test-secret",
        DAIBAN_WECHAT_BASE_URL=wechat.base_url,
        DAIBAN_WECHAT_TIMEOUT_SECONDS="0.5",
    )
    ctx = Context.build(settings)
    ctx.now = clock
    async with serve(create_app(settings, ctx=ctx)) as client:
        yield client
    await ctx.aclose()


async def test_live_login_exchanges_the_code_and_never_returns_session_key(live_client, wechat):
    response = await live_client.post("/mp/v1/auth/login", json={"code": "ok:openid-123:union-9"})
    assert response.status_code == 200
    assert "SECRET-SESSION-KEY" not in response.text
    path, params = wechat.requests[-1]
    assert path == "/sns/jscode2session"
    assert params["appid"] == "wx-test-app" and params["js_code"] == "ok:openid-123:union-9"
    assert params["grant_type"] == "authorization_code"
    assert wechat.user_agents == {"daiban"}  # the service names itself on every call
    again = await live_client.post("/mp/v1/auth/login", json={"code": "ok:openid-123"})
    assert again.json()["account"]["id"] == response.json()["account"]["id"]


@pytest.mark.parametrize(
    ("code", "status", "error_code"),
    [
        ("bad", 400, "wechat_code_invalid"),
        ("limit", 429, "wechat_rate_limited"),
        ("risky", 403, "wechat_user_risky"),
        ("busy", 503, "wechat_busy"),
        ("slow", 503, "wechat_unavailable"),
        ("http500", 503, "wechat_unavailable"),
        ("html", 502, "wechat_error"),
        ("list", 502, "wechat_error"),
        ("oddcode", 502, "wechat_error"),
        ("hugecode", 502, "wechat_error"),
    ],
)
async def test_live_login_errors_become_chinese_problems(live_client, code, status, error_code):
    response = await live_client.post("/mp/v1/auth/login", json={"code": code})
    assert response.status_code == status
    body = response.json()
    assert body["code"] == error_code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["title"])


async def test_dev_codes_do_not_work_in_live_mode(live_client):
    response = await live_client.post("/mp/v1/auth/login", json={"code": "dev:admin"})
    assert response.status_code == 400


async def test_phone_number_uses_the_cached_token_and_refreshes_once_on_40001(live_client, wechat):
    tokens = (await live_client.post("/mp/v1/auth/login", json={"code": "ok:phone-user"})).json()
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    first = await live_client.post(
        "/mp/v1/me/phone", json={"code": "phone:13912345678"}, headers=headers
    )
    assert first.status_code == 200
    assert first.json()["phone"] == "139****5678"
    assert wechat.tokens_issued == 1
    second = await live_client.post(
        "/mp/v1/me/phone", json={"code": "phone:13912345679"}, headers=headers
    )
    assert second.status_code == 200
    assert wechat.tokens_issued == 1  # cached, not fetched per call
    wechat.expired_tokens.add("token-1")
    third = await live_client.post(
        "/mp/v1/me/phone", json={"code": "phone:13912345670"}, headers=headers
    )
    assert third.status_code == 200
    assert wechat.tokens_issued == 2
    refresh_calls = [p for path, p in wechat.requests if path == "/cgi-bin/stable_token"]
    assert refresh_calls[-1]["force_refresh"] is True


async def test_phone_code_refused_by_wechat_is_a_clear_error(live_client):
    tokens = (await live_client.post("/mp/v1/auth/login", json={"code": "ok:phone-user2"})).json()
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    response = await live_client.post("/mp/v1/me/phone", json={"code": "expired"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "wechat_code_invalid"


async def test_the_app_secret_and_access_token_never_reach_the_logs(live_client, wechat):
    import logging

    from app.logs import JsonFormatter, configure_logging

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("DEBUG", "json")  # even at the chattiest level
    root.addHandler(Keep())
    try:
        tokens = (await live_client.post("/mp/v1/auth/login", json={"code": "ok:log-user"})).json()
        headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
        await live_client.post(
            "/mp/v1/me/phone", json={"code": "phone:13912340000"}, headers=headers
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = "\n".join(JsonFormatter().format(r) for r in seen)
    assert seen and "wx-test-secret" not in lines and "token-1" not in lines
    assert "13912340000" not in lines
