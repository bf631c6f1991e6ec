"""Personal data kept only as long as needed: an ended order's files removed after the set
days (the order stays), the audit log pruned after its years (never a row younger than a
year, whatever asks), residents closing their accounts (注销) and unused accounts closed,
each step idempotent and index-driven. Through the HTTP API with injected time.

resident2 (李建国) lives in 西集村: its orders go to 吴秀芳 (agent4a)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select, update
from sqlalchemy.exc import DBAPIError

from app.models import Account, AuditEntry, Complaint, Order, Upload
from app.retention.accounts import idle_accounts
from app.retention.files import due_orders, file_keys
from app.retention.run import prune_audit, run_retention
from jobs import tasks
from tests.factories import delivered, submit

DAYS = 180  # DAIBAN_RETENTION_ORDER_FILES_DAYS's default


async def _archived(client, login, resident="resident2") -> int:
    order_id = await delivered(client, login, resident)
    rated = await client.post(
        f"/mp/v1/orders/{order_id}/rating", json={"grade": 5}, headers=await login(resident)
    )
    assert rated.status_code == 201, rated.text
    return order_id


async def _files(ctx, order_id: int) -> list[Upload]:
    return list(
        await ctx.db.run_read(
            lambda s: s.scalars(select(Upload).where(Upload.order_id == order_id)).all()
        )
    )


async def _stored(ctx, keys: list[str]) -> list[bool]:
    return [await ctx.store.stat(key) is not None for key in keys]


async def test_an_ended_orders_files_go_after_the_days_and_the_order_stays(
    client, demo, login, ctx, clock
):
    order_id = await _archived(client, login)
    uploads = await _files(ctx, order_id)
    assert len(uploads) >= 2  # the materials and the hand-back proof
    keys = [k for u in uploads for k in (u.key, u.thumbnail_key) if k]
    assert all(await _stored(ctx, keys))
    resident = await login("resident2")
    before = (await client.get(f"/mp/v1/orders/{order_id}", headers=resident)).json()

    clock.advance(days=DAYS - 1)
    assert (await run_retention(ctx)).order_files == 0
    assert all(await _stored(ctx, keys))

    clock.advance(days=1, minutes=1)
    assert await tasks.retain(ctx) == 1
    assert not any(await _stored(ctx, keys))
    for upload in await _files(ctx, order_id):
        assert upload.removed_at == clock() and upload.key is None
        assert upload.thumbnail_key is None
    resident = await login("resident2")  # half a year later
    after = (await client.get(f"/mp/v1/orders/{order_id}", headers=resident)).json()
    assert after == before  # the order, its checklist and its timeline stay as they were
    link = await client.get(f"/mp/v1/uploads/{uploads[0].id}/url", headers=resident)
    assert link.status_code == 410 and link.json()["code"] == "file_removed"

    assert (await run_retention(ctx)).total == 0  # the second run finds nothing


async def test_an_open_complaint_keeps_the_files_until_it_is_closed(
    client, demo, login, ctx, clock
):
    order_id = await _archived(client, login)
    made = await client.post(
        "/mp/v1/complaints",
        json={"orderId": order_id, "text": "材料原件没有还给我"},
        headers=await login("resident2"),
    )
    assert made.status_code == 201, made.text
    clock.advance(days=DAYS + 1)
    assert (await run_retention(ctx)).order_files == 0
    await ctx.db.run_write(lambda s: s.execute(update(Complaint).values(status="answered")))
    assert (await run_retention(ctx)).order_files == 0
    await ctx.db.run_write(lambda s: s.execute(update(Complaint).values(status="closed")))
    assert (await run_retention(ctx)).order_files == 1


async def test_a_refused_or_withdrawn_order_counts_from_when_it_ended(
    client, demo, login, ctx, clock
):
    resident = await login("resident2")
    order_id = (await submit(client, resident)).json()["id"]
    clock.advance(days=3)
    resident = await login("resident2")
    withdrawn = await client.post(
        f"/mp/v1/orders/{order_id}/cancel", json={"reason": "不办了"}, headers=resident
    )
    assert withdrawn.status_code == 200, withdrawn.text
    ended = await ctx.db.run_read(lambda s: s.get(Order, order_id))
    assert ended.ended_at == clock()
    clock.advance(days=DAYS - 1)
    assert (await run_retention(ctx)).order_files == 0
    clock.advance(days=2)
    assert (await run_retention(ctx)).order_files == 1


async def _account(ctx, account_id: int) -> Account:
    return await ctx.db.run_read(lambda s: s.get(Account, account_id))


async def test_a_resident_closes_their_account_once_nothing_is_owed(
    client, demo, login, ctx, clock
):
    resident = await login("resident2")
    me = (await client.get("/mp/v1/me", headers=resident)).json()
    refresh = (await client.post("/mp/v1/auth/login", json={"code": "dev:resident2"})).json()
    open_order = (await submit(client, resident)).json()
    refused = await client.post("/mp/v1/me/close", json={"confirm": "注销"}, headers=resident)
    assert refused.status_code == 409 and refused.json()["code"] == "orders_still_open"
    assert refused.json()["orders"] == [open_order["number"]]
    unconfirmed = await client.post("/mp/v1/me/close", json={"confirm": "yes"}, headers=resident)
    assert unconfirmed.status_code == 422
    assert (await _account(ctx, me["id"])).closed_at is None

    cancelled = await client.post(
        f"/mp/v1/orders/{open_order['id']}/cancel", json={"reason": "不办了"}, headers=resident
    )
    assert cancelled.status_code == 200
    archived = await _archived(client, login)
    keys = [u.key for u in await _files(ctx, archived) if u.key]

    closed = await client.post("/mp/v1/me/close", json={"confirm": "注销"}, headers=resident)
    assert closed.status_code == 200, closed.text
    assert closed.json() == {
        "closedAt": clock().isoformat().replace("+00:00", "Z"),
        "ordersKept": 2,
        "orderFilesRemoved": 2,
    }
    account = await _account(ctx, me["id"])
    assert (account.name, account.phone_enc, account.phone_hash) == (None, None, None)
    assert (account.id_number_enc, account.id_number_hash, account.openid) == (None, None, None)
    assert account.region_id is None and account.closed_at == clock()
    assert not any(await _stored(ctx, keys))

    # Every login ends at once; the same WeChat then starts a new, empty account.
    assert (await client.get("/mp/v1/me", headers=resident)).status_code == 401
    ended = await client.post("/mp/v1/auth/refresh", json={"refreshToken": refresh["refreshToken"]})
    assert ended.status_code == 401 and ended.json()["code"] == "account_closed"
    again = await login("resident2")
    fresh = (await client.get("/mp/v1/me", headers=again)).json()
    assert fresh["id"] != me["id"] and fresh["name"] is None
    assert (await client.get("/mp/v1/orders", headers=again)).json()["items"] == []

    # The orders stay for the town's records, without the person.
    town = (await client.get("/mp/v1/dispatch/orders", headers=await login("dispatcher2a"))).json()[
        "items"
    ]
    kept = {o["id"]: o for o in town}
    assert kept[archived]["status"] == "closed"
    audited = await ctx.db.run_read(
        lambda s: s.scalars(select(AuditEntry).where(AuditEntry.action == "account.close")).all()
    )
    assert [(a.target, a.actor_id, a.detail) for a in audited] == [
        (f"account:{me['id']}", me["id"], {"by": "self", "orders": 2})
    ]


async def test_staff_cannot_close_an_account(client, demo, login):
    agent = await login("agent4a")
    answer = await client.post("/mp/v1/me/close", json={"confirm": "注销"}, headers=agent)
    assert answer.status_code == 403


async def test_unused_accounts_are_closed_and_used_ones_kept(client, demo, login, ctx, clock):
    owed = (await submit(client, await login("resident1"))).json()["id"]
    served = await _archived(client, login, "resident2")
    ids = {
        handle: await ctx.db.run_read(
            lambda s, h=handle: s.scalar(select(Account.id).where(Account.openid == f"dev_{h}"))
        )
        for handle in ("resident1", "resident2")
    }
    long_ago = clock() - timedelta(days=2000)
    await ctx.db.run_write(
        lambda s: s.execute(
            update(Account).where(Account.role == "resident").values(last_seen_at=long_ago)
        )
    )
    clock.advance(days=1094)  # resident2's order ended less than three years ago
    first = await run_retention(ctx)
    assert first.accounts == 0 and first.order_files == 1
    clock.advance(days=2)
    assert (await run_retention(ctx)).accounts == 1
    assert (await _account(ctx, ids["resident2"])).closed_at == clock()
    assert (await _account(ctx, ids["resident1"])).closed_at is None  # order `owed` is open
    assert (await ctx.db.run_read(lambda s: s.get(Order, owed))).status == "submitted"
    assert (await ctx.db.run_read(lambda s: s.get(Order, served))).resident_id == ids["resident2"]
    assert (await run_retention(ctx)).total == 0


async def test_seen_means_a_login_or_a_refresh_at_most_once_a_day(client, demo, login, ctx, clock):
    account_id = await ctx.db.run_read(
        lambda s: s.scalar(select(Account.id).where(Account.openid == "dev_resident1"))
    )
    await ctx.db.run_write(
        lambda s: s.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(last_seen_at=clock() - timedelta(days=30))
        )
    )
    await login("resident1")
    assert (await _account(ctx, account_id)).last_seen_at == clock()
    clock.advance(hours=5)
    pair = (await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})).json()
    assert (await _account(ctx, account_id)).last_seen_at == clock() - timedelta(hours=5)
    clock.advance(days=1)
    refreshed = await client.post(
        "/mp/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert (await _account(ctx, account_id)).last_seen_at == clock()


def _real_now() -> datetime:
    return datetime.now(UTC)


async def test_the_audit_log_keeps_its_years_and_never_loses_a_young_row(ctx):
    now = _real_now()
    ages = {"four years": 4 * 366, "two years": 2 * 365, "half a year": 182}
    await ctx.db.run_write(
        lambda s: s.execute(
            insert(AuditEntry),
            [
                {
                    "at": now - timedelta(days=days),
                    "actor_role": "system",
                    "action": name,
                    "target": "t",
                }
                for name, days in ages.items()
            ],
        )
    )
    ctx.now = _real_now
    assert (await run_retention(ctx)).audit_entries == 1  # three years by default
    left = await ctx.db.run_read(lambda s: s.scalars(select(AuditEntry.action)).all())
    assert sorted(left) == ["half a year", "two years"]
    # Whatever asks, the database keeps a row younger than a year.
    with pytest.raises(DBAPIError, match="append-only"):
        await ctx.db.run_write(lambda s: prune_audit(s, _real_now()))
    with pytest.raises(DBAPIError, match="append-only"):
        await ctx.db.run_write(lambda s: s.execute(update(AuditEntry).values(target="x")))
    assert (await run_retention(ctx)).audit_entries == 0


def _plans(session, *runs) -> list[str]:
    """SQLite's plan of each statement the `runs` send, as one line each."""
    seen: list[tuple[str, object]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", before)
    try:
        for run in runs:
            run()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    connection = session.connection()
    return [
        " / ".join(
            row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
        )
        for sql, params in seen
    ]


@pytest.mark.usefixtures("sqlite_only")
async def test_what_is_due_is_found_through_an_index(ctx):
    """A range over a partial index of what may come due, never a scan of what is stored."""
    cutoff = datetime(2026, 1, 1, tzinfo=UTC)
    orders_plan, accounts_plan, files_plan = await ctx.db.run_read(
        lambda s: _plans(
            s,
            lambda: due_orders(s, cutoff, 10),
            lambda: idle_accounts(s, cutoff, 10),
            lambda: file_keys(s, [1, 2]),
        )
    )
    assert files_plan.startswith("SEARCH uploads USING INDEX ix_uploads_order"), files_plan
    assert orders_plan.startswith("SEARCH orders USING INDEX ix_orders_files_due"), orders_plan
    assert accounts_plan.startswith("SEARCH accounts USING INDEX ix_accounts_idle"), accounts_plan
    for plan in (orders_plan, accounts_plan, files_plan):
        assert "SCAN" not in plan, plan  # each check of a candidate is a search too


def test_retention_settings_have_floors():
    from app.settings import SettingsError, load_settings

    for name, value in (
        ("DAIBAN_RETENTION_AUDIT_YEARS", "0"),
        ("DAIBAN_RETENTION_ORDER_FILES_DAYS", "7"),
        ("DAIBAN_RETENTION_IDLE_ACCOUNT_DAYS", "30"),
    ):
        with pytest.raises(SettingsError, match=name):
            load_settings({name: value})
