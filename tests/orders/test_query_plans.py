"""The hot statements' plans on the database in use (SQLite, and PostgreSQL in CI's second
run), read with EXPLAIN: each goes through the index meant for it, also where the
statistics mislead, as they do after a burst of new rows that no ANALYZE has seen yet.

The statements are the code's own (the claim of photos, the pre-review's queue, the lists),
bound with real values; nothing here runs them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import ClauseElement, Engine, event, select, text
from sqlalchemy.orm import Session

from app.context import Context
from app.dispatch.board import AGENTS
from app.ledger.figures import Filters, figures
from app.models import Account, Order
from app.models.orders import OPEN_PREDICATE
from app.orders.queries import _list_statement
from app.orders.records import claim_statement
from app.orders.states import OPEN, OPEN_ORDER
from app.orders.submission import SUBMISSION_CONTEXT
from app.security.tokens import Principal
from app.uploads import prereviews
from tests.conftest import ON_POSTGRES
from tests.factories import order_copies, series, submit

pytestmark = pytest.mark.usefixtures("demo")

UPLOAD_COLUMNS = (
    "owner_id, purpose, status, declared_type, declared_size, incoming_key,"
    " upload_expires_at, created_at, key"
)


def plan(session: Session, statement: ClauseElement, params: dict[str, Any]) -> str:
    """EXPLAIN of the statement as the driver would get it, one line per step."""
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    values = compiled.construct_params(params)
    if connection.dialect.name == "sqlite":
        bound = tuple(values[name] for name in compiled.positiontup or ())
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", bound)
        return "\n".join(str(row[-1]) for row in rows)
    bound = tuple(values[name] for name in compiled.positiontup or ())
    rows = connection.exec_driver_sql(f"EXPLAIN {compiled.string}", bound)
    return "\n".join(str(row[0]) for row in rows)


async def analyze(ctx: Context) -> None:
    await ctx.db.run_write(lambda s: s.execute(text("ANALYZE")))


async def test_the_photo_claim_goes_by_primary_key_after_a_burst_of_new_photos(
    client: httpx.AsyncClient, login: Any, ctx: Context
) -> None:
    """The statistics are taken when nearly every photo belongs to an order; then 300 new
    photos arrive. The claim must still find its three by id, not filter every unattached
    photo through the partial index of them (which a bare `order_id IS NULL` let
    PostgreSQL choose: 56 submissions/s on a bench that had just made 20,000 photos)."""
    resident = await login("resident1")
    made = await submit(client, resident)
    assert made.status_code == 201, made.text
    order_id = made.json()["id"]
    owner = await ctx.db.run_read(lambda s: s.get(Order, order_id).resident_id)
    attached = (
        f"{series(3000)} INSERT INTO uploads ({UPLOAD_COLUMNS}, order_id)"  # noqa: S608
        f" SELECT {owner}, 'material', 'ready', 'image/jpeg', 1000, 'old-' || n,"
        f" :at, :at, 'k-old-' || n, {order_id} FROM g"
    )
    now = ctx.now()
    await ctx.db.run_write(lambda s: s.execute(text(attached), {"at": now - timedelta(days=30)}))
    await analyze(ctx)
    fresh = (
        f"{series(300)} INSERT INTO uploads ({UPLOAD_COLUMNS})"  # noqa: S608
        f" SELECT {owner}, 'material', 'ready', 'image/jpeg', 1000, 'new-' || n,"
        f" :at, :at, 'k-new-' || n FROM g"
    )
    await ctx.db.run_write(lambda s: s.execute(text(fresh), {"at": now}))
    newest = await ctx.db.run_read(
        lambda s: s.scalars(text("SELECT id FROM uploads ORDER BY id DESC LIMIT 3")).all()
    )
    params = {f"id{i}": upload_id for i, upload_id in enumerate(newest)}
    params |= {"order_id": order_id, "owner": owner}
    found = await ctx.db.run_read(lambda s: plan(s, claim_statement(3).statement, params))
    assert "ix_uploads_unattached" not in found, found
    if ON_POSTGRES:
        assert "Index Scan using pk_uploads" in found, found
    else:  # by rowid, through the primary key or the owner's index
        assert "rowid=?" in found and "SCAN uploads" not in found, found


async def test_a_submission_finds_an_earlier_one_by_its_key_whatever_the_statistics(
    client: httpx.AsyncClient, login: Any, ctx: Context
) -> None:
    """The statistics are taken when the resident has one order; then 3,000 more of theirs
    arrive, each with its own Idempotency-Key. The submission's lookup of its key must go
    through the key's index, not read all of the resident's orders through theirs (which
    PostgreSQL chose while it expected one: 2.5-2.9 ms of its CPU a submission on a bench
    whose resident had made thousands, 1.7-1.8 ms through the key's index)."""
    made = await submit(client, await login("resident1"))
    assert made.status_code == 201, made.text
    await analyze(ctx)
    template = made.json()["id"]
    copy = order_copies(template, 3000, idempotency_key="'key-' || n")
    await ctx.db.run_write(lambda s: s.execute(text(copy)))
    resident = await ctx.db.run_read(lambda s: s.get(Order, template).resident_id)
    params = {"account": resident, "key": "key-2999", "village": None, "code": "RS-0001"}
    params["day"] = ctx.today()  # PostgreSQL's statement takes the number too, unless retried

    def explain(session: Session) -> str:
        context = SUBMISSION_CONTEXT[session.get_bind().dialect.name]
        return plan(session, context.statement, params)

    found = await ctx.db.run_read(explain)
    assert "ix_orders_idempotency" in found, found
    assert "ix_orders_resident" not in found, found
    assert "Seq Scan on orders" not in found and "SCAN orders" not in found, found


async def test_the_pre_review_queue_is_read_through_its_index(ctx: Context) -> None:
    """Its status test matches the partial index's predicate, or SQLite would scan the
    table (a row per photo ever declared) every few seconds. On PostgreSQL, whose empty
    table is best scanned, sequential scans are turned off: the index must fit."""
    now = ctx.now()
    for statement in (prereviews.next_up(now), prereviews.BACKLOG):

        def explain(session: Session, statement: ClauseElement = statement) -> str:
            if ON_POSTGRES:
                session.execute(text("SET LOCAL enable_seqscan = off"))
            return plan(session, statement, {})

        found = await ctx.db.run_read(explain)
        assert "ix_prereviews_queue" in found, found
        # (PostgreSQL may sort what the index gives: the queue holds at most its backlog)
        assert "TEMP B-TREE" not in found, found


@pytest.mark.parametrize("statistics", ["fresh", "stale"])
@pytest.mark.parametrize(
    ("role", "scope_of", "index"),
    [
        ("resident", "resident_id", "ix_orders_resident"),
        ("agent", "agent_id", "ix_orders_agent"),
        ("dispatcher", "town_id", "ix_orders_town"),
    ],
)
async def test_the_lists_read_a_page_through_their_index(
    client: httpx.AsyncClient,
    login: Any,
    ctx: Context,
    role: str,
    scope_of: str,
    index: str,
    statistics: str,
) -> None:
    """3,000 orders over three people, two agents and the demo's towns: a page of 20 is
    read from an index in its order (no sort of the whole list), whether the statistics
    were taken after them ("fresh") or before, when each had one order at most ("stale":
    PostgreSQL then expected one row, joined every match to the catalogue by merge joins,
    each after a sort, and sorted them all for the page: 5.9 ms for 1,973 orders, a
    third of the list reads a bench had given before its own submissions piled up)."""
    made = await submit(client, await login("resident1"))
    assert made.status_code == 201, made.text
    if statistics == "stale":
        await analyze(ctx)
    template = made.json()["id"]
    people = await ctx.db.run_read(lambda s: s.scalars(select(Account.id)).all())
    agents = await ctx.db.run_read(
        lambda s: s.scalars(select(Account.id).where(Account.role == "agent")).all()
    )
    copy = order_copies(
        template,
        3000,
        resident_id=f"CASE n % 3 WHEN 0 THEN {people[0]} WHEN 1 THEN {people[1]}"
        f" ELSE {people[-1]} END",
        agent_id=f"CASE n % 2 WHEN 0 THEN {agents[0]} ELSE {agents[-1]} END",
        priority="n % 2",
    )
    await ctx.db.run_write(lambda s: s.execute(text(copy)))
    if statistics == "fresh":
        await analyze(ctx)
    row = await ctx.db.run_read(lambda s: s.get(Order, template))
    assert row is not None
    scope = {"resident_id": people[0], "agent_id": agents[0], "town_id": row.town_id}[scope_of]
    statement = _list_statement(role, False, False, False, None, False, None).statement
    found = await ctx.db.run_read(lambda s: plan(s, statement, {"scope": scope, "limit": 21}))
    # The page comes out of an index in its order: never a scan and sort of every match.
    assert "TEMP B-TREE FOR ORDER BY" not in found and "Sort" not in found, found
    assert "Seq Scan on orders" not in found and "SCAN orders" not in found, found
    if ON_POSTGRES:
        # The list's index, or the primary key backwards with the filter when a third of
        # all orders match (PostgreSQL knows the held column orders nothing; both read
        # about a page's worth of rows)
        assert index in found or "Index Scan Backward using pk_orders" in found, found
    else:
        assert index in found, found


async def test_the_district_figures_read_the_period_through_indexes(
    client: httpx.AsyncClient, login: Any, ctx: Context
) -> None:
    """Each statement of a district's figures reads its orders through an index that leads
    with the district (a district of a province holds a hundredth of the orders), and the
    timeline's events through the figures' partial index or by order: without them every
    order and every event of the database was read (6 s for a month's figures at 5,000,000
    orders). On PostgreSQL, whose small tables are best scanned, sequential scans are
    turned off: an index must fit each statement."""
    resident = await login("resident1")
    made = await submit(client, resident)
    assert made.status_code == 201, made.text
    # most of them ended long ago, a few in progress (as in any district)
    status = "CASE n % 10 WHEN 0 THEN 'accepted' WHEN 1 THEN 'on_hold' ELSE 'closed' END"
    copy = order_copies(
        made.json()["id"],
        2000,
        status=status,
        accepted_at="CASE WHEN n % 10 = 1 THEN NULL ELSE submitted_at END",
        completed_at="CASE WHEN n % 10 > 1 THEN submitted_at END",
    )
    await ctx.db.run_write(lambda s: s.execute(text(copy)))
    await analyze(ctx)
    admin = await ctx.db.run_read(
        lambda s: s.scalar(select(Account).where(Account.openid == "dev_admin"))
    )
    principal = Principal(account_id=admin.id, role=admin.role, region_id=admin.region_id)
    today = ctx.today()

    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        flat = " ".join(statement.split())
        reads = flat.split(" WHERE ", 1)[0]  # the statement's own tables
        if " FROM orders" in reads or " FROM order_events" in reads:
            sent.append((flat, params))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        await ctx.db.run_long_read(
            lambda s: figures(s, ctx, principal, today - timedelta(days=30), today, Filters())
        )
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert len(sent) == 8, sent

    def explain(session: Session) -> list[str]:
        connection = session.connection()
        if ON_POSTGRES:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        prefix = "EXPLAIN" if ON_POSTGRES else "EXPLAIN QUERY PLAN"
        return [
            "\n".join(
                str(row[0] if ON_POSTGRES else row[-1])
                for row in connection.exec_driver_sql(f"{prefix} {statement}", params)
            )
            for statement, params in sent
        ]

    for (statement, _), found in zip(sent, await ctx.db.run_write(explain), strict=True):
        where = statement.split(" WHERE ", 1)[-1]
        assert "Seq Scan on orders" not in found and "SCAN orders" not in found, (statement, found)
        assert "Seq Scan on order_events" not in found, (statement, found)
        assert "SCAN order_events" not in found, (statement, found)
        if " FROM order_events" in statement and "action IN ('progress'" in where:
            assert "ix_order_events_figures" in found, (statement, found)
        elif "orders.status IN" in where:
            # in progress now: by the district, or (where the test's one district holds
            # every order) by the running statuses across districts
            assert "ix_orders_district_status" in found or "ix_orders_due" in found, found
        elif " FROM orders" in statement.split(" WHERE ", 1)[0]:
            assert "ix_orders_district_" in found, (statement, found)
        # (the supplement rate's events by order: no scan, as asserted above)


def test_the_open_orders_index_holds_the_open_statuses() -> None:
    """Its predicate is spelt by hand in the model (and the migration): it must name
    exactly the statuses of OPEN, or the board would count from a stale list."""
    listed = ", ".join(f"'{status}'" for status in sorted(OPEN))
    assert f"status IN ({listed})" == OPEN_PREDICATE
    assert str(OPEN_ORDER) == f"orders.{OPEN_PREDICATE}"


async def test_the_board_counts_each_agents_open_orders_through_their_index(
    client: httpx.AsyncClient, login: Any, ctx: Context
) -> None:
    """One probe of the open orders' partial index per agent. PostgreSQL read the agent's
    index (agent, status, …) filtering every order the agent ever had, 330 an agent in the
    simulated province (3 of the board's 15 ms)."""
    resident = await login("resident1")
    made = await submit(client, resident)
    assert made.status_code == 201, made.text
    status = "CASE n % 20 WHEN 0 THEN 'accepted' ELSE 'closed' END"
    copy = order_copies(made.json()["id"], 2000, status=status, agent_id=_any_agent())
    await ctx.db.run_write(lambda s: s.execute(text(copy)))
    await analyze(ctx)
    town = await ctx.db.run_read(
        lambda s: s.scalar(select(Account.region_id).where(Account.openid == "dev_dispatcher1a"))
    )

    def explain(session: Session) -> str:
        if ON_POSTGRES:
            session.execute(text("SET LOCAL enable_seqscan = off"))
        return plan(session, AGENTS, {"town": town})

    found = await ctx.db.run_write(explain)
    if ON_POSTGRES:
        assert "ix_orders_agent_open" in found, found
    else:  # SQLite seeks each status in the agent's index, as good: either will do
        assert "ix_orders_agent_open" in found or "(agent_id=? AND status=?)" in found, found


def _any_agent() -> str:
    return "(SELECT min(id) FROM accounts WHERE role = 'agent')"
