"""Plain functions that build what tests need through the real API (and, where the API
has no route for it yet, through the database's own entry points)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.orm import Session

from app.context import Context
from app.models import Account
from app.models.tables import ORDERS
from app.regions.service import new_region
from tests.images import jpeg


async def upload_photo(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """A phone photo through the whole upload flow (local backend, served by the app)."""
    data = jpeg(800, 600)
    ticket = (
        await client.post(
            "/mp/v1/uploads",
            json={"purpose": "material", "contentType": "image/jpeg", "size": len(data)},
            headers=headers,
        )
    ).json()
    files = {ticket["fileField"]: ("photo.jpg", data, "image/jpeg")}
    posted = await client.post(ticket["url"], data=ticket["fields"], files=files)
    assert posted.status_code == 204, posted.text
    done = await client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    return int(ticket["id"])


async def guide(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    return (await client.get(f"/mp/v1/catalogue/items/{code}")).json()


async def submit(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    code: str = "RS-0001",
    *,
    key: str | None = None,
    **extra: Any,
) -> httpx.Response:
    """Submit with every required material photographed."""
    materials = {}
    for m in (await guide(client, code))["materials"]:
        if m["required"]:
            materials[m["code"]] = [await upload_photo(client, headers)]
    body = {"itemCode": code, "materials": materials, **extra}
    request_headers = {**headers, "Idempotency-Key": key or f"tap-{uuid.uuid4().hex}"}
    return await client.post("/mp/v1/orders", json=body, headers=request_headers)


async def agent_id(client: httpx.AsyncClient, dispatcher: dict[str, str], name: str) -> int:
    agents = (await client.get("/mp/v1/dispatch/agents", headers=dispatcher)).json()
    return int(next(a["id"] for a in agents if a["name"] == name))


async def taken_by_agent1a(client: httpx.AsyncClient, login: Any, order_id: int) -> dict[str, str]:
    """dispatcher1a assigns the order to agent1a (刘桂兰), who takes it: under review. Her
    headers."""
    dispatcher, agent = await login("dispatcher1a"), await login("agent1a")
    assigned = await client.post(
        f"/mp/v1/dispatch/orders/{order_id}/assign",
        json={"agentId": await agent_id(client, dispatcher, "刘桂兰")},
        headers=dispatcher,
    )
    assert assigned.status_code == 200, assigned.text
    taken = await client.post(f"/mp/v1/agent/orders/{order_id}/take", json={}, headers=agent)
    assert taken.status_code == 200, taken.text
    return agent  # type: ignore[no-any-return]


async def delivered(
    client: httpx.AsyncClient, login: Any, resident: str = "resident2", agent: str = "agent4a"
) -> int:
    """An order carried through to hand-back (回交): `resident` submits, `agent` takes,
    accepts, completes and delivers it with a photo of the signed receipt."""
    response = await submit(client, await login(resident))
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    headers = await login(agent)
    for action, body in (
        ("take", {}),
        ("accept", {}),
        ("complete", {"outcome": "approved"}),
        (
            "deliver",
            {"deliveryMethod": "pickup", "proofUploadIds": [await upload_photo(client, headers)]},
        ),
    ):
        moved = await client.post(
            f"/mp/v1/agent/orders/{order_id}/{action}", json=body, headers=headers
        )
        assert moved.status_code == 200, moved.text
    return int(order_id)


async def region_ids(client: httpx.AsyncClient) -> dict[str, int]:
    """Every region in service by its name and by its code, from the public tree."""
    found: dict[str, int] = {}
    stack = list((await client.get("/mp/v1/regions")).json())
    while stack:
        node = stack.pop()
        found[node["code"]] = found[node["name"]] = node["id"]
        stack += node["children"]
    return found


async def centre_agent(
    client: httpx.AsyncClient,
    login: Any,
    admin: dict[str, str],
    name: str,
    post: str,
    handle: str,
    town: str = "店子镇",
) -> dict[str, Any]:
    """An agent the admin posts at a town centre (便民服务中心), bound to the WeChat login
    `handle`: their account id and headers."""
    created = await client.post(
        "/mp/v1/admin/staff",
        json={
            "role": "agent",
            "name": name,
            "regionId": (await region_ids(client))[town],
            "post": post,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    bound = await client.post(
        "/mp/v1/auth/bind-staff",
        json={"code": created.json()["bindingCode"]},
        headers=await login(handle),
    )
    assert bound.status_code == 200, bound.text
    return {
        "id": created.json()["staff"]["id"],
        "headers": {"Authorization": f"Bearer {bound.json()['accessToken']}"},
    }


async def other_district_admin(ctx: Context) -> str:
    """An admin of a second district; returns the dev login handle ("other-admin")."""

    def other_district(session: Session) -> None:
        other = new_region("370402000000", "峄城区", None)
        session.add(other)
        session.flush()
        session.add(
            Account(role="admin", name="外区管理员", region_id=other.id, openid="dev_other-admin")
        )

    await ctx.db.run_write(other_district)
    return "other-admin"


def series(n: int) -> str:
    """Rows 1..n as g(n), on both databases: a WITH clause for an INSERT … SELECT."""
    return f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n})"  # noqa: S608


def order_copies(template_id: int, n: int, **values: str) -> str:
    """SQL that inserts `n` copies of order `template_id`, numbered 'T' || n, with the SQL
    in `values` (where n counts the copies from 1) in place of the template's columns."""
    chosen = {"number": "'T' || n", "idempotency_key": "NULL", "progress_page_hash": "NULL"}
    chosen |= values
    columns = [c.name for c in ORDERS.c if c.name != "id"]
    picked = ", ".join(chosen.get(c, c) for c in columns)
    return (
        f"{series(n)} INSERT INTO orders ({', '.join(columns)})"  # noqa: S608
        f" SELECT {picked} FROM orders, g WHERE orders.id = {template_id}"
    )
