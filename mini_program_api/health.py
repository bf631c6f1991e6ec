"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from sqlalchemy import text

from app import migrate
from mini_program_api.deps import Ctx
from mini_program_api.problems import problem


@get("/healthz", tags=["ops"], summary="进程存活")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", tags=["ops"], summary="数据库可达且迁移为最新")
async def readyz(ctx: Ctx) -> Response[Any] | dict[str, str]:
    try:
        async with ctx.db.reading() as session:
            await session.execute(text("SELECT 1"))
        current = await migrate.current_revision(ctx.db.read_engine)
    except Exception:
        return problem(503, "database_unreachable", "数据库不可用")
    head = migrate.head_revision()
    if current != head:
        return problem(
            503, "migrations_pending", "数据库结构不是最新", f"当前 {current}, 应为 {head}"
        )
    return {"status": "ready", "revision": current or ""}
