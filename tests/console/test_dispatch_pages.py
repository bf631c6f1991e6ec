"""The dispatcher's pages: the board's pool, one order with its moves, finding an order;
the same scope and rules as the API, and bad input answered with a page, never a 500."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.asgi import create_app
from app.models import Account, AuditEntry, Order, OrderEvent
from tests.conftest import serve
from tests.console.signing_in import csrf_of, form, sign_in
from tests.factories import agent_id, submit, upload_photo


async def _status(ctx, order_id: int) -> str:
    return await ctx.db.run_read(
        lambda s: s.scalar(select(Order.status).where(Order.id == order_id))
    )


async def _events(ctx, order_id: int) -> int:
    return await ctx.db.run_read(
        lambda s: s.scalar(select(func.count(OrderEvent.id)).where(OrderEvent.order_id == order_id))
    )


async def test_an_order_in_the_pool_is_assigned_from_the_board(client, demo, login, ctx):
    order = (await submit(client, await login("resident1"))).json()
    phone = await login("dispatcher1a")
    csrf = await sign_in(client, phone)
    board = (await client.get("/console/")).text
    assert order["number"] in board and "待派单（1）" in board
    liu = await agent_id(client, phone, "刘桂兰")
    assert f'<option value="{liu}">刘桂兰' in board

    assigned = await client.post(
        f"/console/orders/{order['id']}/assign", data=form(csrf, agent_id=str(liu))
    )
    assert assigned.status_code == 303
    assert assigned.headers["location"] == f"/console/orders/{order['id']}?done=assign"
    page = (await client.get(assigned.headers["location"])).text
    assert "已派单。" in page and "待接单" in page and "刘桂兰" in page
    assert await _status(ctx, order["id"]) == "assigned"
    assert "派单池是空的" in (await client.get("/console/board/parts")).text

    # The agent's move, made on the phone, is on the order page at its next load.
    agent = await login("agent1a")
    took = await client.post(f"/mp/v1/agent/orders/{order['id']}/take", json={}, headers=agent)
    assert took.status_code == 200
    assert "审核中" in (await client.get(f"/console/orders/{order['id']}")).text


async def test_an_illegal_move_shows_the_reason_and_changes_nothing(client, demo, login, ctx):
    order = (await submit(client, await login("resident1"))).json()
    phone = await login("dispatcher1a")
    csrf = await sign_in(client, phone)
    liu = await agent_id(client, phone, "刘桂兰")
    url = f"/console/orders/{order['id']}/assign"
    assert (await client.post(url, data=form(csrf, agent_id=str(liu)))).status_code == 303
    events = await _events(ctx, order["id"])

    again = await client.post(url, data=form(csrf, agent_id=str(liu)))
    api = await client.post(
        f"/mp/v1/dispatch/orders/{order['id']}/assign", json={"agentId": liu}, headers=phone
    )
    assert again.status_code == api.status_code == 409
    assert api.json()["title"] in again.text and 'role="alert"' in again.text
    assert "Traceback" not in again.text
    assert await _status(ctx, order["id"]) == "assigned"
    assert await _events(ctx, order["id"]) == events


async def test_reassign_and_terminate_need_a_reason(client, demo, login, ctx):
    order = (await submit(client, await login("resident1"))).json()
    phone = await login("dispatcher1a")
    csrf = await sign_in(client, phone)
    base = f"/console/orders/{order['id']}"
    liu, wang_id = [await agent_id(client, phone, n) for n in ("刘桂兰", "王建军")]
    await client.post(f"{base}/assign", data=form(csrf, agent_id=str(liu)))
    no_reason = await client.post(f"{base}/reassign", data=form(csrf, agent_id=str(wang_id)))
    assert no_reason.status_code == 400 and "填写的内容有误" in no_reason.text
    moved = await client.post(
        f"{base}/reassign", data=form(csrf, agent_id=str(wang_id), reason="刘桂兰外出培训")
    )
    assert moved.status_code == 303
    page = (await client.get(moved.headers["location"])).text
    assert "已改派。" in page and "王建军" in page and "刘桂兰外出培训" in page

    early = await client.post(f"{base}/terminate", data=form(csrf, reason="群众要求不再办理"))
    assert early.status_code == 409 and await _status(ctx, order["id"]) == "assigned"
    agent = await login("agent1b")
    for move in ("take", "accept"):
        done = await client.post(
            f"/mp/v1/agent/orders/{order['id']}/{move}", json={}, headers=agent
        )
        assert done.status_code == 200, done.text
    ended = await client.post(f"{base}/terminate", data=form(csrf, reason="群众要求不再办理"))
    assert ended.status_code == 303
    assert await _status(ctx, order["id"]) == "cancelled"
    assert "群众要求不再办理" in (await client.get(ended.headers["location"])).text


async def test_another_towns_dispatcher_sees_none_of_it(client, demo, login, ctx, settings):
    order = (await submit(client, await login("resident1"))).json()
    liu = await agent_id(client, await login("dispatcher1a"), "刘桂兰")
    csrf = await sign_in(client, await login("dispatcher2a"))
    board = (await client.get("/console/")).text
    assert "西集镇" in board and order["number"] not in board
    page = await client.get(f"/console/orders/{order['id']}")
    assert page.status_code == 404 and order["number"] not in page.text
    assert "杨春华" in page.text  # the error page keeps the signed-in menu
    photo = await client.get(f"/console/orders/{order['id']}/uploads/1")
    assert photo.status_code == 404
    found = await client.get("/console/orders", params={"number": order["number"]})
    assert found.status_code == 200 and "本镇没有编号为" in found.text
    listed = await client.get("/console/orders")
    assert "没有符合条件的办件" in listed.text
    refused = await client.post(
        f"/console/orders/{order['id']}/assign", data=form(csrf, agent_id=str(liu))
    )
    assert refused.status_code == 404
    assert await _status(ctx, order["id"]) == "submitted"


async def test_an_order_is_found_by_its_number(client, demo, login):
    order = (await submit(client, await login("resident1"))).json()
    await sign_in(client, await login("dispatcher1a"))
    found = await client.get("/console/orders", params={"number": order["number"].lower()})
    assert (
        found.status_code == 303 and found.headers["location"] == f"/console/orders/{order['id']}"
    )
    listed = (await client.get("/console/orders", params={"status": "submitted"})).text
    assert order["number"] in listed


async def test_the_order_page_shows_materials_with_short_lived_photo_links(client, demo, login):
    order = (await submit(client, await login("resident1"))).json()
    await sign_in(client, await login("dispatcher1a"))
    page = (await client.get(f"/console/orders/{order['id']}")).text
    thumbnails = re.findall(r'<img src="([^"]+)"', page)
    assert thumbnails and all("signature=" in t and "expires=" in t for t in thumbnails)
    link = re.search(rf'href="(/console/orders/{order["id"]}/uploads/\d+)"', page)
    assert link
    full = await client.get(link[1])
    assert full.status_code == 303 and "signature=" in full.headers["location"]
    assert "办理过程" in page and "提交" in page


async def test_an_admin_is_not_shown_the_dispatchers_pages(client, demo, login):
    await sign_in(client, await login("admin"))
    page = await client.get("/console/orders")
    assert page.status_code == 403 and "这是镇便民服务中心调度员的页面" in page.text


HOSTILE = [
    {"agent_id": str(2**63)},
    {"agent_id": "-1"},
    {"agent_id": "1\x00"},
    {"agent_id": "[" * 1000},
    {},
    {"agent_id": "1", "reason": "a\x00b"},
]


@pytest.mark.parametrize("fields", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_forms_get_a_page_not_a_500_and_change_nothing(
    client, demo, login, ctx, fields
):
    order = (await submit(client, await login("resident1"))).json()
    csrf = await sign_in(client, await login("dispatcher1a"))
    events = await _events(ctx, order["id"])
    for action in ("assign", "reassign", "terminate"):
        response = await client.post(
            f"/console/orders/{order['id']}/{action}", data=form(csrf, **fields)
        )
        # 404: the agent named is not one of the town's
        assert response.status_code in (400, 404, 409), (action, response.status_code)
        assert "<title>" in response.text and "Traceback" not in response.text
    assert await _status(ctx, order["id"]) == "submitted"
    assert await _events(ctx, order["id"]) == events


@pytest.mark.parametrize(
    "path",
    [
        "/console/orders/9223372036854775808",
        "/console/orders?cursor=99999999999999999999",
        "/console/orders?status=nothing",
        "/console/orders?status=&number=",
        "/console/orders?agent=9223372036854775808",
        "/console/orders?agent=-1",
        "/console/ratings?cursor=9223372036854775808",
        "/console/figures?from=0001-01-01&to=9999-12-31",
        "/console/figures?from=2026-02-30",
        "/console/figures/export?status=nothing",
        "/console/figures/export?village=abc",
        "/console/figures/export?agent=1.5",
        "/console/figures/export?agent=99999999999999999",
        "/console/orders?number=%00",
        "/console/orders?number=" + "9" * 5000,
        "/console/nothing",
        "/console/sign-in?why=%00",
    ],
)
async def test_hostile_addresses_get_a_page_not_a_500(client, demo, login, path, ctx, settings):
    await sign_in(client, await login("dispatcher1a"))
    response = await client.get(path)
    assert response.status_code in (200, 303, 400, 404, 422), response.status_code
    assert response.status_code == 303 or "<title>" in response.text
    async with serve(create_app(settings, ctx=ctx)) as stranger:
        unsigned = await stranger.get(path)
        assert unsigned.status_code in (200, 303, 400, 404, 422), unsigned.status_code


async def _audit(ctx, action: str) -> list[AuditEntry]:
    return await ctx.db.run_read(
        lambda s: list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))
    )


async def test_orders_are_found_by_the_persons_id_number_or_phone_and_audited(
    client, demo, login, ctx
):
    order = (await submit(client, await login("resident1"))).json()
    me = (await client.get("/mp/v1/me", headers=await login("resident1"))).json()
    await sign_in(client, await login("dispatcher1a"))
    board = (await client.get("/console/")).text
    csrf = csrf_of(board)
    id_number = await ctx.db.run_read(
        lambda s: ctx.cipher.decrypt(
            s.scalar(select(Account.id_number_enc).where(Account.id == me["id"])),
            context="id_number",
        )
    )
    no_purpose = await client.post(
        "/console/orders/search", data=form(csrf, by="id_number", value=id_number)
    )
    assert no_purpose.status_code == 422 and "须写明用途" in no_purpose.text
    found = await client.post(
        "/console/orders/search",
        data=form(csrf, by="id_number", value=id_number.lower(), purpose="群众来电查询进度"),
    )
    assert found.status_code == 200 and order["number"] in found.text and "张**" in found.text
    assert id_number not in found.text
    by_phone = await client.post(
        "/console/orders/search",
        data=form(csrf, by="phone", value="13800000000", purpose="群众来电查询进度"),
    )
    assert "本镇没有这位群众的办件" in by_phone.text
    bad = await client.post(
        "/console/orders/search",
        data=form(csrf, by="id_number", value="110101190001011234", purpose="群众来电查询进度"),
    )
    assert bad.status_code == 422 and "身份证号码" in bad.text
    searches = await _audit(ctx, "pii.search")
    assert [(e.target, e.purpose) for e in searches] == [
        ("orders-by:id_number", "群众来电查询进度"),
        ("orders-by:phone", "群众来电查询进度"),
    ]
    assert all(id_number not in str(e.detail) for e in searches)

    # On the order page the resident is masked, and in full only for a stated purpose.
    page = (await client.get(f"/console/orders/{order['id']}")).text
    assert "张**" in page and id_number not in page
    shown = await client.post(
        f"/console/orders/{order['id']}/resident", data=form(csrf, purpose="电话联系群众补正材料")
    )
    assert shown.status_code == 200 and "张秀英" in shown.text and id_number in shown.text
    reads = await _audit(ctx, "pii.read")
    assert [(e.target, e.purpose) for e in reads] == [
        (f"order:{order['id']}", "电话联系群众补正材料")
    ]


async def test_another_towns_dispatcher_finds_nobody_and_sees_no_one(client, demo, login, ctx):
    order = (await submit(client, await login("resident1"))).json()
    await sign_in(client, await login("dispatcher2a"))
    csrf = csrf_of((await client.get("/console/")).text)
    found = await client.post(
        "/console/orders/search", data=form(csrf, by="name", value="张秀英", purpose="核对群众信息")
    )
    assert "本镇没有这位群众的办件" in found.text
    shown = await client.post(
        f"/console/orders/{order['id']}/resident", data=form(csrf, purpose="核对群众信息")
    )
    assert shown.status_code == 404 and "张秀英" not in shown.text


async def test_an_escalated_orders_steps_show_on_the_board_and_the_order_page(client, demo, login):
    order = (await submit(client, await login("resident1"), "RS-0003")).json()
    phone = await login("dispatcher1a")
    await client.post(
        f"/mp/v1/dispatch/orders/{order['id']}/assign",
        json={"agentId": await agent_id(client, phone, "刘桂兰")},
        headers=phone,
    )
    agent = await login("agent1a")
    for action in ("take", "accept"):
        moved = await client.post(
            f"/mp/v1/agent/orders/{order['id']}/{action}", json={}, headers=agent
        )
        assert moved.status_code == 200, moved.text
    receipt = await upload_photo(client, agent)
    sent = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/progress",
        json={
            "step": "sent",
            "on": "2026-11-23",
            "department": "hrss",
            "receiptUploadIds": [receipt],
        },
        headers=agent,
    )
    assert sent.status_code == 200, sent.text
    await sign_in(client, phone)
    board = (await client.get("/console/board/parts")).text
    assert "上报件、联办件办理中（1）" in board
    assert "区人力资源和社会保障局 · 报送 11月23日" in board
    page = (await client.get(f"/console/orders/{order['id']}")).text
    assert "上报件" in page and "上报进度" in page
    assert "已报送区人力资源和社会保障局审核" in page  # the timeline's plain words
    assert "绿色通道（按年龄）" in page  # resident1 is 78
