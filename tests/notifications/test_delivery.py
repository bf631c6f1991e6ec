"""WeChat subscription messages through the real httpx client against a local server that
answers like WeChat: credits, 43101, token expiry, timeouts, retries, and several workers
(one killed with SIGKILL) delivering each message at most once and losing none."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from app.asgi import create_app
from app.clock import utcnow
from app.context import Context
from app.demo import seed_demo
from app.models import Account, Notification, SubscriptionCredit
from app.notifications import delivery
from app.notifications.outbox import Message, notify
from app.ratings import service as ratings
from jobs import tasks
from tests.conftest import ON_POSTGRES, Clock, free_port, make_settings, serve, truncate_all
from tests.wechat_server import FakeWeChat

TEMPLATE = "TPL-ACCEPTED-0001"
TEMPLATES = {
    "accepted": {
        "id": TEMPLATE,
        "fields": {
            "character_string1": "number",
            "thing2": "item",
            "time3": "dueAt",
            "phrase4": "status",
        },
    }
}
ROOT = Path(__file__).resolve().parents[2]


def live_env(wechat: FakeWeChat, timeout: str = "2.0") -> dict[str, str]:
    # Long enough that a loaded CI machine never makes an ordinary answer late; the "slow"
    # scenario of the fake server answers after 3 s.
    return {
        "DAIBAN_WECHAT_MODE": "live",
        "DAIBAN_WECHAT_APP_ID": "wx-test-app",
        "DAIBAN_WECHAT_APP_SECRET": "wx-test-secret",
        "DAIBAN_WECHAT_BASE_URL": wechat.base_url,
        "DAIBAN_WECHAT_TIMEOUT_SECONDS": timeout,
        "DAIBAN_WECHAT_TEMPLATES": json.dumps(TEMPLATES),
    }


@pytest.fixture
def wechat():
    with FakeWeChat(slow_seconds=3.0) as server:
        yield server


@pytest.fixture
async def live(database_url, tmp_path, wechat, clock):
    ctx = Context.build(make_settings(tmp_path / "var", database_url, **live_env(wechat)))
    ctx.now = clock
    if ON_POSTGRES:
        await truncate_all(ctx)
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))
    yield ctx
    await ctx.aclose()


async def person(ctx: Context, openid: str, credits: int = 1) -> int:
    def add(session: Session) -> int:
        account = Account(role="resident", openid=openid, name="测试", on_duty=False)
        session.add(account)
        session.flush()
        if credits:
            session.add(
                SubscriptionCredit(account_id=account.id, template_id=TEMPLATE, credits=credits)
            )
        return account.id

    return await ctx.db.run_write(add)


def accepted_message(n: int = 1, item: str = "城乡居民基本养老保险参保登记") -> Message:
    data = {
        "number": f"DB20261123{n:06d}",
        "item": item,
        "dueAt": "2026-11-30T16:00:00+00:00",
        "status": "办理中",
    }
    return Message("accepted", "办件已受理", "您委托的事项已受理。", data)


async def queue(ctx: Context, recipient: int, n: int = 1, **message: str) -> None:
    def work(session) -> None:
        notify(session, ctx, [recipient], accepted_message(n, **message), f"test:{n}", ctx.now())

    await ctx.db.run_write(work)


async def rows(ctx: Context) -> list[Notification]:
    return await ctx.db.run_read(
        lambda s: list(s.scalars(select(Notification).order_by(Notification.id)).all())
    )


async def credits_of(ctx: Context, account: int) -> int:
    credits = await ctx.db.run_read(
        lambda s: s.scalar(
            select(SubscriptionCredit.credits).where(SubscriptionCredit.account_id == account)
        )
    )
    return int(credits or 0)


async def test_a_message_is_sent_once_with_its_fields_cut_to_wechats_limits(live, wechat):
    who = await person(live, "ok-openid-1")
    await queue(live, who, item="城乡居民基本养老保险参保登记暨个人缴费档次确认变更(代办)")
    assert await delivery.deliver_due(live) == 1
    assert await delivery.deliver_due(live) == 0
    [sent] = wechat.delivered
    assert sent["touser"] == "ok-openid-1" and sent["template_id"] == TEMPLATE
    assert sent["page"].startswith("pages/order/detail")
    data = sent["data"]
    assert len(data["thing2"]["value"]) == 20 and data["thing2"]["value"].endswith("…")
    assert data["character_string1"]["value"] == "DB20261123000001"
    assert data["time3"]["value"] == "2026-12-01 00:00"  # shown in Shanghai time
    assert data["phrase4"]["value"] == "办理中"
    [row] = await rows(live)
    assert row.wechat_status == "sent" and row.attempts == 1 and row.sent_at is not None
    assert await credits_of(live, who) == 0


async def test_without_a_subscription_the_message_stays_in_the_inbox_only(live, wechat):
    who = await person(live, "ok-openid-2", credits=0)
    await queue(live, who)
    await delivery.deliver_due(live)
    assert wechat.delivered == []
    [row] = await rows(live)
    assert row.wechat_status == "no_credit" and row.read_at is None


async def test_without_an_openid_nothing_is_sent_and_the_credit_stays(live, wechat):
    who = await person(live, "ok-openid-3", credits=2)

    def forget_openid(session: Session) -> None:
        session.get(Account, who).openid = None

    await live.db.run_write(forget_openid)
    await queue(live, who)
    assert await delivery.deliver_due(live) == 1
    assert wechat.delivered == []
    [row] = await rows(live)
    assert row.wechat_status == "no_openid" and row.claimed_by is None
    assert row.send_started_at is None and row.next_attempt_at is None
    assert await credits_of(live, who) == 2


async def test_a_send_begins_once_and_only_under_its_own_claim(live, wechat):
    who = await person(live, "ok-openid-4", credits=3)
    await queue(live, who)
    [key] = await live.db.run_write(lambda s: delivery.claim(s, live, "w1", 10))

    def begin_as(worker: str) -> Callable[[Session], delivery.Outgoing | None]:
        return lambda s: delivery.start(s, live, worker, key)

    # another worker (whose claim lapsed, say) cannot begin it, nor spend for it
    assert await live.db.run_write(begin_as("w2")) is None
    [row] = await rows(live)
    assert row.claimed_by == "w1" and row.wechat_status == "sending"
    assert row.send_started_at is None and await credits_of(live, who) == 3
    out = await live.db.run_write(begin_as("w1"))
    assert out is not None and out.openid == "ok-openid-4" and out.id == row.id
    assert out.fields["character_string1"] == {"value": "DB20261123000001"}
    assert await credits_of(live, who) == 2
    # begun once: a second begin of the same claim is nothing, and costs nothing
    assert await live.db.run_write(begin_as("w1")) is None
    [row] = await rows(live)
    assert row.send_started_at is not None and row.claimed_by == "w1"
    assert await credits_of(live, who) == 2
    assert wechat.delivered == []


async def test_43101_is_final_and_clears_the_credit(live, wechat, clock: Clock):
    who = await person(live, "unsub:1", credits=3)
    await queue(live, who)
    await delivery.deliver_due(live)
    clock.advance(hours=2)
    await delivery.deliver_due(live)
    sends = [p for p in wechat.paths() if p == "/cgi-bin/message/subscribe/send"]
    assert len(sends) == 1
    [row] = await rows(live)
    assert row.wechat_status == "unsubscribed" and "43101" in row.last_error
    assert await credits_of(live, who) == 0


async def test_an_expired_token_is_refreshed_once_and_the_message_goes(live, wechat):
    who = await person(live, "ok-openid-3")
    wechat.expired_tokens = {"token-1"}
    await queue(live, who)
    await delivery.deliver_due(live)
    assert wechat.tokens_issued == 2
    assert len(wechat.delivered) == 1
    assert (await rows(live))[0].wechat_status == "sent"


async def test_no_answer_is_never_sent_again(live, wechat, clock: Clock):
    who = await person(live, "slow:1", credits=2)
    await queue(live, who)
    await delivery.deliver_due(live)  # WeChat takes it but answers after our 2 s timeout
    clock.advance(hours=3)
    await delivery.deliver_due(live)
    assert len(wechat.delivered) == 1
    [row] = await rows(live)
    assert row.wechat_status == "uncertain"
    assert await credits_of(live, who) == 1  # it may have been used: not given back


async def test_a_busy_wechat_is_retried_after_a_back_off(live, wechat, clock: Clock):
    who = await person(live, "busy:1")
    await queue(live, who)
    await delivery.deliver_due(live)
    [row] = await rows(live)
    assert row.wechat_status == "pending" and row.attempts == 1 and "-1" in row.last_error
    assert row.next_attempt_at == clock.current + timedelta(seconds=30)
    assert await credits_of(live, who) == 1  # given back for the next try
    clock.advance(seconds=29)
    assert await delivery.deliver_due(live) == 0
    clock.advance(seconds=1)
    await delivery.deliver_due(live)
    assert len(wechat.delivered) == 1
    [row] = await rows(live)
    assert row.wechat_status == "sent" and row.attempts == 2


async def test_an_unreachable_wechat_is_retried_then_given_up(database_url, tmp_path, clock: Clock):
    with FakeWeChat() as closed:
        env = live_env(closed)
    # The server is gone: every connection is refused.
    ctx = Context.build(make_settings(tmp_path / "var", database_url, **env))
    ctx.now = clock
    if ON_POSTGRES:
        await truncate_all(ctx)
    who = await person(ctx, "ok-openid-4")
    await queue(ctx, who)
    for _ in range(ctx.settings.scheduler.delivery_max_attempts):
        await delivery.deliver_due(ctx)
        clock.advance(hours=2)
    [row] = await rows(ctx)
    assert row.wechat_status == "failed" and row.attempts == 6
    assert "wechat_unavailable" in row.last_error
    assert await credits_of(ctx, who) == 1
    await ctx.aclose()


async def test_a_bad_field_value_fails_without_retrying(live, wechat, clock: Clock):
    who = await person(live, "badfield:1")
    await queue(live, who)
    await delivery.deliver_due(live)
    clock.advance(hours=2)
    await delivery.deliver_due(live)
    [row] = await rows(live)
    assert row.wechat_status == "failed" and "47003" in row.last_error
    assert await credits_of(live, who) == 1


async def test_dev_mode_writes_the_message_to_the_log(database_url, tmp_path, clock, caplog):
    caplog.set_level("INFO", logger="daiban.wechat")
    settings = make_settings(
        tmp_path / "var", database_url, DAIBAN_WECHAT_TEMPLATES=json.dumps(TEMPLATES)
    )
    ctx = Context.build(settings)
    ctx.now = clock
    if ON_POSTGRES:
        await truncate_all(ctx)
    who = await person(ctx, "dev_someone")
    await queue(ctx, who)
    await tasks.deliver(ctx)
    [row] = await rows(ctx)
    assert row.wechat_status == "logged" and await credits_of(ctx, who) == 0
    logged = [r for r in caplog.records if r.getMessage() == "wechat (dev) subscription message"]
    assert len(logged) == 1 and logged[0].touser == "dev_someone"
    await ctx.aclose()


async def _many(ctx: Context, total: int, people: int) -> None:
    ids = [await person(ctx, f"ok-bulk-{p}", credits=total // people) for p in range(people)]

    def work(session) -> None:
        for n in range(total):
            notify(session, ctx, [ids[n % people]], accepted_message(n), f"bulk:{n}", ctx.now())

    await ctx.db.run_write(work)


def _numbers(wechat: FakeWeChat) -> Counter[str]:
    return Counter(m["data"]["character_string1"]["value"] for m in wechat.delivered)


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite's writer thread groups commits itself")
async def test_a_batchs_begins_and_outcomes_are_committed_together(live, wechat):
    """The begins and the outcomes of the messages in flight are recorded in a few
    transactions, not one a message: each is a BEGIN, a COMMIT and a trip through the async
    bridge on PostgreSQL. Each message's begin is still committed before it is sent (the
    tests of killed workers below check what that guarantees). WeChat answers the 32 in
    flight at once, as it does when their sends went out together."""
    await _many(live, 32, 4)
    wechat.hold = threading.Semaphore(0)
    commits: list[object] = []

    def counted(connection: object) -> None:
        commits.append(connection)

    event.listen(Engine, "commit", counted)
    try:
        run = asyncio.create_task(delivery.deliver_due(live, "w1", limit=32))
        try:
            assert await _sends_reach(wechat, 32) == 32
            begun = len(commits)
        finally:
            wechat.hold.release(100)
            handled = await run
    finally:
        event.remove(Engine, "commit", counted)
    assert handled == 32
    assert Counter(r.wechat_status for r in await rows(live)) == {"sent": 32}
    assert set(_numbers(wechat).values()) == {1}
    # the claim, and a few for the 32 begins (one by one: 32)
    assert 1 < begun <= 1 + 8, begun
    # and a few for the 32 outcomes (one by one: 32)
    assert len(commits) - begun <= 8, len(commits) - begun


async def _reach(count: Callable[[], int], enough: int, seconds: float) -> int:
    """`count()` once it is `enough` or `seconds` have passed. The fake server's thread
    counts what arrives; polling it is the simplest honest wait."""
    deadline = time.monotonic() + seconds
    while count() < enough and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return count()


async def _sends_reach(wechat: FakeWeChat, enough: int) -> int:
    """The sends WeChat has received (answered or not), once they are `enough` or 5 s have
    passed."""
    return await _reach(lambda: wechat.paths().count("/cgi-bin/message/subscribe/send"), enough, 5)


async def test_two_workers_deliver_a_thousand_messages_none_twice_none_lost(
    live, wechat, database_url, tmp_path, clock, caplog
):
    """Both workers begin messages to the same 20 people in transactions of several: no
    transaction of either fails for waiting on the other (deadlock), since both lock the
    people's subscriptions in one order."""
    await _many(live, 1000, 20)
    second = Context.build(live.settings)  # its own engine and connections
    second.now = clock

    async def drain(ctx: Context, worker: str) -> None:
        while await delivery.deliver_due(ctx, worker, limit=25):
            pass

    await asyncio.gather(drain(live, "worker-a"), drain(second, "worker-b"))
    await second.aclose()
    statuses = Counter(r.wechat_status for r in await rows(live))
    assert statuses == {"sent": 1000}
    counts = _numbers(wechat)
    assert len(counts) == 1000 and set(counts.values()) == {1}
    workers = Counter(r.claimed_by for r in await rows(live))
    assert workers == {None: 1000}  # every claim was settled and released
    assert not [r for r in caplog.records if r.getMessage() == "delivery's writes taken one by one"]


