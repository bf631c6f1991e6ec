"""智能预审 end to end through the HTTP API: photos of made-up cards (bench/prereview_set.py)
uploaded as identity documents, read by the real `prereview` job with the real recogniser,
and what the resident, the agent, dispatchers and monitoring see of it."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import sys
import uuid
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select, update

from app.asgi import create_app
from app.context import Context
from app.demo import demo_id_number
from app.models import AuditEntry, JobRun, Prereview, Upload
from app.prereview import Engine
from app.retention.files import remove_files
from app.security.pii import cipher_for
from app.settings import PrereviewSettings
from jobs import tasks
from tests.conftest import make_settings, serve, settings_env
from tests.console.signing_in import sign_in
from tests.factories import taken_by_agent1a, upload_photo
from tests.prereview.conftest import ROOT

pytestmark = pytest.mark.usefixtures("demo")

RESIDENT1 = demo_id_number("370406", "19480312", "022")  # 张秀英, resident1


def person(drawn: ModuleType, *, seed: int, expired: bool = False, own: bool = False) -> Any:
    """A made-up person; `own`: with resident1's name and number (her own card)."""
    someone = drawn.make_person(random.Random(seed), expired=expired)
    if own:
        someone.name, someone.sex, someone.birth = "张秀英", "女", date(1948, 3, 12)
        someone.id_number = RESIDENT1
    return someone


def photo(drawn: ModuleType, side: str, someone: Any, seed: int) -> bytes:
    rnd = random.Random(seed)
    render = {"front": drawn.render_front, "back": drawn.render_back}[side]
    return bytes(drawn.photograph(render(someone, rnd), "none", rnd))


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    document: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"purpose": "material", "contentType": "image/jpeg", "size": len(data)}
    if document:
        body["document"] = document
    ticket = (await client.post("/mp/v1/uploads", json=body, headers=headers)).json()
    files = {ticket["fileField"]: ("photo.jpg", data, "image/jpeg")}
    posted = await client.post(ticket["url"], data=ticket["fields"], files=files)
    assert posted.status_code == 204, posted.text
    done = await client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    return dict(done.json())


