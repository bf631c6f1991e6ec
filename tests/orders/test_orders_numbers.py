"""Order numbers: DB + business date + a 6-digit daily sequence, unique across processes and
increasing within the day; on PostgreSQL taken from a sequence, on SQLite from the day's
counter in the submission's own transaction."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from app.asgi import create_app
from app.context import Context
from app.models import Order, OrderEvent, OrderNumberCounter, Upload
from app.orders.submission import SubmitInput, next_number, submit
from app.security.tokens import Principal
from tests.conftest import ON_POSTGRES, serve
from tests.factories import upload_photo

postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="needs two transactions at once")

ITEM = "RS-0009"  # one required material: the ID card


async def _submit(client, headers, photo: int):
    return await client.post(
        "/mp/v1/orders",
        json={"itemCode": ITEM, "materials": {"id_card": [photo]}},
        headers={**headers, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"},
    )


async def test_the_daily_sequence_stops_at_999999_with_a_clear_refusal(
    client, demo, login, ctx, clock
):
    # A day counted by the counter: SQLite's way, and on PostgreSQL a day begun before its
    # numbers came from the sequence (migration 0032), which goes on from the counter.
    await ctx.db.run_write(
        lambda s: s.execute(insert(OrderNumberCounter).values(day=date(2026, 11, 23), last=999_998))
    )
    resident = await login("resident1")
    last = await _submit(client, resident, await upload_photo(client, resident))
    assert last.status_code == 201, last.text
    assert last.json()["number"] == "DB20261123999999"
    photo = await upload_photo(client, resident)
    refused = await _submit(client, resident, photo)
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "order_numbers_exhausted"
    assert refused.json()["title"] == "今日办件编号已用完,请明天再提交"

    def check(session: Session) -> None:  # nothing of the refused submission was kept
        assert session.scalar(select(func.count()).select_from(Order)) == 1
        assert session.scalar(select(func.count()).select_from(OrderEvent)) == 2
        assert session.get(Upload, photo).order_id is None
        counter = session.get(OrderNumberCounter, date(2026, 11, 23))
        assert counter.last == (999_998 if ON_POSTGRES else 999_999)  # SQLite: rolled back

    await ctx.db.run_read(check)
    clock.advance(days=1)  # a new business day starts a new sequence
    resident = await login("resident1")
    tomorrow = await _submit(client, resident, photo)
    assert tomorrow.status_code == 201, tomorrow.text
    assert tomorrow.json()["number"] == "DB20261124000001"


async def test_numbers_are_unique_across_processes(client, demo, login, ctx, settings, clock):
    """Two services on one database (their own engines, pools and, on SQLite, writer
    threads, as two processes have) submit at once: every number is given once, in order."""
    other = Context.build(settings)
    other.now = clock
    try:
        async with serve(create_app(settings, ctx=other)) as second:
            resident = await login("resident1")
            photos = [await upload_photo(client, resident) for _ in range(40)]
            answers = await asyncio.gather(
                *(
                    _submit(client if i % 2 else second, resident, photo)
                    for i, photo in enumerate(photos)
                )
            )
    finally:
        await other.aclose()
    assert [a.status_code for a in answers] == [201] * 40, [a.text for a in answers]
    numbers = sorted(a.json()["number"] for a in answers)
    assert all(re.fullmatch(r"DB20261123\d{6}", n) for n in numbers)
    assert numbers == [f"DB20261123{i:06d}" for i in range(1, 41)]
    stored = await ctx.db.run_read(lambda s: s.execute(select(Order.number)).scalars().all())
    assert sorted(stored) == numbers


async def test_a_number_is_greater_than_every_number_committed_before_it_was_taken(
    client, demo, login, ctx, settings, clock
):
    """Submissions in overlapping waves through two services: numbers are unique, and one
    whose answer came (its transaction committed) before another was sent has the smaller
    number. Overlapping ones may commit in either order."""
    other = Context.build(settings)
    other.now = clock
    resident = await login("resident1")
    photos = [await upload_photo(client, resident) for _ in range(30)]
    timed: list[tuple[float, float, str]] = []

    async def one(i: int, photo: int) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        answer = await _submit(client if i % 2 else second, resident, photo)
        assert answer.status_code == 201, answer.text
        timed.append((sent, loop.time(), answer.json()["number"]))

    try:
        async with serve(create_app(settings, ctx=other)) as second:
            running: set[asyncio.Task[None]] = set()
            for wave in range(3):  # each wave sent once an answer of the one before came
                running |= {
                    asyncio.ensure_future(one(i, photos[i]))
                    for i in range(wave * 10, wave * 10 + 10)
                }
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            await asyncio.gather(*running)
    finally:
        await other.aclose()
    numbers = sorted(n for _, _, n in timed)
    assert numbers == [f"DB20261123{i:06d}" for i in range(1, 31)]  # unique, none skipped
    ordered = [(a, b) for a in timed for b in timed if a[1] < b[0]]
    assert ordered, "no submission began after another had ended"
    assert all(a[2] < b[2] for a, b in ordered), ordered


async def test_the_day_turns_at_local_midnight(client, demo, login, clock):
    clock.current = datetime(2026, 11, 23, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    resident = await login("resident1")
    numbers = []
    for step in (0, 1, 0):  # the last second of the 23rd, then the first of the 24th, twice
        clock.advance(seconds=step)
        answer = await _submit(client, resident, await upload_photo(client, resident))
        assert answer.status_code == 201, answer.text
        numbers.append(answer.json()["number"])
    assert numbers == ["DB20261123000001", "DB20261124000001", "DB20261124000002"]


async def test_a_failed_submission_leaves_a_gap_on_postgresql_and_none_on_sqlite(ctx, clock):
    """The service's own function, in a unit of work that fails after taking two numbers:
    SQLite's counter rolls back with it, PostgreSQL's sequence does not (a gap, never a
    number given twice)."""
    day = clock().astimezone(ctx.settings.zone).date()

    def draw_and_fail(session: Session) -> None:
        assert [next_number(session, ctx, day), next_number(session, ctx, day)] == [
            "DB20261123000001",
            "DB20261123000002",
        ]
        raise LookupError("the submission failed after its numbers")

    with pytest.raises(LookupError):
        await ctx.db.run_write(draw_and_fail)
    after = await ctx.db.run_write(lambda s: next_number(s, ctx, day))
    assert after == ("DB20261123000003" if ON_POSTGRES else "DB20261123000001")


async def test_a_retry_takes_no_number(client, demo, login):
    """The same tap sent again (the same Idempotency-Key) answers the order it made and
    takes no number: the next submission's number follows on without a gap."""
    resident = await login("resident1")
    photo = await upload_photo(client, resident)
    body = {"itemCode": ITEM, "materials": {"id_card": [photo]}}
    tap = {**resident, "Idempotency-Key": "tap-once"}
    first = await client.post("/mp/v1/orders", json=body, headers=tap)
    again = await client.post("/mp/v1/orders", json=body, headers=tap)
    assert first.status_code == 201, first.text
    assert again.json()["id"] == first.json()["id"]
    later = await _submit(client, resident, await upload_photo(client, resident))
    assert [first.json()["number"], later.json()["number"]] == [
        "DB20261123000001",
        "DB20261123000002",
    ]