async def test_the_next_claim_goes_out_while_the_last_ones_slowest_answer_is_awaited(live, wechat):
    """Claims of 5 with 4 in flight: once the first four are answered, the fifth message of
    the first claim and three of the second are sent together. (A batch that waited for
    its own last answer would send the fifth alone and claim again only after it.)"""
    await _many(live, 10, 2)
    settings = live.settings
    ctx = Context.build(  # its own: 4 in flight, and a timeout no held answer reaches
        msgspec.structs.replace(
            settings,
            scheduler=msgspec.structs.replace(settings.scheduler, delivery_concurrency=4),
            wechat=msgspec.structs.replace(settings.wechat, timeout_seconds=20.0),
        )
    )
    wechat.hold = threading.Semaphore(0)
    run = asyncio.create_task(delivery.deliver_due(ctx, "w1", limit=5, batches=3))
    try:
        assert await _sends_reach(wechat, 4) == 4
        wechat.hold.release(4)
        in_flight = await _sends_reach(wechat, 8)
    finally:
        wechat.hold.release(100)
        handled = await run
        await ctx.aclose()
    assert handled == 10
    assert in_flight == 8
    assert Counter(r.wechat_status for r in await rows(live)) == {"sent": 10}
    assert set(_numbers(wechat).values()) == {1}


