"""Bad input at the boundary: a clear 4xx problem, never a 500, and nothing changed.

Numbers no id can have, bodies nested a thousand deep, search text of 50,000 characters and
control characters in stored text, on every route at once where the rule is generic (the
routes are read from the app itself, so a new route is covered the day it is added)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import func, select

from app.asgi import create_app
from app.models import Account, Complaint, Order, OrderEvent, Rating
from tests.conftest import ON_POSTGRES
from tests.factories import submit

HUGE = [2**63, 10**30]
PROBLEM = "application/problem+json"


def _openapi(app: Litestar) -> dict[str, Any]:
    return app.openapi_schema.to_schema()


def _role_of(path: str) -> str:
    for prefix, handle in (
        ("/mp/v1/admin", "admin"),
        ("/mp/v1/dispatch", "dispatcher1a"),
        ("/mp/v1/agent", "agent1a"),
    ):
        if path.startswith(prefix):
            return handle
    return "resident1"


def _int_path_operations(app: Litestar) -> list[tuple[str, str]]:
    """(method, path) of every operation with an integer in its path."""
    found = []
    for path, item in _openapi(app)["paths"].items():
        for method, operation in item.items():
            params = operation.get("parameters", []) if isinstance(operation, dict) else []
            if any(p["in"] == "path" and _type(p["schema"]) == "integer" for p in params):
                found.append((method, path))
    return sorted(found)


def _type(schema: dict[str, Any]) -> str | None:
    kinds = [s.get("type") for s in [schema, *schema.get("oneOf", [])]]
    return next((k for k in kinds if k and k != "null"), None)


def _fill(path: str, value: int) -> str:
    return re.sub(r"\{[a-z_]*id\}|\{year\}", str(value), path).replace("{action}", "take")


async def test_every_integer_path_parameter_out_of_range_is_404(client, demo, login, settings):
    app = create_app(settings)
    operations = _int_path_operations(app)
    assert len(operations) >= 30  # the routes were found
    headers = {h: await login(h) for h in ("admin", "dispatcher1a", "agent1a", "resident1")}
    for method, path in operations:
        for value in HUGE:
            url = _fill(path, value)
            response = await client.request(
                method.upper(), url, json={}, headers=headers[_role_of(path)]
            )
            assert response.status_code == 404, (method, url, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.json()["code"] == "not_found"


def _integer_query_parameters(app: Litestar) -> list[tuple[str, str, str]]:
    found = []
    for path, item in _openapi(app)["paths"].items():
        operation = item.get("get")
        if not operation or "{" in path:
            continue
        for p in operation.get("parameters", []):
            if p["in"] == "query" and _type(p["schema"]) == "integer":
                found.append((path, p["name"], "2026-11-01"))
    return found


async def test_every_integer_query_parameter_out_of_range_is_422_naming_it(
    client, demo, login, settings
):
    params = _integer_query_parameters(create_app(settings))
    assert {name for _, name, _ in params} >= {"cursor", "villageId", "agentId", "actorId"}
    headers = {h: await login(h) for h in ("admin", "dispatcher1a", "agent1a", "resident1")}
    for path, name, day in params:
        for value in HUGE:
            query = {name: str(value), "from": day, "to": day, "regionId": "1", "villageId": "3"}
            query[name] = str(value)
            if "unmasked" in path:
                query["purpose"] = "核对"
            response = await client.get(path, params=query, headers=headers[_role_of(path)])
            assert response.status_code == 422, (path, name, response.text)
            assert name in [e["field"] for e in response.json()["errors"]], response.text


def test_every_query_parameter_is_bounded(settings):
    """Free text has a length limit and numbers a range, declared where Litestar enforces
    them (mini_program_api/params.py): a new route without them fails here."""
    unbounded = []
    for path, item in _openapi(create_app(settings))["paths"].items():
        for method, operation in item.items():
            for p in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = p["schema"]
                kind = _type(schema)
                merged = {**schema, **next(iter(schema.get("oneOf", [])), {})}
                if p["in"] == "query" and kind == "integer" and "maximum" not in merged:
                    unbounded.append((method, path, p["name"]))
                if (
                    p["in"] == "query"
                    and kind == "string"
                    and not {"maxLength", "enum", "format"} & set(merged)
                    and "enum" not in schema
                ):
                    unbounded.append((method, path, p["name"]))
    assert unbounded == []


async def test_body_ids_out_of_range_are_422_naming_the_field(client, demo, login):
    resident, admin = await login("resident1"), await login("admin")
    before = await client.get("/mp/v1/me", headers=resident)
    for value in HUGE:
        me = await client.patch("/mp/v1/me", json={"villageId": value}, headers=resident)
        assert me.status_code == 422 and me.json()["errors"][0]["field"] == "villageId"
        staff = await client.post(
            "/mp/v1/admin/staff",
            json={"role": "agent", "name": "测试员", "regionId": value, "post": "A"},
            headers=admin,
        )
        assert staff.status_code == 422 and "regionId" in staff.text
        complaint = await client.post(
            "/mp/v1/complaints", json={"orderId": value, "text": "不满意"}, headers=resident
        )
        assert complaint.status_code == 422 and complaint.json()["errors"][0]["field"] == "orderId"
    assert (await client.get("/mp/v1/me", headers=resident)).json() == before.json()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_a_body_nested_a_thousand_deep_is_400(client, demo, login):
    resident = await login("resident1")
    for body in (_nested(1000), '{"a":' * 1000 + "1" + "}" * 1000):
        for method, url, headers in (
            ("POST", "/mp/v1/auth/login", {}),
            ("PATCH", "/mp/v1/me", resident),
            ("POST", "/mp/v1/complaints", resident),
        ):
            response = await client.request(
                method,
                url,
                content=body,
                headers={**headers, "content-type": "application/json"},
            )
            assert response.status_code == 400, (url, response.text)
            assert response.json()["code"] == "body_too_deep"


async def test_unbalanced_or_unclosed_bodies_are_refused_at_once(client, demo):
    import time

    for body in (
        '{"code":' + "[" * 50_000 + "}",  # brackets that never close
        "[" * 40 + '"' + '\\"' * 200_000,  # a string that never closes: no quadratic scan
    ):
        started = time.perf_counter()
        response = await client.post(
            "/mp/v1/auth/login", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert time.perf_counter() - started < 2.0


async def test_search_text_of_fifty_thousand_characters_is_422(client, demo):
    response = await client.get("/mp/v1/catalogue/items", params={"q": "a" * 50_000})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "q"
    assert (await client.get("/mp/v1/catalogue/items", params={"q": "养老"})).status_code == 200


async def test_a_catalogue_cursor_that_decodes_to_a_huge_number_is_422(client, demo):
    import base64

    for raw in (f"{2**63}:RS-0001", f"{10**30}:RS-0001", "1:", "x"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        response = await client.get("/mp/v1/catalogue/items", params={"cursor": cursor})
        assert response.status_code == 422, (raw, response.text)


async def _count(ctx, model) -> int:
    return int(
        await ctx.db.run_read(lambda s: s.scalar(select(func.count()).select_from(model))) or 0
    )


async def test_a_nul_in_an_order_note_is_refused_and_no_order_is_made(client, demo, login, ctx):
    resident = await login("resident1")
    orders = await _count(ctx, Order)
    response = await submit(client, resident, note="请尽快\x00办理")
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "note", "message": "不能含有控制字符(如 NUL)"}]
    assert await _count(ctx, Order) == orders
    multiline = await submit(client, resident, note="第一行\n第二行\t(白天联系)")
    assert multiline.status_code == 201, multiline.text
    assert multiline.json()["note"] == "第一行\n第二行\t(白天联系)"


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m", "\x7f", "\n", "\t"])
async def test_control_characters_and_line_breaks_in_a_name_are_refused(client, demo, bad, login):
    resident = await login("resident1")
    response = await client.patch("/mp/v1/me", json={"name": f"张{bad}三"}, headers=resident)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"
    assert (await client.get("/mp/v1/me", headers=resident)).json()["name"] == "张秀英"


async def test_every_free_text_a_resident_writes_is_checked(client, demo, login, ctx):
    resident = await login("resident1")
    complaints = await _count(ctx, Complaint)
    response = await client.post(
        "/mp/v1/complaints", json={"text": "态度不好\x00"}, headers=resident
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "text"
    assert await _count(ctx, Complaint) == complaints
    ratings = await _count(ctx, Rating)
    rating = await client.post(
        "/mp/v1/orders/1/rating", json={"grade": 5, "comment": "好\x00"}, headers=resident
    )
    assert rating.status_code == 422 and rating.json()["errors"][0]["field"] == "comment"
    assert await _count(ctx, Rating) == ratings


async def test_a_nested_field_with_a_control_character_is_named_by_its_path(client, demo, login):
    from tests.factories import taken_by_agent1a

    order = await submit(client, await login("resident1"))
    agent = await taken_by_agent1a(client, login, order.json()["id"])
    response = await client.post(
        f"/mp/v1/agent/orders/{order.json()['id']}/request-supplement",
        json={"missing": [{"code": "id_card", "reason": "看不清\x00"}], "reason": "a\x01"},
        headers=agent,
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"reason", "missing[0].reason"}


async def test_control_characters_in_a_query_or_path_are_refused(client, demo, login):
    response = await client.get("/mp/v1/catalogue/items", params={"q": "养\x00老"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "q"
    response = await client.get("/mp/v1/catalogue/items/RS-0001%00")
    assert response.status_code == 404
    headers = {**await login("resident1"), "Idempotency-Key": "tap\x01" + uuid.uuid4().hex}
    response = await client.post("/mp/v1/orders", json={"itemCode": "RS-0001"}, headers=headers)
    assert response.status_code in (400, 422)


async def test_text_already_stored_cannot_break_the_ledger_or_an_export(
    client, demo, login, clock, ctx
):
    """A row written before the rule (PostgreSQL refuses NUL itself, so SQLite holds one;
    both hold the other C0 characters) and a name that looks like a formula."""
    import io

    from openpyxl import load_workbook
    from sqlalchemy import update

    from app.ledger import files as ledger_files
    from tests.notifications.test_reminders import at

    clock.current = at(2026, 10, 12, 10, 0)
    order = await submit(client, await login("resident2"))
    assert order.status_code == 201
    bad = "\x01记得\x0b带\x1f章" + ("" if ON_POSTGRES else "\x00")

    def spoil(session) -> None:
        session.execute(update(Order).values(note=bad))
        session.execute(update(OrderEvent).values(note=bad))
        session.execute(update(Account).where(Account.name == "李建国").values(name="=1\x02+2"))

    await ctx.db.run_write(spoil)
    clock.current = at(2026, 11, 5, 10, 0)
    built = await ledger_files.build_missing(ctx)
    assert built.failed == [] and built.built == 8
    dispatcher = await login("dispatcher2a")
    village = next(
        f
        for f in (await client.get("/mp/v1/dispatch/ledgers", headers=dispatcher)).json()
        if f["regionName"] == "西集村"
    )
    ledger = load_workbook(io.BytesIO((await client.get(village["url"])).content))
    assert "记得带章" in [c.value for row in ledger["工作日志"].iter_rows() for c in row]
    export = await client.get(
        "/mp/v1/admin/orders/export-unmasked",
        params={"from": "2026-10-01", "to": "2026-10-31", "purpose": "区医保局核对参保名单"},
        headers=await login("admin"),
    )
    assert export.status_code == 200, export.text
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    cell = next(c for row in sheet.iter_rows(min_row=2) for c in row if c.value == "=1+2")
    assert cell.data_type == "s"  # kept as text, not a formula


async def test_a_ledger_build_that_fails_says_so_and_the_month_can_be_rebuilt(
    client, demo, login, clock, ctx, settings
):
    from pathlib import Path

    from tests.notifications.test_reminders import at

    clock.current = at(2026, 11, 5, 10, 0)
    admin = await login("admin")
    # A file where the month's folder must go: every write of that month's ledgers fails.
    objects = Path(settings.storage.local_dir or Path(settings.core.var_dir) / "objects")
    blocker = objects / "ledgers" / "2026-10"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    failed = await client.post(
        "/mp/v1/admin/ledgers/build", json={"month": "2026-10"}, headers=admin
    )
    assert failed.status_code == 200, failed.text
    answer = failed.json()
    assert answer["built"] == 0 and len(answer["failed"]) == 8
    assert {"regionId", "regionName", "reason"} <= set(answer["failed"][0])
    jobs = (await client.get("/mp/v1/admin/jobs", headers=admin)).json()
    run = next(r for r in jobs["latest"] if r["job"] == "ledgers")
    assert run["error"] and "8 份台账未能生成" in run["error"] and run["finishedAt"]
    blocker.unlink()
    rebuilt = await client.post(
        "/mp/v1/admin/ledgers/build", json={"month": "2026-10"}, headers=admin
    )
    assert rebuilt.json() == {"month": "2026-10", "built": 8, "failed": []}
    jobs = (await client.get("/mp/v1/admin/jobs", headers=admin)).json()
    assert next(r for r in jobs["latest"] if r["job"] == "ledgers")["error"] is None


def test_a_second_serve_on_a_port_in_use_refuses_to_start(tmp_path):
    """granian binds with SO_REUSEPORT; a listener that did the same holds the port here."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = {
            **os.environ,
            "DAIBAN_VAR_DIR": str(tmp_path),
            "DAIBAN_SERVER_PORT": str(port),
            "DAIBAN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
        }
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert not (tmp_path / "db.sqlite3").exists()  # refused before touching anything
