"""`python -m jobs` runs the scheduler alone: it starts with every job registered, does its
start-up catch-up (last month's ledgers) and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import select

from app.models import JobRun, Ledger

ROOT = Path(__file__).resolve().parents[2]


async def test_the_worker_process_runs_the_jobs_and_stops_on_sigterm(ctx, demo, settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAIBAN_")}
    env.update(
        {
            "DAIBAN_VAR_DIR": str(tmp_path / "worker"),
            "DAIBAN_DATABASE_URL": settings.database_url,
            "DAIBAN_SECURITY_SECRET_KEY": settings.security.secret_key,
            "DAIBAN_SECURITY_PII_KEYS": settings.security.pii_keys,
            "DAIBAN_SECURITY_PII_HASH_KEY": settings.security.pii_hash_key,
            "DAIBAN_STORAGE_LOCAL_DIR": str(settings.local_storage_dir),
            "DAIBAN_LOG_FORMAT": "text",
            "DAIBAN_SCHEDULER_MODE": "off",
        }
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobs", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert worker.stderr is not None
    started = await asyncio.wait_for(worker.stderr.readline(), 30)
    assert b"worker started" in started
    for job in (b"deliver", b"reminders", b"ledgers", b"clean_up", b"comment_checks", b"retention"):
        assert job in started, started
    for _ in range(100):  # the ledgers' catch-up runs at once
        if await ctx.db.run_read(
            lambda s: s.scalar(select(JobRun.finished_at).where(JobRun.job == "ledgers"))
        ):
            break
        await asyncio.sleep(0.1)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), 30) == 0
    built = await ctx.db.run_read(lambda s: s.scalars(select(Ledger.level)).all())
    assert sorted(built) == ["town"] * 2 + ["village"] * 6