async def seen(client: httpx.AsyncClient, headers: dict[str, str], upload_id: int) -> Any:
    answer = await client.get(f"/mp/v1/uploads/{upload_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["prereview"]


async def links(client: httpx.AsyncClient, headers: dict[str, str], upload_id: int) -> Any:
    answer = await client.get(f"/mp/v1/uploads/{upload_id}/url", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["prereview"]


def codes(prereview: dict[str, Any]) -> list[str]:
    return [f["code"] for f in prereview["findings"]]


async def submitted(client: httpx.AsyncClient, headers: dict[str, str], uploads: list[int]) -> int:
    """resident's RS-0009 (资格认证: the ID card only) with these photos."""
    answer = await client.post(
        "/mp/v1/orders",
        json={"itemCode": "RS-0009", "materials": {"id_card": uploads}},
        headers={**headers, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"},
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


async def test_the_wrong_side_is_hinted_to_the_resident_once_read(
    client: httpx.AsyncClient, login: Any, ctx: Context, drawn: ModuleType, engine: Engine
) -> None:
    resident = await login("resident1")
    front = photo(drawn, "front", person(drawn, seed=1, own=True), 1)
    done = await upload(client, resident, front, "id_card_back")
    # Completing never waits for the reading: it is queued.
    assert done["prereview"]["status"] == "queued"
    assert done["prereview"]["findings"] == []
    assert await tasks.prereview(ctx) == 1
    shown = await seen(client, resident, done["id"])
    assert shown["status"] == "read"
    assert shown["kind"] == "id_card_front"
    assert shown["findings"] == [
        {"code": "wrong_side", "message": "这张像是身份证正面，这里需要反面", "severity": "warning"}
    ]
    # Read once: the next run finds nothing to do, and records no run for it.
    runs = await ctx.db.run_read(lambda s: s.scalar(select(func.count()).select_from(JobRun)))
    assert await tasks.prereview(ctx) == 0
    assert (
        await ctx.db.run_read(lambda s: s.scalar(select(func.count()).select_from(JobRun))) == runs
    )


async def test_an_expired_card_is_flagged(
    client: httpx.AsyncClient, login: Any, ctx: Context, drawn: ModuleType, engine: Engine
) -> None:
    resident = await login("resident1")
    back = photo(drawn, "back", person(drawn, seed=2, own=True, expired=True), 2)
    done = await upload(client, resident, back, "id_card_back")
    await tasks.prereview(ctx)
    shown = await seen(client, resident, done["id"])
    assert codes(shown) == ["expired"]
    assert shown["findings"][0]["message"] == "证件已过期"
    assert shown["fields"]["validUntil"] < "2026-11-23"


async def test_a_good_card_passes_with_its_fields_whole_for_the_agent_and_masked_elsewhere(
    client: httpx.AsyncClient, login: Any, ctx: Context, drawn: ModuleType, engine: Engine
) -> None:
    resident = await login("resident1")
    her = person(drawn, seed=3, own=True)
    front = (await upload(client, resident, photo(drawn, "front", her, 3), "id_card_front"))["id"]
    back = (await upload(client, resident, photo(drawn, "back", her, 4), "id_card_back"))["id"]
    assert await tasks.prereview(ctx) == 2
    mine = await seen(client, resident, front)
    assert mine["findings"] == []  # her own number, read right
    assert mine["masked"] is True
    assert mine["fields"]["name"] == "张**"
    assert mine["fields"]["idNumber"] == RESIDENT1[:3] + "*" * 11 + RESIDENT1[-4:]
    assert "birth" not in mine["fields"] and "ethnicity" not in mine["fields"]
    assert (await seen(client, resident, back))["findings"] == []

    order_id = await submitted(client, resident, [front, back])
    agent = await taken_by_agent1a(client, login, order_id)
    dispatcher = await login("dispatcher1a")
    for headers in (agent, dispatcher, resident):
        beside = await links(client, headers, front)
        assert beside["findings"] == [] and beside["masked"] is True
        assert beside["fields"]["name"] == "张**"
    # The agent asks for the fields whole, to check them against the card: audited.
    before = await ctx.db.run_read(
        lambda s: s.scalar(
            select(func.count()).where(AuditEntry.action == "prereview.read")  # type: ignore[arg-type]
        )
    )
    whole = await client.get(f"/mp/v1/uploads/{front}/prereview", headers=agent)
    assert whole.status_code == 200, whole.text
    fields = whole.json()["fields"]
    assert whole.json()["masked"] is False
    assert (fields["name"], fields["idNumber"], fields["birth"]) == (
        "张秀英",
        RESIDENT1,
        "1948-03-12",
    )
    assert fields["address"] == her.address
    after = await ctx.db.run_read(
        lambda s: s.execute(
            select(AuditEntry.target, AuditEntry.detail).where(
                AuditEntry.action == "prereview.read"
            )
        ).all()
    )
    assert len(after) == before + 1
    assert after[-1].target == f"upload:{front}"
    # Nobody else gets them whole.
    for headers in (dispatcher, resident, await login("agent2a")):
        refused = await client.get(f"/mp/v1/uploads/{front}/prereview", headers=headers)
        assert refused.status_code == 404
    # Nothing of the card is stored in the clear.
    row = await ctx.db.run_read(lambda s: s.get(Prereview, front))
    assert row is not None and row.fields_enc is not None
    assert "张秀英" not in row.fields_enc and RESIDENT1 not in row.fields_enc
    assert RESIDENT1 not in msgspec.json.encode(row.findings).decode()


async def test_another_persons_card_is_flagged_on_an_order_an_agent_entered(
    client: httpx.AsyncClient, login: Any, ctx: Context, drawn: ModuleType, engine: Engine
) -> None:
    desk = await login("agent2a")
    stranger = person(drawn, seed=5)
    front = (await upload(client, desk, photo(drawn, "front", stranger, 5), "id_card_front"))["id"]
    await tasks.prereview(ctx)
    # Read before the order exists: the agent's own upload has nobody to compare with.
    assert codes(await seen(client, desk, front)) == []
    entry = {
        "itemCode": "RS-0009",
        "resident": {
            "name": "王秀兰",
            "idNumber": demo_id_number("370406", "19420305", "046"),
            "phone": "13906329988",
        },
        "materials": {"id_card": [front]},
        "entrustmentUploadIds": [await upload_photo(client, desk)],
    }
    entered = await client.post(
        "/mp/v1/agent/orders",
        json=entry,
        headers={**desk, "Idempotency-Key": f"desk-{uuid.uuid4().hex}"},
    )
    assert entered.status_code == 201, entered.text
    # On the order: the card is not the person's the order is for.
    beside = await links(client, desk, front)
    assert codes(beside) == ["id_number_mismatch"]
    assert beside["findings"][0]["message"] == "照片上的号码与本人不一致"


async def test_the_agents_decision_is_recorded_beside_the_machines(
    client: httpx.AsyncClient,
    login: Any,
    ctx: Context,
    drawn: ModuleType,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
) -> None:
    resident = await login("resident1")
    her = person(drawn, seed=6, own=True)
    good = (await upload(client, resident, photo(drawn, "front", her, 6), "id_card_front"))["id"]
    wrong = (await upload(client, resident, photo(drawn, "front", her, 7), "id_card_back"))["id"]
    alone = (await upload(client, resident, photo(drawn, "front", her, 8), "id_card_back"))["id"]
    fine = (await upload(client, resident, photo(drawn, "front", her, 9), "id_card_front"))["id"]
    await tasks.prereview(ctx)
    notice = {"missing": [{"code": "id_card", "reason": "缺身份证反面"}]}
    for photos, move, body in (
        ([good, wrong], "request-supplement", notice),  # 补正: which photo, it does not say
        ([alone], "request-supplement", notice),  # the material's only photo
        ([fine], "accept", {}),  # 受理
    ):
        order_id = await submitted(client, resident, photos)
        agent = await taken_by_agent1a(client, login, order_id)
        moved = await client.post(
            f"/mp/v1/agent/orders/{order_id}/{move}", json=body, headers=agent
        )
        assert moved.status_code == 200, moved.text
    rows = await ctx.db.run_read(
        lambda s: {r.upload_id: (r.flagged, r.decision) for r in s.scalars(select(Prereview)).all()}
    )
    assert rows == {
        good: (False, "material_rejected"),
        wrong: (True, "material_rejected"),
        alone: (True, "rejected"),
        fine: (False, "accepted"),
    }
    # Monitoring sees the agreement (an app of the same database with /metrics on).
    token = "m" * 32
    settings = make_settings(tmp_path / "m", database_url, DAIBAN_SERVER_METRICS_TOKEN=token)
    watched = Context.build(settings)
    try:
        async with serve(create_app(settings, ctx=watched)) as app:
            scraped = (await app.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
    finally:
        await watched.aclose()
    for agent, machine in (
        ("material_rejected", "flagged"),
        ("material_rejected", "passed"),
        ("rejected", "flagged"),
        ("accepted", "passed"),
    ):
        assert f'daiban_prereview_decisions{{agent="{agent}",machine="{machine}"}} 1.0' in scraped
    assert 'agent="rejected",machine="passed"' not in scraped
    assert "daiban_prereview_backlog 0.0" in scraped


async def test_what_was_read_goes_with_the_files(
    client: httpx.AsyncClient, login: Any, ctx: Context, drawn: ModuleType, engine: Engine
) -> None:
    resident = await login("resident1")
    her = person(drawn, seed=8, own=True)
    front = (await upload(client, resident, photo(drawn, "front", her, 8), "id_card_front"))["id"]
    await tasks.prereview(ctx)
    order_id = await submitted(client, resident, [front])
    await remove_files(ctx, [order_id])
    assert await ctx.db.run_read(lambda s: s.get(Prereview, front)) is None


async def test_with_pre_review_off_everything_works_and_says_not_reviewed(
    client: httpx.AsyncClient, login: Any, ctx: Context
) -> None:
    ctx.settings = msgspec.structs.replace(ctx.settings, prereview=PrereviewSettings(enabled=False))
    resident = await login("resident1")
    first = await upload_photo(client, resident)  # no document declared: no pre-review
    assert await seen(client, resident, first) is None
    ticket_id = await _declared_photo(client, resident)
    assert await tasks.prereview(ctx) == 1
    shown = await seen(client, resident, ticket_id)
    assert shown["status"] == "engine_missing"
    assert shown["findings"] == [
        {"code": "engine_missing", "message": "未预审：本机未开启证件预审", "severity": "info"}
    ]
    order_id = await submitted(client, resident, [ticket_id])
    assert (await links(client, resident, ticket_id))["status"] == "engine_missing"
    assert order_id


# A worker whose Python cannot import the recogniser (the `prereview` extra not installed),
# running the job once against the test's database and files.
WORKER_WITHOUT_ENGINE = """
import asyncio, sys
sys.modules["rapidocr"] = None  # import rapidocr now raises ImportError, as when absent
from app.context import Context
from app.settings import load_settings
from jobs import tasks

async def main():
    ctx = Context.build(load_settings())
    try:
        print(await tasks.prereview(ctx))
    finally:
        await ctx.aclose()

asyncio.run(main())
"""


async def test_without_the_recogniser_installed_everything_works_and_says_not_reviewed(
    client: httpx.AsyncClient, login: Any, ctx: Context, database_url: str, tmp_path: Path
) -> None:
    resident = await login("resident1")
    declared = await _declared_photo(client, resident)
    env = {**os.environ, **settings_env(tmp_path / "var", database_url)}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER_WITHOUT_ENGINE,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(worker.communicate(), 120)
    assert worker.returncode == 0, err.decode()
    assert out.decode().split()[-1] == "1"  # one photo settled
    shown = await seen(client, resident, declared)
    assert shown["status"] == "engine_missing"
    assert shown["findings"] == [
        {
            "code": "engine_missing",
            "message": "未预审：本机未安装证件识别组件",
            "severity": "info",
        }
    ]
    order_id = await submitted(client, resident, [declared])
    agent = await taken_by_agent1a(client, login, order_id)
    assert (await links(client, agent, declared))["status"] == "engine_missing"
    accepted = await client.post(f"/mp/v1/agent/orders/{order_id}/accept", json={}, headers=agent)
    assert accepted.status_code == 200, accepted.text


async def _declared_photo(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    from tests.images import jpeg

    return int((await upload(client, headers, jpeg(800, 600), "id_card_front"))["id"])


async def test_a_burst_of_uploads_never_grows_the_queue_past_its_bound(
    client: httpx.AsyncClient, login: Any, ctx: Context, engine: Engine
) -> None:
    from tests.images import jpeg

    ctx.settings = msgspec.structs.replace(
        ctx.settings, prereview=PrereviewSettings(max_backlog=20)
    )
    headers = [await login(f"resident{i}") for i in (1, 2)]
    data = jpeg(640, 480)
    answers = []
    for n in range(50):
        answers.append(await upload(client, headers[n % 2], data, "id_card_front"))
    statuses = [a["prereview"]["status"] for a in answers]
    assert statuses.count("queued") == 20 and statuses.count("skipped") == 30
    full = next(a for a in answers if a["prereview"]["status"] == "skipped")["prereview"]
    assert full["findings"][0]["message"] == "未预审：排队预审的照片太多"
    jobs = (await client.get("/mp/v1/admin/jobs", headers=await login("admin"))).json()
    assert jobs["prereviewBacklog"] == 20
    # Two readers at once: every photo read once, by one of them. On PostgreSQL (CI's second
    # run) their claims truly race; on SQLite the writes take turns.
    read = await asyncio.gather(
        tasks.prereviews.read_queued(ctx), tasks.prereviews.read_queued(ctx)
    )
    assert sum(read) == 20
    rows = await ctx.db.run_read(lambda s: s.scalars(select(Prereview)).all())
    assert sorted(r.status for r in rows) == ["read"] * 20 + ["skipped"] * 30
    assert {r.attempts for r in rows if r.status == "read"} == {1}
    assert {r.kind for r in rows if r.status == "read"} == {"unreadable"}
    jobs = (await client.get("/mp/v1/admin/jobs", headers=await login("admin"))).json()
    assert jobs["prereviewBacklog"] == 0


async def test_only_material_photos_may_ask_for_it(client: httpx.AsyncClient, login: Any) -> None:
    resident = await login("resident1")
    for body in (
        {
            "purpose": "voice",
            "contentType": "audio/mpeg",
            "size": 1000,
            "document": "id_card_front",
        },
        {
            "purpose": "material",
            "contentType": "application/pdf",
            "size": 1000,
            "document": "id_card_front",
        },
        {"purpose": "material", "contentType": "image/jpeg", "size": 1000, "document": "passport"},
    ):
        answer = await client.post("/mp/v1/uploads", json=body, headers=resident)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_input"


async def test_the_console_order_page_shows_the_pre_review_beside_each_photo(
    client: httpx.AsyncClient, login: Any, ctx: Context, drawn: ModuleType, engine: Engine
) -> None:
    resident = await login("resident1")
    her = person(drawn, seed=9, own=True)
    good = (await upload(client, resident, photo(drawn, "front", her, 9), "id_card_front"))["id"]
    wrong = (await upload(client, resident, photo(drawn, "front", her, 10), "id_card_back"))["id"]
    await tasks.prereview(ctx)
    waiting = (await upload(client, resident, photo(drawn, "back", her, 11), "id_card_back"))["id"]
    order_id = await submitted(client, resident, [good, wrong, waiting])
    dispatcher = await login("dispatcher1a")
    await sign_in(client, dispatcher)
    page = (await client.get(f"/console/orders/{order_id}")).text
    assert '<span class="tag">预审：未发现问题</span>' in page
    assert '<span class="tag alert">预审：这张像是身份证正面，这里需要反面</span>' in page
    assert '<span class="tag">预审：正在识别</span>' in page


async def test_a_reader_that_stopped_mid_photo_is_taken_over_and_a_removed_file_skipped(
    client: httpx.AsyncClient,
    login: Any,
    ctx: Context,
    clock: Any,
    drawn: ModuleType,
    engine: Engine,
) -> None:
    resident = await login("resident1")
    her = person(drawn, seed=12, own=True)
    left = (await upload(client, resident, photo(drawn, "front", her, 12), "id_card_front"))["id"]
    gone = (await upload(client, resident, photo(drawn, "back", her, 13), "id_card_back"))["id"]
    # A worker claimed the first and was killed: its claim stays until it expires.
    claimed_at = ctx.now()
    await ctx.db.run_write(
        lambda s: s.execute(
            update(Prereview)
            .where(Prereview.upload_id == left)
            .values(status="reading", claimed_at=claimed_at, attempts=1)
        )
    )
    # The second's file went from storage before it was read.
    key = await ctx.db.run_read(lambda s: s.scalar(select(Upload.key).where(Upload.id == gone)))
    await ctx.store.delete(key)
    assert await tasks.prereview(ctx) == 1  # the gone one; the claimed one is not free yet
    shown = await seen(client, resident, gone)
    assert (shown["status"], shown["note"]) == ("skipped", "未预审：文件已删除")
    assert (await seen(client, resident, left))["status"] == "reading"
    clock.advance(minutes=6)
    assert await tasks.prereview(ctx) == 1
    shown = await seen(client, resident, left)
    assert shown["status"] == "read" and shown["findings"] == []
    row = await ctx.db.run_read(lambda s: s.get(Prereview, left))
    assert row is not None and row.attempts == 2


async def test_fields_these_keys_cannot_open_show_not_reviewed_and_never_stop_the_agent(
    client: httpx.AsyncClient,
    login: Any,
    ctx: Context,
    drawn: ModuleType,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
) -> None:
    resident = await login("resident1")
    her = person(drawn, seed=14, own=True)
    front = (await upload(client, resident, photo(drawn, "front", her, 14), "id_card_front"))["id"]
    await tasks.prereview(ctx)
    # Sealed by a service whose first key this one does not have (a key roll-out half done).
    other = "t9:" + base64.b64encode(b"z" * 32).decode()
    foreign = cipher_for(
        make_settings(tmp_path / "o", database_url, DAIBAN_SECURITY_PII_KEYS=other)
    )
    sealed = foreign.encrypt('{"name":"张秀英"}', context="prereview")
    await ctx.db.run_write(
        lambda s: s.execute(
            update(Prereview).where(Prereview.upload_id == front).values(fields_enc=sealed)
        )
    )
    order_id = await submitted(client, resident, [front])
    agent = await taken_by_agent1a(client, login, order_id)
    shown = await links(client, agent, front)
    assert (shown["status"], shown["note"]) == ("failed", "未预审：本机无法读取预审结果")
    assert shown["fields"] is None
    accepted = await client.post(f"/mp/v1/agent/orders/{order_id}/accept", json={}, headers=agent)
    assert accepted.status_code == 200, accepted.text
    row = await ctx.db.run_read(lambda s: s.get(Prereview, front))
    assert row is not None and row.decision is None


async def test_a_passbook_and_a_disability_certificate_through_the_service(
    client: httpx.AsyncClient, login: Any, ctx: Context, drawn: ModuleType, engine: Engine
) -> None:
    resident = await login("resident1")
    rnd = random.Random(15)
    # someone else's passbook, given where her bank card is asked for
    other = drawn.make_person(rnd)
    drawn.add_account(other, rnd)
    book = bytes(drawn.photograph(drawn.render_passbook(other, rnd), "none", rnd))
    shown = await upload(client, resident, book, "bank_card")
    # her own disability certificate
    her = person(drawn, seed=16, own=True)
    drawn.add_disability(her, rnd)
    certificate = bytes(drawn.photograph(drawn.render_disability(her, rnd), "none", rnd))
    own = await upload(client, resident, certificate, "disability_card")
    assert await tasks.prereview(ctx) == 2
    passbook = await seen(client, resident, shown["id"])
    assert passbook["kind"] == "passbook"
    assert [f["message"] for f in passbook["findings"]] == ["存折上的户名与本人不一致"]
    number = other.account_number
    assert passbook["fields"]["accountNumber"] == number[:4] + "*" * 11 + number[-4:]
    card = await seen(client, resident, own["id"])
    assert card["kind"] == "disability_card" and card["findings"] == []
    # health data: the category and grade are not shown masked, only to the agent whole
    assert "disabilityCategory" not in card["fields"] and "disabilityGrade" not in card["fields"]
    order_id = await submitted(client, resident, [own["id"]])
    agent = await taken_by_agent1a(client, login, order_id)
    whole = (await client.get(f"/mp/v1/uploads/{own['id']}/prereview", headers=agent)).json()
    assert whole["fields"]["disabilityCategory"] == her.disability_category
    assert whole["fields"]["disabilityNumber"] == drawn.disability_number(her)