def _worker_env(live: Context, wechat: FakeWeChat, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A worker process's environment: the live context's database and keys, WeChat live."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAIBAN_")}
    return {
        **env,
        "DAIBAN_VAR_DIR": str(tmp_path / "worker"),
        "DAIBAN_DATABASE_URL": live.settings.database_url,
        "DAIBAN_SECURITY_SECRET_KEY": live.settings.security.secret_key,
        "DAIBAN_SECURITY_PII_KEYS": live.settings.security.pii_keys,
        "DAIBAN_SECURITY_PII_HASH_KEY": live.settings.security.pii_hash_key,
        "DAIBAN_SCHEDULER_MODE": "off",
        "DAIBAN_LOG_LEVEL": "WARNING",
        **live_env(wechat),
        **extra,
    }


async def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    live, wechat, tmp_path
):
    await _many(live, 300, 10)
    wechat.send_delay = 0.01
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.delivery_worker",
        cwd=ROOT,
        env=_worker_env(live, wechat, tmp_path),
    )
    await _reach(lambda: len(wechat.delivered), 60, 60)
    worker.send_signal(signal.SIGKILL)
    await worker.wait()
    before = len(wechat.delivered)
    assert 60 <= before < 300, before
    # Restart after the dead worker's claims have lapsed (time moves on by the lease).
    live.now = lambda: utcnow() + delivery.LEASE + timedelta(minutes=1)
    while await delivery.deliver_due(live, "restarted", limit=50):
        pass
    counts = _numbers(wechat)
    assert set(counts.values()) == {1}, "a message was sent twice"
    statuses = Counter(r.wechat_status for r in await rows(live))
    assert set(statuses) <= {"sent", "uncertain"}
    # At most the messages in flight when it died, however many claims it held.
    assert statuses["uncertain"] <= live.settings.scheduler.delivery_concurrency
    assert statuses["sent"] + statuses["uncertain"] == 300
    assert len(counts) >= statuses["sent"]


