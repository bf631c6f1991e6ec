"""Hot writes straight on sqlite3 (app/statements.py) store exactly what SQLAlchemy stores,
raise SQLAlchemy's own errors, refuse what they cannot do, and leave other drivers to
SQLAlchemy (the whole suite runs them on PostgreSQL too)."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from app.context import Context
from app.db import _sqlite_long_read_engine, _sqlite_sync_engine, json_text
from app.models import Account
from app.models.base import UTCDateTime
from app.statements import READ_CONNECTION, DriverStatement, _values, connection_of
from tests.conftest import make_settings

METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False, unique=True),
    Column("at", UTCDateTime),
    Column("day", Date),
    Column("data", JSON),
    Column("flag", Boolean),
    Column("kind", String(10)),
)
WITH_DEFAULT = Table(
    "with_default",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("n", Integer, default=7),
)
BEIJING = timezone(timedelta(hours=8))


def values(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "at": datetime(2026, 10, 8, 9, 30, 15, 123456, tzinfo=BEIJING),
        "day": date(2026, 10, 8),
        "data": {"rule": "A岗", "ids": [1, 2], "nested": {"ok": True}},
        "flag": True,
        "kind": "pool",
    }


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'statements.sqlite3'}", json_serializer=json_text
    )
    METADATA.create_all(engine)
    return engine


def test_driver_insert_stores_what_sqlalchemy_stores(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(THINGS), values("by-sqlalchemy"))
        DriverStatement(insert(THINGS)).many(conn, [values("by-driver")])
        stored = conn.exec_driver_sql(
            "SELECT at, typeof(at), day, typeof(day), data, flag, typeof(flag), kind "
            "FROM things ORDER BY id"
        ).all()
        read = conn.execute(select(THINGS).order_by(THINGS.c.id)).all()
    assert stored[0] == stored[1]
    assert stored[0][0] == "2026-10-08 01:30:15.123456"  # UTC, as every timestamp
    assert read[0][2:] == read[1][2:]  # all but the id and the name
    assert read[1].at == datetime(2026, 10, 8, 1, 30, 15, 123456, tzinfo=UTC)
    assert read[1].data == values("x")["data"]


def test_returning_gives_the_value_and_rowcount_counts_only_matching_rows(engine: Engine) -> None:
    returning = DriverStatement(insert(THINGS).returning(THINGS.c.id))
    # "pool" is a literal written into the statement, not a parameter given at run time.
    retag = DriverStatement(
        update(THINGS)
        .where(THINGS.c.id == bindparam("target"), THINGS.c.kind == "pool")
        .values(kind=bindparam("new_kind"))
    )
    with engine.begin() as conn:
        first = returning.returned(conn, values("one"))
        second = returning.returned(conn, values("two") | {"kind": "other"})
        assert (first, second) == (1, 2)
        assert retag.rowcount(conn, {"target": first, "new_kind": "done"}) == 1
        assert retag.rowcount(conn, {"target": second, "new_kind": "done"}) == 0
        assert retag.rowcount(conn, {"target": first, "new_kind": "again"}) == 0
        kinds = conn.execute(select(THINGS.c.kind).order_by(THINGS.c.id)).scalars().all()
    assert kinds == ["done", "other"]


def test_text_statement_with_typed_parameters(engine: Engine) -> None:
    upsert = DriverStatement(
        text(
            "INSERT INTO things (name, day, data) VALUES (:name, :day, :data) "
            "ON CONFLICT (name) DO UPDATE SET day = excluded.day RETURNING id"
        ).bindparams(bindparam("day", type_=Date), bindparam("data", type_=JSON))
    )
    with engine.begin() as conn:
        one = upsert.returned(conn, {"name": "n", "day": date(2026, 1, 1), "data": ["甲"]})
        again = upsert.returned(conn, {"name": "n", "day": date(2026, 1, 2), "data": None})
        row = conn.execute(select(THINGS.c.day, THINGS.c.data)).one()
    assert one == again
    assert row == (date(2026, 1, 2), ["甲"])


def test_driver_error_is_sqlalchemys_and_the_transaction_goes_on(engine: Engine) -> None:
    add = DriverStatement(insert(THINGS))
    with engine.begin() as conn:
        add.many(conn, [values("same")])
        savepoint = conn.begin_nested()
        with pytest.raises(IntegrityError) as raised:
            add.many(conn, [values("other"), values("same")])
        savepoint.rollback()
        assert "UNIQUE" in str(raised.value.orig)
        add.many(conn, [values("third")])
        names = conn.execute(select(THINGS.c.name).order_by(THINGS.c.id)).scalars().all()
    assert names == ["same", "third"]


def test_what_it_cannot_do_is_refused_before_anything_is_written(engine: Engine) -> None:
    expanding = DriverStatement(
        update(THINGS).where(THINGS.c.id.in_(bindparam("ids", expanding=True))).values(kind="x")
    )
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="column default"):
            DriverStatement(insert(WITH_DEFAULT)).many(conn, [{"id": 1}])
        with pytest.raises(ValueError, match="rendered at run time"):
            expanding.rowcount(conn, {"ids": [1, 2]})
        with pytest.raises(ValueError, match="no value given for new_kind"):
            DriverStatement(update(THINGS).values(kind=bindparam("new_kind"))).rowcount(conn, {})
        assert conn.exec_driver_sql("SELECT count(*) FROM with_default").scalar() == 0


async def test_other_drivers_run_it_through_sqlalchemy(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.sqlite3'}")
    returning = DriverStatement(insert(THINGS).returning(THINGS.c.id))
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
        new_id = await conn.run_sync(lambda c: returning.returned(c, values("async")))
        name = (await conn.execute(select(THINGS.c.name).where(THINGS.c.id == new_id))).scalar()
    await engine.dispose()
    assert name == "async"


def test_it_begins_a_transaction_as_sqlalchemy_would(engine: Engine) -> None:
    with engine.connect() as conn:  # no transaction begun yet
        DriverStatement(insert(THINGS)).many(conn, [values("rolled-back")])
        assert conn.in_transaction()
        conn.rollback()
        assert conn.execute(select(THINGS.c.name)).all() == []


def test_each_engine_gets_its_own_type_processors(engine: Engine, tmp_path: Path) -> None:
    add = DriverStatement(insert(THINGS))
    standard = create_engine(f"sqlite:///{tmp_path / 'standard.sqlite3'}")  # json.dumps
    METADATA.create_all(standard)
    for each in (engine, standard):
        with each.begin() as conn:
            add.many(conn, [values("driver")])
            conn.execute(insert(THINGS), values("sqlalchemy"))
            texts = conn.exec_driver_sql("SELECT data FROM things ORDER BY id").scalars().all()
        assert texts[0] == texts[1]
    standard.dispose()


def test_a_value_it_cannot_bind_is_a_statement_error(engine: Engine) -> None:
    naive = values("naive") | {"at": datetime(2026, 10, 8, 9, 30)}
    with engine.begin() as conn, pytest.raises(StatementError, match="naive datetime"):
        DriverStatement(insert(THINGS)).many(conn, [naive])


# --- SQLAlchemy internals ---------------------------------------------------------------
# app/statements.py and app/db.py reach past SQLAlchemy's public API (see the docstring of
# app/statements.py). Each test below checks one of those internals on a real SQLite
# database and names it when a SQLAlchemy release no longer behaves as assumed: such a
# release must not be let in by the pin in pyproject.toml until the code is adapted.


def relied_on(holds: bool, internal: str, found: Any = None) -> None:
    if not holds:
        pytest.fail(
            f"SQLAlchemy {sqlalchemy.__version__}: {internal} is not as app/statements.py or "
            f"app/db.py relies on it to be (found: {found!r})",
            pytrace=False,
        )


def internal(obj: Any, attribute: str) -> Any:
    relied_on(hasattr(obj, attribute), f"{type(obj).__name__}.{attribute}", "no such attribute")
    return getattr(obj, attribute)


RETAG = (
    update(THINGS)
    .where(THINGS.c.id == bindparam("target"), THINGS.c.kind == "pool")
    .values(kind=bindparam("new_kind"))
)


def test_sqlalchemy_internals_pysqlite_is_recognised(engine: Engine) -> None:
    dialect = engine.dialect
    relied_on(
        (dialect.name, dialect.driver) == ("sqlite", "pysqlite"),
        "Dialect.name / Dialect.driver of sqlite:// (statements._is_pysqlite)",
        (dialect.name, dialect.driver),
    )
    relied_on(
        dialect.paramstyle == "qmark", "the pysqlite dialect's paramstyle", dialect.paramstyle
    )
    with engine.connect() as conn:
        proxied = internal(conn, "connection")
        relied_on(
            isinstance(internal(proxied, "driver_connection"), sqlite3.Connection),
            "Connection.connection.driver_connection being the sqlite3 connection "
            "(statements.driver)",
            type(proxied.driver_connection),
        )


def test_sqlalchemy_internals_compiled_statement_is_positional(engine: Engine) -> None:
    compiled = RETAG.compile(dialect=engine.dialect, column_keys=["target", "new_kind"])
    relied_on(isinstance(compiled, SQLCompiler), "Update.compile() giving a SQLCompiler", compiled)
    assert isinstance(compiled, SQLCompiler)
    names = internal(compiled, "positiontup")
    sql = internal(compiled, "string")
    relied_on(
        names is not None and list(names[:2]) == ["new_kind", "target"] and len(names) == 3,
        "SQLCompiler.positiontup: the bind names in the order of the ? in SQLCompiler.string",
        names,
    )
    relied_on(sql.count("?") == len(names), "SQLCompiler.string with one ? per bind", sql)
    binds = internal(compiled, "binds")
    for name in names:
        relied_on(
            isinstance(binds.get(name), BindParameter),
            "SQLCompiler.binds: each name of positiontup to its BindParameter",
            (name, sorted(map(str, binds))),
        )


def test_sqlalchemy_internals_column_keys_choose_what_an_insert_sets(engine: Engine) -> None:
    compiled = insert(THINGS).compile(dialect=engine.dialect, column_keys=["flag", "name"])
    assert isinstance(compiled, SQLCompiler)
    relied_on(
        compiled.string == "INSERT INTO things (name, flag) VALUES (?, ?)"
        and list(compiled.positiontup or ()) == ["name", "flag"],
        "ClauseElement.compile(column_keys=...) setting only the given columns",
        (compiled.string, compiled.positiontup),
    )


def test_sqlalchemy_internals_python_side_defaults_are_prefetched(engine: Engine) -> None:
    stamped = Table(
        "stamped",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer, onupdate=1),
    )
    dialect = engine.dialect
    missing = insert(WITH_DEFAULT).compile(dialect=dialect, column_keys=["id"])
    given = insert(WITH_DEFAULT).compile(dialect=dialect, column_keys=["id", "n"])
    updated = update(stamped).compile(dialect=dialect, column_keys=["id"])
    relied_on(
        list(internal(missing, "insert_prefetch")) == [WITH_DEFAULT.c.n]
        and list(internal(given, "insert_prefetch")) == [],
        "SQLCompiler.insert_prefetch: the columns whose Python-side default is to be filled",
        (missing.insert_prefetch, given.insert_prefetch),  # type: ignore[attr-defined]
    )
    relied_on(
        list(internal(updated, "update_prefetch")) == [stamped.c.n],
        "SQLCompiler.update_prefetch: the columns whose Python-side onupdate is to be filled",
        updated.update_prefetch,  # type: ignore[attr-defined]
    )


def test_sqlalchemy_internals_bind_parameters_say_how_they_get_a_value(engine: Engine) -> None:
    def binds(statement: Any) -> dict[str, BindParameter[Any]]:
        compiled = statement.compile(dialect=engine.dialect)
        return {name: compiled.binds[name] for name in compiled.positiontup}

    retag = binds(RETAG)
    literal = next(bind for name, bind in retag.items() if name not in ("target", "new_kind"))
    relied_on(
        (literal.value, literal.callable, literal.required) == ("pool", None, False),
        "BindParameter .value / .callable / .required of a literal written in a statement",
        (literal.value, literal.callable, literal.required),
    )
    relied_on(
        retag["new_kind"].required is True and retag["new_kind"].callable is None,
        "BindParameter.required of a bindparam() without a value",
        (retag["new_kind"].required, retag["new_kind"].callable),
    )
    relied_on(
        not literal.expanding and not literal.literal_execute,
        "BindParameter .expanding / .literal_execute of a plain parameter",
        (literal.expanding, literal.literal_execute),
    )
    listed = update(THINGS).where(THINGS.c.id.in_([1, 2])).values(kind="x")
    relied_on(
        any(bind.expanding for bind in binds(listed).values()),
        "BindParameter.expanding for an IN list",
        binds(listed),
    )
    late = update(THINGS).values(kind=bindparam("k", "x", literal_execute=True))
    relied_on(
        bool(binds(late)["k"].literal_execute),
        "BindParameter.literal_execute",
        binds(late)["k"].literal_execute,
    )
    computed = update(THINGS).values(kind=bindparam("k", callable_=lambda: "x"))
    relied_on(
        binds(computed)["k"].callable is not None,
        "BindParameter.callable of bindparam(callable_=...)",
        binds(computed)["k"].callable,
    )


def test_sqlalchemy_internals_bind_processors_are_what_sqlalchemy_sends(engine: Engine) -> None:
    """SQLAlchemy's own execute sends sqlite3 the very SQL and values DriverStatement builds
    from SQLCompiler.positiontup / .binds and TypeEngine.dialect_impl().bind_processor()."""
    sent: list[tuple[str, tuple[Any, ...]]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _sent(conn: Any, cursor: Any, sql: str, parameters: Any, *rest: Any) -> None:
        sent.append((sql, tuple(parameters)))

    upsert = text(
        "INSERT INTO things (name, day, data) VALUES (:name, :day, :data) "
        "ON CONFLICT (name) DO UPDATE SET day = excluded.day RETURNING id"
    ).bindparams(bindparam("day", type_=Date), bindparam("data", type_=JSON))
    cases: list[tuple[Any, dict[str, Any]]] = [
        (insert(THINGS), values("one")),
        (insert(THINGS).returning(THINGS.c.id), values("two")),
        (RETAG, {"target": 1, "new_kind": "done"}),
        (upsert, {"name": "three", "day": date(2026, 1, 2), "data": {"甲": [1, True]}}),
    ]
    with engine.begin() as conn:
        for statement, params in cases:
            sent.clear()
            conn.execute(statement, params).close()
            sql, binds = DriverStatement(statement)._prepare(conn.dialect, params)
            relied_on(
                sent == [(sql, _values(sql, binds, params))],
                "the SQL and values SQLAlchemy's execute sends the driver (compiled string, "
                "positiontup order, TypeEngine.dialect_impl(dialect).bind_processor(dialect))",
                (sent, (sql, _values(sql, binds, params))),
            )
    event.remove(engine, "before_cursor_execute", _sent)


def test_sqlalchemy_internals_driver_errors_are_wrapped_by_class(engine: Engine) -> None:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER UNIQUE)")
    raw.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as raised:
        raw.execute("INSERT INTO t VALUES (?)", (1,))
    raw.close()
    exc = raised.value
    wrapped = DBAPIError.instance("INSERT", (1,), exc, sqlite3.Error, dialect=engine.dialect)
    relied_on(
        isinstance(wrapped, IntegrityError)
        and (wrapped.orig, wrapped.statement, wrapped.params) == (exc, "INSERT", (1,)),
        "DBAPIError.instance(statement, params, orig, dbapi_base_err, dialect=) mapping a "
        "sqlite3 error to SQLAlchemy's class of the same name",
        wrapped,
    )
    error = StatementError("(ValueError) no", "INSERT", {"a": 1}, ValueError("no"))
    relied_on(
        (error.statement, error.params, type(error.orig)) == ("INSERT", {"a": 1}, ValueError),
        "StatementError(message, statement, params, orig)",
        error,
    )


def test_sqlalchemy_internals_dialect_overrides_begin_and_take_savepoints(
    tmp_path: Path,
) -> None:
    """app/db.py sets do_begin, do_savepoint, do_release_savepoint and
    do_rollback_to_savepoint on the pysqlite dialect instance: SQLAlchemy must look them up
    there at each call and call them as (pool connection) and (Connection, name), and they
    must be what issues BEGIN IMMEDIATE and the savepoints the group-commit writer takes."""
    path = tmp_path / "overrides.sqlite3"
    settings = make_settings(tmp_path / "var", f"sqlite+aiosqlite:///{path}")
    url = make_url(f"sqlite+pysqlite:///{path}")
    engine = _sqlite_sync_engine(url, settings, immediate=True)
    METADATA.create_all(engine)
    engine.dispose()
    traced: list[str] = []
    event.listen(engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(traced.append))
    through_sqlalchemy: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _sent(conn: Any, cursor: Any, sql: str, *rest: Any) -> None:
        through_sqlalchemy.append(sql)

    calls: list[tuple[str, tuple[Any, ...], type]] = []
    dialect: Any = engine.dialect
    for name in ("do_begin", "do_savepoint", "do_release_savepoint", "do_rollback_to_savepoint"):
        ours = vars(dialect).get(name)
        relied_on(ours is not None, f"Dialect.{name} set on the engine's dialect instance")

        def spy(*args: Any, _ours: Any = ours, _name: str = name) -> Any:
            # the driver connection under the first argument, while it is checked out
            calls.append((_name, args, type(getattr(args[0], "driver_connection", None))))
            return _ours(*args)

        setattr(dialect, name, spy)

    with Session(engine) as session, session.begin():
        session.execute(insert(THINGS), values("a"))
        with session.begin_nested():
            session.execute(insert(THINGS), values("b"))
        with pytest.raises(IntegrityError), session.begin_nested():
            session.execute(insert(THINGS), values("a"))
    with engine.connect() as conn:
        names = conn.execute(select(THINGS.c.name).order_by(THINGS.c.id)).scalars().all()
    engine.dispose()

    assert names == ["a", "b"]
    relied_on(
        [call for call, *_ in calls]
        == [
            *("do_begin", "do_savepoint", "do_release_savepoint"),
            *("do_savepoint", "do_rollback_to_savepoint", "do_begin"),
        ],
        "the calls of Dialect.do_begin / do_savepoint / do_release_savepoint / "
        "do_rollback_to_savepoint for Session.begin() and begin_nested()",
        [call for call, *_ in calls],
    )
    for call, args, under in calls:
        if call == "do_begin":
            relied_on(
                len(args) == 1 and under is sqlite3.Connection,
                "Dialect.do_begin(dbapi_connection) given the pool's connection",
                args,
            )
        else:
            relied_on(
                len(args) == 2
                and isinstance(args[0], Connection)
                and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args[1]) is not None,
                f"Dialect.{call}(connection, name) given a Connection and a plain name",
                args,
            )
    first, second = calls[1][1][1], calls[3][1][1]
    issued = [sql for sql in traced if not sql.startswith(("INSERT", "SELECT"))]
    relied_on(
        issued
        == [
            *("BEGIN IMMEDIATE", f"SAVEPOINT {first}", f"RELEASE {first}"),
            *(f"SAVEPOINT {second}", f"ROLLBACK TO {second}", "COMMIT"),
            *("BEGIN IMMEDIATE", "ROLLBACK"),
        ],
        "what the overridden dialect methods make SQLite run (sqlite3 trace)",
        issued,
    )
    relied_on(
        all(sql.startswith(("INSERT", "SELECT")) for sql in through_sqlalchemy),
        "BEGIN and savepoints bypassing SQLAlchemy's cursor execute",
        through_sqlalchemy,
    )


def test_sqlalchemy_internals_readers_begin_deferred(tmp_path: Path) -> None:
    path = tmp_path / "reader.sqlite3"
    settings = make_settings(tmp_path / "var", f"sqlite+aiosqlite:///{path}")
    engine = _sqlite_sync_engine(make_url(f"sqlite+pysqlite:///{path}"), settings, immediate=False)
    traced: list[str] = []
    event.listen(engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(traced.append))
    with engine.connect() as conn, conn.begin():
        conn.execute(select(1)).all()
    engine.dispose()
    relied_on(
        traced == ["BEGIN", "SELECT 1", "COMMIT"],
        "Dialect.do_begin called on Connection.begin() (reader: BEGIN)",
        traced,
    )


async def test_sqlalchemy_internals_async_reader_begins_and_never_writes(tmp_path: Path) -> None:
    """The aiosqlite engine (long reads) sets isolation_level through SQLAlchemy's adapter
    connection and BEGINs in a "begin" event: its transaction starts at begin() and, being
    deferred, leaves SQLite's write lock to the writer thread."""
    path = tmp_path / "async.sqlite3"
    engine = _sqlite_long_read_engine(
        make_settings(tmp_path / "var", f"sqlite+aiosqlite:///{path}")
    )
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            relied_on(
                raw.driver_connection.isolation_level is None,
                "the aiosqlite adapter connection's isolation_level setter",
                raw.driver_connection.isolation_level,
            )
            async with conn.begin():
                relied_on(
                    raw.driver_connection.in_transaction,
                    'ConnectionEvents "begin" + exec_driver_sql("BEGIN") on aiosqlite',
                    raw.driver_connection.in_transaction,
                )
                await conn.execute(select(1))
                other.execute("BEGIN IMMEDIATE")  # the reader holds no write lock
                other.execute("ROLLBACK")
    finally:
        other.close()
        await engine.dispose()


