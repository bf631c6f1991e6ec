"""Limits on abuse: logins, refreshes, submissions, complaints and upload forms per minute
answer 429 with Retry-After and a Chinese title; counts are shared through Redis when several
workers run; one person's pending uploads are capped exactly, even when they arrive at once."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import redis

from app.asgi import create_app
from app.context import Context
from tests.conftest import app_of, make_settings, serve
from tests.factories import submit

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def limited(settings, tmp_path, database_url):
    def build(**limits: str):
        env = {
            (f"DAIBAN_{k.upper()}" if k.startswith("server_") else f"DAIBAN_LIMITS_{k.upper()}"): v
            for k, v in limits.items()
        }
        return make_settings(tmp_path / "var", database_url, **env)

    return build


async def _app(settings, clock):
    context = Context.build(settings)
    context.now = clock
    return context


async def test_logins_past_the_limit_get_429_with_retry_after(demo, limited, clock):
    settings = limited(login_per_address="5")
    ctx = await _app(settings, clock)
    try:
        async with serve(create_app(settings, ctx=ctx)) as client:
            answers = [
                await client.post("/mp/v1/auth/login", json={"code": f"dev:someone{i}"})
                for i in range(8)
            ]
    finally:
        await ctx.aclose()
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "too_many_requests"
    assert refused.json()["title"] == "操作太频繁,请稍后再试"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_an_app_serving_test_after_test_gives_each_its_context_and_no_counts(
    demo, limited, clock
):
    """tests/conftest.py serves a process's tests from one app per set of settings: the next
    test finds its own context there, nothing else in the app's state, and no counts."""
    settings = limited(login_per_address="2")
    first, second = await _app(settings, clock), await _app(settings, clock)
    apps, rounds = [], []
    try:
        for ctx in (first, second):
            async with app_of(settings, ctx) as app, serve(app) as client:
                assert app.state.ctx is ctx
                assert list(app.state.keys()) == ["ctx"]
                apps.append(app)
                login = {"code": "dev:resident1"}
                answers = [await client.post("/mp/v1/auth/login", json=login) for _ in range(3)]
                rounds.append([a.status_code for a in answers])
    finally:
        await first.aclose()
        await second.aclose()
    assert apps[0] is apps[1]
    assert rounds == [[200, 200, 429]] * 2


