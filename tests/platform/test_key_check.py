"""Keys cannot silently change: a start with personal-data keys that are not the database's
stops with one line naming the variable and changes nothing; adding a new first key while
keeping the old passes. Services started at once on an empty database all migrate."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from app import migrate
from app.asgi import create_app
from app.cli import main
from app.context import Context
from app.db import Database
from app.demo import demo_id_number
from app.models import Account, AuditEntry, Complaint, KeyCheck, Prereview
from app.security.key_check import KeysMismatch, rotate_batch
from app.security.pii import cipher_for, mask_id_number
from jobs.__main__ import run_worker
from tests.conftest import empty_database, make_settings, serve, settings_env
from tests.factories import agent_id, upload_photo

OTHER_KEYS = "t2:" + base64.b64encode(b"o" * 32).decode()


def _env(monkeypatch, tmp_path: Path, database_url: str, **extra: str) -> None:
    for name, value in settings_env(tmp_path / "var", database_url, **extra).items():
        monkeypatch.setenv(name, value)


async def _migrate(capsys) -> tuple[int, str]:
    code = await asyncio.to_thread(main, ["migrate"])
    return code, capsys.readouterr().err.strip()


async def _check_value(ctx) -> str | None:
    return await ctx.db.run_read(lambda s: s.scalar(select(KeyCheck.sealed)))


async def test_other_keys_stop_the_start_with_one_line_and_change_nothing(
    ctx, demo, database_url, tmp_path, monkeypatch, capsys
):
    _env(monkeypatch, tmp_path, database_url)
    assert await _migrate(capsys) == (0, "")
    written = await _check_value(ctx)
    assert written is not None and written.startswith("t1:")

    _env(monkeypatch, tmp_path, database_url, DAIBAN_SECURITY_PII_KEYS=OTHER_KEYS)
    code, err = await _migrate(capsys)
    assert code == 2 and "\n" not in err
    assert err.startswith("daiban: DAIBAN_SECURITY_PII_KEYS:") and "'t1'" in err
    _env(monkeypatch, tmp_path, database_url, DAIBAN_SECURITY_PII_HASH_KEY="another-hash-key")
    code, err = await _migrate(capsys)
    assert code == 2 and err.startswith("daiban: DAIBAN_SECURITY_PII_HASH_KEY:")
    assert await _check_value(ctx) == written

    # The worker refuses the same way, before any job runs.
    with pytest.raises(KeysMismatch):
        await run_worker(
            make_settings(tmp_path / "w", database_url, DAIBAN_SECURITY_PII_KEYS=OTHER_KEYS)
        )

    # A new first key, the old one kept in the ring: the data stays readable, start passes.
    ring = f"{OTHER_KEYS},{settings_env(tmp_path, database_url)['DAIBAN_SECURITY_PII_KEYS']}"
    _env(monkeypatch, tmp_path, database_url, DAIBAN_SECURITY_PII_KEYS=ring)
    assert await _migrate(capsys) == (0, "")


async def test_a_database_from_before_the_check_is_checked_against_its_stored_phones(
    ctx, demo, database_url, tmp_path, monkeypatch, capsys
):
    """The demo's residents have phones but no check value exists yet (as after upgrading
    an older database): wrong keys are caught on a stored phone, and nothing is written."""
    await ctx.db.run_write(lambda s: s.execute(delete(KeyCheck)))
    _env(monkeypatch, tmp_path, database_url, DAIBAN_SECURITY_PII_KEYS=OTHER_KEYS)
    code, err = await _migrate(capsys)
    assert code == 2 and err.startswith("daiban: DAIBAN_SECURITY_PII_KEYS:")
    assert await _check_value(ctx) is None
    _env(monkeypatch, tmp_path, database_url, DAIBAN_SECURITY_PII_HASH_KEY="another-hash-key")
    code, err = await _migrate(capsys)
    assert code == 2 and err.startswith("daiban: DAIBAN_SECURITY_PII_HASH_KEY:")
    _env(monkeypatch, tmp_path, database_url)
    assert await _migrate(capsys) == (0, "")
    assert await _check_value(ctx) is not None


def test_dev_secrets_deleted_beside_a_kept_database_stop_the_start(tmp_path):
    """Dev mode generates missing secrets: without the check, new keys would be made over
    data written with the old ones."""
    env = {
        "PATH": os.environ["PATH"],
        "DAIBAN_VAR_DIR": str(tmp_path / "var"),
        "DAIBAN_LOG_FORMAT": "text",
        "DAIBAN_SCHEDULER_MODE": "off",
    }
    seeded = _daiban(env, "seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    (tmp_path / "var" / "dev-secrets.json").unlink()
    again = _daiban(env, "migrate")
    assert again.returncode == 2
    assert again.stderr.strip().startswith("daiban: DAIBAN_SECURITY_PII_KEYS:")


def _daiban(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "app.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_two_services_started_at_once_on_an_empty_database_both_migrate(tmp_path):
    async with empty_database(tmp_path, "race") as url:
        env = {**os.environ, **settings_env(tmp_path / "var", url)}
        started = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.cli",
                "migrate",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(3)
        ]
        results = [await asyncio.wait_for(p.communicate(), 120) for p in started]
        codes = [p.returncode for p in started]
        assert codes == [0, 0, 0], [err.decode() for _, err in results]
        db = Database(make_settings(tmp_path / "check", url))
        try:
            assert await migrate.current_revision(db) == migrate.head_revision()
            assert await db.run_read(lambda s: s.scalar(select(KeyCheck.name))) == "pii"
        finally:
            await db.dispose()


async def test_rotation_moves_every_value_to_the_new_key_resumably_then_the_old_goes(
    ctx, demo, client, login, database_url, tmp_path, monkeypatch, capsys
):
    old = settings_env(tmp_path, database_url)["DAIBAN_SECURITY_PII_KEYS"]
    _env(monkeypatch, tmp_path, database_url)
    assert await _migrate(capsys) == (0, "")
    # Sealed values beyond accounts: a complaint's contact (no account) and a pre-review.
    dispatcher = await login("dispatcher1a")
    contact = {
        "channel": "phone",
        "idNumber": demo_id_number("370406", "19500101", "015"),
        "phone": "13806321234",
        "name": "王德顺",
        "text": "电话反映:代办员多次不在岗",
        "agentId": await agent_id(client, dispatcher, "刘桂兰"),
    }
    made = await client.post("/mp/v1/dispatch/complaints", json=contact, headers=dispatcher)
    assert made.status_code == 201, made.text
    photo = await upload_photo(client, await login("resident1"))
    sealed = ctx.cipher.encrypt('{"name":"张秀英"}', context="prereview")
    await ctx.db.run_write(
        lambda s: s.add(
            Prereview(upload_id=photo, expected="id_card_front", status="read", fields_enc=sealed)
        )
    )
    ring = f"{OTHER_KEYS},{old}"  # the new key first, the old kept
    # Interrupted after one batch of one account ...
    rotating = make_settings(tmp_path / "r", database_url, DAIBAN_SECURITY_PII_KEYS=ring)
    cipher = cipher_for(rotating)
    assert await ctx.db.run_write(lambda s: rotate_batch(s, cipher, 1)) >= 1
    # ... and run again: it goes on from there.
    _env(monkeypatch, tmp_path, database_url, DAIBAN_SECURITY_PII_KEYS=ring)
    assert await asyncio.to_thread(main, ["rotate-keys", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "every value is under key t2" in out and "t1 may be removed" in out

    def values(session):
        rows = session.execute(select(Account.phone_enc, Account.id_number_enc)).all()
        rows += session.execute(
            select(Complaint.contact_phone_enc, Complaint.contact_id_number_enc)
        ).all()
        rows += session.execute(select(Prereview.fields_enc)).all()
        return [v for row in rows for v in row if v] + [session.scalar(select(KeyCheck.sealed))]

    stored = await ctx.db.run_read(values)
    assert len(stored) >= 8 and all(v.startswith("t2:") for v in stored)
    # Each still reads with the new key alone.
    rotated = cipher_for(
        make_settings(tmp_path / "n", database_url, DAIBAN_SECURITY_PII_KEYS=OTHER_KEYS)
    )
    row = await ctx.db.run_read(lambda s: s.get(Prereview, photo))
    assert rotated.decrypt(row.fields_enc, context="prereview") == '{"name":"张秀英"}'
    phone = await ctx.db.run_read(lambda s: s.scalar(select(Complaint.contact_phone_enc)))
    assert rotated.decrypt(phone, context="phone") == "13806321234"
    audited = await ctx.db.run_read(
        lambda s: s.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "keys.rotate")
        ).all()
    )
    assert audited == ["keys.rotate"]

    # The old key removed: the start passes and a resident's ID number reads back.
    _env(monkeypatch, tmp_path, database_url, DAIBAN_SECURITY_PII_KEYS=OTHER_KEYS)
    assert await _migrate(capsys) == (0, "")
    new_only = make_settings(tmp_path / "n", database_url, DAIBAN_SECURITY_PII_KEYS=OTHER_KEYS)
    service = Context.build(new_only)
    service.now = ctx.now
    try:
        async with serve(create_app(new_only, ctx=service)) as rotated:
            login = await rotated.post("/mp/v1/auth/login", json={"code": "dev:resident1"})
            headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
            me = (await rotated.get("/mp/v1/me", headers=headers)).json()
    finally:
        await service.aclose()
    assert me["idNumber"] == mask_id_number(demo_id_number("370406", "19480312", "022"))
