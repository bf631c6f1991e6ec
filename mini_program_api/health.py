"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import get

from app import errors, migrate
from mini_program_api.deps import Ctx


class Alive(msgspec.Struct):
    status: Literal["ok"] = "ok"


class Ready(msgspec.Struct):
    status: Literal["ready"]
    revision: str  # the database's migration, the latest this code knows


@get("/healthz", tags=["ops"], summary="进程存活")
async def healthz() -> Alive:
    return Alive()


@get("/readyz", tags=["ops"], summary="数据库可达且迁移为最新 (否则 503)")
async def readyz(ctx: Ctx) -> Ready:
    failure = ctx.db.revive_writer()
    if failure is not None:
        raise errors.DatabaseUnreachable("数据库写入线程曾停止, 已重新启动")
    try:
        current = await migrate.current_revision(ctx.db)
    except Exception:
        raise errors.DatabaseUnreachable() from None
    head = migrate.head_revision()
    if current != head:
        raise errors.MigrationsPending(f"当前 {current}, 应为 {head}")
    return Ready(status="ready", revision=current or "")