# --- PostgreSQL: a submission's transaction holds no one up ---------------------------------


@postgres_only
async def test_a_submission_held_open_keeps_no_one_from_a_number(client, demo, login, ctx):
    """One submission's transaction stays open (on a connection of its own) after it took
    its number — the day's first, which wrote where the day's numbers start: another
    submission still gets the next number at once, the day's row is not locked, and the
    held one commits after it. Rolled back, its number stays unused."""
    resident = await login("resident1")
    me = (await client.get("/mp/v1/me", headers=resident)).json()
    principal = Principal(account_id=int(me["id"]), role="resident", region_id=None)
    # Uploaded beforehand: an upload takes turns on its owner's row (app/uploads/service.py),
    # which a submission of theirs references until it ends.
    photos = [await upload_photo(client, resident) for _ in range(4)]

    async def held_open(conn, photo: int) -> str:
        data = SubmitInput(
            item_code=ITEM, materials={"id_card": [photo]}, idempotency_key=uuid.uuid4().hex
        )
        done = await conn.run_sync(lambda c: submit(Session(bind=c), ctx, principal, data))
        return done.values["number"]

    async with ctx.db.async_engine.connect() as held:
        first = await held_open(held, photos[0])
        async with ctx.db.async_engine.connect() as probe:  # nobody keeps the row locked
            await probe.execute(text("SELECT base FROM order_number_days FOR UPDATE NOWAIT"))
            await probe.rollback()
        meanwhile = await asyncio.wait_for(_submit(client, resident, photos[1]), timeout=10)
        assert meanwhile.status_code == 201, meanwhile.text
        await held.commit()  # committed after the later number
    assert (first, meanwhile.json()["number"]) == ("DB20261123000001", "DB20261123000002")

    async with ctx.db.async_engine.connect() as held:
        lost = await held_open(held, photos[2])
        await held.rollback()
    after = await _submit(client, resident, photos[3])
    assert (lost, after.json()["number"]) == ("DB20261123000003", "DB20261123000004")
    stored = await ctx.db.run_read(lambda s: s.execute(select(Order.number)).scalars().all())
    assert sorted(stored) == ["DB20261123000001", "DB20261123000002", "DB20261123000004"]
