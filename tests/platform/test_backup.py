"""Backups that restore: a backup taken while residents submit, restored into an empty
setup (a fresh var directory, or a fresh PostgreSQL database), holds every order
acknowledged before it began with its photos; ID numbers decrypt and the service serves
them. A restore with other keys, into a used setup or from a damaged backup writes nothing."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import anyio
import pytest
from sqlalchemy import make_url, select

from app.asgi import create_app
from app.backup import BackupError, backup, prune, restore
from app.context import Context
from app.demo import demo_id_number
from app.models import JobRun, Order, Upload
from app.security.pii import mask_id_number
from jobs import tasks
from tests.conftest import ON_POSTGRES, empty_database, make_settings, serve
from tests.factories import submit


@pytest.fixture
async def empty_target(tmp_path: Path):
    """Settings for an empty setup to restore into: a new var directory, and a new
    database (on PostgreSQL, beside the suite's)."""
    async with empty_database(tmp_path, "restore") as url:
        yield lambda **extra: make_settings(tmp_path / "restored", url, **extra)


async def test_a_backup_during_live_writes_restores_every_acknowledged_order(
    ctx, demo, client, login, settings, tmp_path, empty_target
):
    residents = [await login("resident1"), await login("resident2")]
    acknowledged: list[int] = []
    stop, enough = asyncio.Event(), asyncio.Event()

    async def keep_submitting(headers) -> None:
        while not stop.is_set():
            answer = await submit(client, headers)
            assert answer.status_code == 201, answer.text
            acknowledged.append(answer.json()["id"])
            if len(acknowledged) >= 4:
                enough.set()

    writers = [asyncio.create_task(keep_submitting(h)) for h in residents]
    await enough.wait()
    before = list(acknowledged)
    done = await backup(settings, tmp_path / "backups", ctx.now())
    during = len(acknowledged) - len(before)
    stop.set()
    await asyncio.gather(*writers)
    assert done.folder.name.startswith("daiban-") and done.files >= 2 * len(before)
    manifest = json.loads((done.folder / "manifest.json").read_text())
    assert manifest["counts"]["orders"] >= len(before)
    assert list(manifest["keys"]["pii"]) == ["t1"]
    written = (done.folder / "manifest.json").read_text()
    ring = settings.security.pii_keys.partition(":")[2]
    assert ring not in written and settings.security.pii_hash_key not in written

    target = empty_target()
    restored = await restore(target, done.folder)
    assert restored["counts"] == manifest["counts"]
    service = Context.build(target)
    service.now = ctx.now
    try:
        orders = await service.db.run_read(
            lambda s: {o.id: o for o in s.scalars(select(Order)).all()}
        )
        assert set(before) <= set(orders), (before, during)
        keys = await service.db.run_read(
            lambda s: s.scalars(
                select(Upload.key).where(Upload.order_id.in_(before), Upload.key.is_not(None))
            ).all()
        )
        assert keys and all((target.local_storage_dir / key).is_file() for key in keys)
        async with serve(create_app(target, ctx=service)) as restored_client:
            login_answer = await restored_client.post(
                "/mp/v1/auth/login", json={"code": "dev:resident1"}
            )
            headers = {"Authorization": f"Bearer {login_answer.json()['accessToken']}"}
            me = (await restored_client.get("/mp/v1/me", headers=headers)).json()
            # Masking needs the number decrypted: the restored data reads with the keys.
            assert me["idNumber"] == mask_id_number(demo_id_number("370406", "19480312", "022"))
            mine = await restored_client.get("/mp/v1/orders", headers=headers)
            assert mine.status_code == 200 and mine.json()["items"]
            first = mine.json()["items"][-1]["id"]
            detail = await restored_client.get(f"/mp/v1/orders/{first}", headers=headers)
            assert detail.status_code == 200
    finally:
        await service.aclose()


async def test_a_restore_refuses_other_keys_a_used_setup_and_a_damaged_backup(
    ctx, demo, settings, tmp_path, empty_target
):
    done = await backup(settings, tmp_path / "backups", ctx.now())
    other_keys = "t9:" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(BackupError, match="DAIBAN_SECURITY_PII_KEYS"):
        await restore(empty_target(DAIBAN_SECURITY_PII_KEYS=other_keys), done.folder)
    with pytest.raises(BackupError, match="DAIBAN_SECURITY_PII_HASH_KEY"):
        await restore(empty_target(DAIBAN_SECURITY_PII_HASH_KEY="x" * 40), done.folder)
    with pytest.raises(BackupError, match="restore into an empty"):
        await restore(settings, done.folder)  # the live setup itself
    database_file = next(
        n for n in ("daiban.sqlite3", "daiban.pgdump") if (done.folder / n).exists()
    )
    with (done.folder / database_file).open("r+b") as file:
        file.seek(200)
        file.write(b"\x00damaged\x00")
    with pytest.raises(BackupError, match="damaged"):
        await restore(empty_target(), done.folder)
    # Nothing was written into the empty setup by any of these.
    target = empty_target()
    assert not await anyio.Path(target.local_storage_dir).exists()
    if not ON_POSTGRES:
        assert not await anyio.Path(make_url(target.database_url).database or "").exists()


def test_retention_keeps_the_newest_of_each_recent_day_and_month(tmp_path):
    dest = tmp_path / "backups"
    names = [
        "daiban-20261203-023000",
        "daiban-20261203-120000",  # two on one day: the newer stays
        "daiban-20261202-023000",
        "daiban-20261201-023000",
        "daiban-20261130-023000",  # November's newest
        "daiban-20261115-023000",
        "daiban-20261031-023000",  # October's newest
        "daiban-20260930-023000",  # beyond the months kept
    ]
    for name in names:
        (dest / name).mkdir(parents=True)
        (dest / name / "manifest.json").write_text("{}")
    (dest / "daiban-20200101-000000").mkdir()  # no manifest: not a backup, left alone
    (dest / "notes").mkdir()
    removed = prune(dest, keep_daily=3, keep_monthly=3)
    # Days kept: 3 Dec (its newer), 2 Dec, 1 Dec; months: December (3 Dec), November
    # (30 Nov), October (31 Oct).
    assert [p.name for p in removed] == [
        "daiban-20261203-023000",
        "daiban-20261115-023000",
        "daiban-20260930-023000",
    ]
    assert sorted(p.name for p in dest.iterdir()) == [
        "daiban-20200101-000000",
        "daiban-20261031-023000",
        "daiban-20261130-023000",
        "daiban-20261201-023000",
        "daiban-20261202-023000",
        "daiban-20261203-120000",
        "notes",
    ]


async def test_the_nightly_job_backs_up_once_however_many_workers_run_it(
    ctx, demo, database_url, tmp_path
):
    settings = make_settings(tmp_path / "var", database_url, DAIBAN_BACKUP_DIR=str(tmp_path / "b"))
    workers = [Context.build(settings) for _ in range(3)]
    for worker in workers:
        worker.now = ctx.now
    try:
        rows = await asyncio.gather(*(tasks.back_up(w) for w in workers))
    finally:
        for worker in workers:
            await worker.aclose()
    assert sorted(rows)[:2] == [0, 0] and sorted(rows)[2] > 0
    assert len(list((tmp_path / "b").iterdir())) == 1
    runs = await ctx.db.run_read(
        lambda s: s.execute(select(JobRun.job, JobRun.error).where(JobRun.job == "backup")).all()
    )
    assert [tuple(r) for r in runs] == [("backup", None)]