# The job worker alone, and the API (granian, one worker) running the jobs in its process.
PROCESSES = {
    "worker": (["-m", "jobs"], {}),
    "api": (
        ["-m", "app.cli", "serve"],
        {"DAIBAN_SCHEDULER_MODE": "in-process", "DAIBAN_DEMO_DATA": "false"},
    ),
}


@pytest.mark.parametrize("process", PROCESSES)
async def test_an_ordinary_stop_leaves_nothing_uncertain_or_held(live, wechat, tmp_path, process):
    """SIGTERM mid-delivery to `python -m jobs`, or to `daiban serve` with the scheduler in
    its process: the sends in flight finish, what it had claimed but not begun is handed
    back due at once, it exits 0; then another worker sends the rest at once (no lease to
    wait out), each message once."""
    await _many(live, 300, 10)
    wechat.send_delay = 0.05
    command, extra = PROCESSES[process]
    env = _worker_env(
        live,
        wechat,
        tmp_path,
        DAIBAN_STORAGE_LOCAL_DIR=str(live.settings.local_storage_dir),
        DAIBAN_SCHEDULER_DELIVERY_SECONDS="1",
        DAIBAN_SERVER_PORT=str(free_port()),
        **extra,
    )
    worker = await asyncio.create_subprocess_exec(sys.executable, *command, cwd=ROOT, env=env)
    await _reach(lambda: len(wechat.delivered), 40, 60)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), 40) == 0
    stopped_at = utcnow()
    left = [r for r in await rows(live) if r.wechat_status != "sent"]
    assert 0 < len(left) < 300
    assert {r.wechat_status for r in left} <= {"pending", "sending"}, "uncertain after a stop"
    assert all(r.send_started_at is None and r.claimed_by is None for r in left)
    assert all(r.next_attempt_at is not None and r.next_attempt_at <= stopped_at for r in left)

    live.now = utcnow  # the restart: at once, no lease to wait for
    while await delivery.deliver_due(live, "restarted", limit=50):
        pass
    counts = _numbers(wechat)
    assert len(counts) == 300 and set(counts.values()) == {1}
    assert Counter(r.wechat_status for r in await rows(live)) == {"sent": 300}