async def test_a_reads_statements_run_on_its_connection_without_a_session_transaction(
    ctx: Context, demo: None
) -> None:
    """`connection_of` in a read (`run_read`) is the connection the read was given: a
    driver statement there starts no session transaction and reads what a session would."""
    count = DriverStatement(select(func.count()).select_from(Account.__table__))

    def read(session: Session) -> tuple[bool, bool, int, int]:
        conn = connection_of(session)
        given = conn is session.info[READ_CONNECTION]
        n = int(count.one(conn, {})[0])
        return given, session.in_transaction(), n, int(session.scalar(count.statement) or 0)

    given, in_transaction, n, by_session = await ctx.db.run_read(read)
    assert given and not in_transaction
    assert n == by_session > 0


async def test_a_writes_statements_run_in_its_transaction(ctx: Context, demo: None) -> None:
    """`connection_of` in a write is the write's transaction: what a driver statement writes
    there is committed with it, and undone with it when the write fails."""
    rename = DriverStatement(
        update(Account.__table__)
        .where(Account.__table__.c.openid == bindparam("who"))
        .values(name=bindparam("new_name"), updated_at=bindparam("at"))
    )

    def name_of(session: Session) -> str:
        return str(session.scalar(select(Account.name).where(Account.openid == "dev_agent1a")))

    def write(session: Session, name: str, fail: bool) -> None:
        assert READ_CONNECTION not in session.info
        assert rename.rowcount(
            connection_of(session), {"who": "dev_agent1a", "new_name": name, "at": ctx.now()}
        )
        if fail:
            raise RuntimeError("the write fails after the statement")

    before = await ctx.db.run_read(name_of)
    with pytest.raises(RuntimeError):
        await ctx.db.run_write(lambda s: write(s, "改名甲", True))
    assert await ctx.db.run_read(name_of) == before
    await ctx.db.run_write(lambda s: write(s, "改名乙", False))
    assert await ctx.db.run_read(name_of) == "改名乙"
