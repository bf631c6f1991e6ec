"""JSON columns are read by msgspec (app/db.py: `json_value`), and every value reads as the
standard library's decoder read it, those msgspec refuses included (a lone surrogate, NaN,
a number beyond a float), through each way into the database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import JSON, String, bindparam, cast, insert, select
from sqlalchemy.orm import Session

from app.context import Context
from app.db import json_value
from app.models import AuditEntry
from tests.conftest import ON_POSTGRES

AUDIT_LOG = AuditEntry.__table__

TEXTS = [
    '{"a": [1, 2.5, null, true, false], "b": "店子村", "c": {"d": -0.0}}',
    '{"big": 18446744073709551616, "small": -9223372036854775809}',
    '{"lone": "\\ud800"}',
    '{"far": 1e400}',
    '{"twice": 1, "twice": 2}',
    '{"nan": NaN}',
]
# PostgreSQL's json type refuses NaN, as the standard says.
STORED = [t for t in TEXTS if not (ON_POSTGRES and "NaN" in t)]


@pytest.mark.parametrize("text", TEXTS)
def test_a_json_text_reads_as_the_standard_library_reads_it(text: str) -> None:
    # repr: NaN is not equal to itself
    assert repr(json_value(text)) == repr(json.loads(text))
    assert repr(json_value(text.encode())) == repr(json.loads(text))


def test_a_text_that_is_not_json_fails_as_before() -> None:
    with pytest.raises(json.JSONDecodeError):
        json_value('{"a": ')


async def test_json_columns_read_the_same_through_every_way_in(ctx: Context) -> None:
    # Each text as it is, not as SQLAlchemy's serializer would write a value.
    raw = bindparam("detail", type_=String())
    detail = cast(raw, JSON) if ON_POSTGRES else raw

    def write(session: Session) -> list[int]:
        row = {"at": ctx.now(), "actor_role": "system", "action": "t", "target": "t"}
        entry = insert(AUDIT_LOG).values(**row, detail=detail).returning(AUDIT_LOG.c.id)
        return [int(session.execute(entry, {"detail": t}).scalar_one()) for t in STORED]

    ids = await ctx.db.run_write(write)

    def read(session: Session) -> list[Any]:
        details = select(AUDIT_LOG.c.id, AUDIT_LOG.c.detail).where(AUDIT_LOG.c.id.in_(ids))
        return [detail for _, detail in sorted(session.execute(details).all())]

    expected = [repr(json.loads(text)) for text in STORED]
    assert [repr(v) for v in await ctx.db.run_read(read)] == expected
    assert [repr(v) for v in await ctx.db.run_long_read(read)] == expected
    assert [repr(v) for v in await ctx.db.run_write(read)] == expected