async def test_live_comments_pass_wechats_text_check_before_staff_see_them(live, wechat):
    assert await ratings.check_comment(live, "ok-1", "办得很好") == "passed"
    assert await ratings.check_comment(live, "ok-1", "含违禁词的内容") == "blocked"
    assert await ratings.check_comment(live, "ok-1", "有点可疑的话") == "pending"
    assert await ratings.check_comment(live, "ok-1", None) == "none"
    checks = [body for path, body in wechat.requests if path == "/wxa/msg_sec_check"]
    assert checks[0]["openid"] == "ok-1" and checks[0]["version"] == 2


async def test_with_wechat_unreachable_a_comment_stays_hidden_until_checked(
    database_url, tmp_path, clock, wechat
):
    with FakeWeChat() as gone:
        away = live_env(gone)
    ctx = Context.build(make_settings(tmp_path / "var", database_url, **away))
    ctx.now = clock
    assert await ratings.check_comment(ctx, "ok-2", "办得很好") == "pending"
    await ctx.aclose()


async def test_each_allow_tap_reported_is_one_credit_up_to_a_cap(database_url, tmp_path, clock):
    settings = make_settings(
        tmp_path / "var", database_url, DAIBAN_WECHAT_TEMPLATES=json.dumps(TEMPLATES)
    )
    ctx = Context.build(settings)
    ctx.now = clock
    if ON_POSTGRES:
        await truncate_all(ctx)
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))
    async with serve(create_app(settings, ctx=ctx)) as client:
        login = await client.post("/mp/v1/auth/login", json={"code": "dev:resident2"})
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        path = "/mp/v1/me/subscriptions"
        first = await client.post(path, json={"templateIds": [TEMPLATE]}, headers=headers)
        assert first.status_code == 200 and first.json()["credits"] == {TEMPLATE: 1}
        again = await client.post(path, json={"templateIds": [TEMPLATE]}, headers=headers)
        assert again.json()["credits"] == {TEMPLATE: 2}
        unknown = await client.post(path, json={"templateIds": ["NOT-OURS"]}, headers=headers)
        assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "templateIds"
        for _ in range(60):
            await client.post(path, json={"templateIds": [TEMPLATE]}, headers=headers)
        capped = await client.get(path, headers=headers)
        assert capped.json()["credits"] == {TEMPLATE: 50}
    await ctx.aclose()
