"""Order numbers: DB + business date + a 6-digit daily sequence, unique across processes."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.asgi import create_app
from app.context import Context
from app.models import Order, OrderEvent, OrderNumberCounter, Upload
from tests.conftest import serve
from tests.factories import upload_photo

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
        assert counter.last == 999_999

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
