"""Migrations equal the models; health probes; OpenAPI; the region tree; concurrent writes."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session

from app.models import Base


async def test_migrations_from_empty_equal_the_models(ctx):
    def diff(session: Session):
        return compare_metadata(
            MigrationContext.configure(session.connection(), opts={"compare_type": True}),
            Base.metadata,
        )

    differences = await ctx.db.run_read(diff)
    assert differences == []


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_openapi_lists_the_routes_tagged_by_role(client):
    spec = (await client.get("/schema/openapi.json")).json()
    assert "/mp/v1/auth/login" in spec["paths"]
    tags = {
        tag for path in spec["paths"].values() for op in path.values() for tag in op.get("tags", [])
    }
    assert {
        "auth 登录",
        "resident 群众",
        "agent 代办员",
        "dispatcher 调度员",
        "admin 管理员",
    } <= tags


async def test_region_tree_is_district_town_village_with_12_digit_codes(client, demo):
    tree = (await client.get("/mp/v1/regions")).json()
    assert len(tree) == 1 and tree[0]["level"] == "district"
    towns = tree[0]["children"]
    assert len(towns) == 2 and all(t["level"] == "town" for t in towns)
    villages = [v for t in towns for v in t["children"]]
    assert len(villages) == 6 and all(v["level"] == "village" for v in villages)
    assert all(len(node["code"]) == 12 and node["code"].isdigit() for node in [*towns, *villages])


async def test_twenty_concurrent_writes_finish_without_database_locked(client, demo):
    """Twenty first logins and profile updates at once: each writes, none may fail."""

    async def first_login_and_update(i: int) -> int:
        login = await client.post("/mp/v1/auth/login", json={"code": f"dev:crowd{i}"})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        update = await client.patch("/mp/v1/me", json={"name": f"村民{i:02d}"}, headers=headers)
        return update.status_code

    statuses = await asyncio.gather(*(first_login_and_update(i) for i in range(20)))
    assert statuses == [200] * 20