async def test_logins_of_one_account_are_limited_whatever_the_address(demo, limited, clock):
    settings = limited(login_per_account="3")
    ctx = await _app(settings, clock)
    try:
        async with serve(create_app(settings, ctx=ctx)) as client:
            same = [
                (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"}))
                for _ in range(4)
            ]
            other = await client.post("/mp/v1/auth/login", json={"code": "dev:resident2"})
    finally:
        await ctx.aclose()
    assert [a.status_code for a in same] == [200, 200, 200, 429]
    assert other.status_code == 200


async def test_submissions_and_complaints_are_limited_per_account(demo, limited, clock):
    settings = limited(orders_per_account="2", complaints_per_account="2")
    ctx = await _app(settings, clock)
    try:
        async with serve(create_app(settings, ctx=ctx)) as client:
            headers = await _login(client, "resident1")
            orders = [(await submit(client, headers)).status_code for _ in range(3)]
            about = {"agentId": await _own_agent(client, headers), "text": "电话打不通"}
            complaints = [
                (await client.post("/mp/v1/complaints", json=about, headers=headers)).status_code
                for _ in range(3)
            ]
            other = await _login(client, "resident2")
            theirs = await client.post(
                "/mp/v1/complaints",
                json={"agentId": await _own_agent(client, other), "text": "电话打不通"},
                headers=other,
            )
    finally:
        await ctx.aclose()
    assert orders == [201, 201, 429]
    assert complaints == [201, 201, 429]
    assert theirs.status_code == 201  # another person is counted apart


async def test_upload_forms_are_limited_per_account(demo, limited, clock):
    settings = limited(uploads_per_account="3")
    ctx = await _app(settings, clock)
    try:
        async with serve(create_app(settings, ctx=ctx)) as client:
            headers = await _login(client, "resident1")
            forms = [
                (
                    await client.post(
                        "/mp/v1/uploads",
                        json={"purpose": "material", "contentType": "image/jpeg", "size": 10},
                        headers=headers,
                    )
                ).status_code
                for _ in range(4)
            ]
    finally:
        await ctx.aclose()
    assert forms == [201, 201, 201, 429]


async def _own_agent(client, headers: dict[str, str]) -> int:
    village = (await client.get("/mp/v1/me", headers=headers)).json()["region"]["id"]
    return int((await client.get(f"/mp/v1/villages/{village}/agents")).json()[0]["id"])


async def _login(client, handle: str) -> dict[str, str]:
    answer = await client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
    return {"Authorization": f"Bearer {answer.json()['accessToken']}"}


async def test_two_workers_share_their_counts_through_redis(demo, limited, clock):
    namespace_client = redis.Redis.from_url(REDIS_URL)
    try:
        namespace_client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    for key in namespace_client.scan_iter("daiban_limits*"):
        namespace_client.delete(key)
    settings = limited(login_per_address="4", redis_url=REDIS_URL)
    first, second = await _app(settings, clock), await _app(settings, clock)
    try:
        async with (
            serve(create_app(settings, ctx=first)) as a,
            serve(create_app(settings, ctx=second)) as b,
        ):
            statuses = []
            for i in range(6):
                client = a if i % 2 == 0 else b
                answer = await client.post("/mp/v1/auth/login", json={"code": f"dev:p{i}"})
                statuses.append(answer.status_code)
    finally:
        await first.aclose()
        await second.aclose()
        for key in namespace_client.scan_iter("daiban_limits*"):
            namespace_client.delete(key)
        namespace_client.close()
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_a_trusted_proxy_names_the_client_and_others_cannot(demo, limited, clock):
    settings = limited(login_per_address="2", **{"server_trusted_proxies": "127.0.0.1"})
    ctx = await _app(settings, clock)
    app = create_app(settings, ctx=ctx)
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as proxy:
            for phone in ("10.0.0.1", "10.0.0.2"):
                got = [
                    (
                        await proxy.post(
                            "/mp/v1/auth/login",
                            json={"code": f"dev:{uuid.uuid4().hex[:8]}"},
                            headers={"X-Real-IP": phone},
                        )
                    ).status_code
                    for _ in range(3)
                ]
                assert got == [200, 200, 429], phone
        # A client that is not the proxy cannot pick its own address.
        transport = httpx.ASGITransport(app=app, client=("10.9.9.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as direct:
            got = [
                (
                    await direct.post(
                        "/mp/v1/auth/login",
                        json={"code": f"dev:{uuid.uuid4().hex[:8]}"},
                        headers={"X-Real-IP": f"10.1.1.{i}"},
                    )
                ).status_code
                for i in range(3)
            ]
            assert got == [200, 200, 429]
    finally:
        await ctx.aclose()


async def test_one_persons_pending_uploads_are_capped_exactly_when_they_arrive_at_once(
    client, demo, login, settings
):
    headers = await login("resident1")
    cap = settings.storage.pending_uploads_per_person

    async def form() -> int:
        answer = await client.post(
            "/mp/v1/uploads",
            json={"purpose": "material", "contentType": "image/jpeg", "size": 1000},
            headers=headers,
        )
        return answer.status_code

    statuses = await asyncio.gather(*(form() for _ in range(100)))
    assert statuses.count(201) == cap
    assert statuses.count(429) == 100 - cap


async def test_a_limit_of_zero_is_no_limit(demo, limited, clock):
    settings = limited(login_per_address="0", login_per_account="0")
    ctx = await _app(settings, clock)
    try:
        async with serve(create_app(settings, ctx=ctx)) as client:
            answers = [
                (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"}))
                for _ in range(15)
            ]
    finally:
        await ctx.aclose()
    assert {a.status_code for a in answers} == {200}
