"""The public progress page behind the slip's QR code: no login, the last four digits of the
ID number or phone first, then only the status, the timeline in plain Chinese, the due date
and whom to call; wrong digits refused and locked out; views counted."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from app.models import Order
from console import progress_page as edge
from tests.factories import agent_id
from tests.orders.test_slip import (
    AGENT_PHONE,
    ID_NUMBER,
    PHONE,
    URL,
    accepted_order,
    pdf_text,
)


async def page_path(client, order) -> str:
    """The progress page's path, read off the slip the agent prints."""
    slip = await client.get(f"/mp/v1/agent/orders/{order['id']}/slip.pdf", headers=order["agent"])
    assert slip.status_code == 200, slip.text
    found = URL.search(pdf_text(slip.content))
    assert found
    return found[0].removeprefix("http://testserver")


async def _views(ctx, order_id: int) -> int:
    return await ctx.db.run_read(
        lambda s: s.scalar(select(Order.progress_page_views).where(Order.id == order_id))
    )


async def test_a_link_that_names_no_order_is_not_found(client, demo, login):
    order = await accepted_order(client, login)
    await page_path(client, order)
    for made_up in (secrets.token_urlsafe(24), "short", "a" * 200):
        assert (await client.get(f"/p/{made_up}")).status_code == 404
        posted = await client.post(f"/p/{made_up}", data={"digits": ID_NUMBER[-4:]})
        assert posted.status_code == 404 and "没有找到这份办件" in posted.text


async def test_an_order_whose_slip_was_never_printed_has_no_page(client, demo, login, ctx):
    order = await accepted_order(client, login)
    seed = await ctx.db.run_read(
        lambda s: s.scalar(select(Order.progress_page_seed).where(Order.id == order["id"]))
    )
    assert seed is None  # made with the first slip, not before


async def test_the_page_asks_for_the_digits_first_and_shows_nothing_else(client, demo, login):
    order = await accepted_order(client, login)
    path = await page_path(client, order)
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy
    assert "script-src" not in policy and "<script" not in page.text
    assert "set-cookie" not in page.headers
    assert f'<form method="post" action="{path}"' in page.text
    assert order["itemName"] not in page.text and "刘桂兰" not in page.text


async def test_the_right_id_digits_show_status_timeline_due_date_and_whom_to_call(
    client, demo, login, ctx
):
    order = await accepted_order(client, login)
    path = await page_path(client, order)
    assert await _views(ctx, order["id"]) == 0
    shown = await client.post(path, data={"digits": ID_NUMBER[-4:]})
    assert shown.status_code == 200, shown.text
    text = shown.text
    assert shown.headers["cache-control"] == "no-store" and "set-cookie" not in shown.headers
    assert order["itemName"] in text
    assert "办理中" in text and "正在办理，承诺2026年11月30日前办结。" in text
    assert "2026年11月30日前" in text
    assert "刘桂兰" in text and f'href="tel:{AGENT_PHONE}"' in text
    assert "店子村便民服务站" in text
    for step in ("提交委托", "派单", "接单", "受理"):
        assert f"{step} →" in text
    assert "进入派单池" not in text  # the staff's own hand-offs are not the resident's
    assert "李晓燕" not in text  # the dispatcher who assigned it: no other staff names
    assert "张秀英" not in text and "张*" not in text
    assert ID_NUMBER not in text and PHONE not in text
    assert await _views(ctx, order["id"]) == 1


async def test_the_phone_digits_work_too_and_each_view_is_counted(client, demo, login, ctx):
    order = await accepted_order(client, login)
    path = await page_path(client, order)
    for expected in (1, 2):
        shown = await client.post(path, data={"digits": PHONE[-4:]})
        assert shown.status_code == 200 and "办理中" in shown.text
        assert await _views(ctx, order["id"]) == expected
    # Typed with a Chinese keyboard's full-width digits: the same digits.
    full_width = ID_NUMBER[-4:].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert full_width != ID_NUMBER[-4:]
    shown = await client.post(path, data={"digits": full_width})
    assert shown.status_code == 200 and "办理中" in shown.text
    assert await _views(ctx, order["id"]) == 3


async def test_notes_meant_for_staff_stay_off_the_page(client, demo, login):
    order = await accepted_order(client, login)
    dispatcher = await login("dispatcher1a")
    moved = await client.post(
        f"/mp/v1/dispatch/orders/{order['id']}/reassign",
        json={"agentId": await agent_id(client, dispatcher, "王建军"), "reason": "刘桂兰请病假"},
        headers=dispatcher,
    )
    assert moved.status_code == 200, moved.text
    agent = await login("agent1b")
    held = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/hold",
        json={"reason": "等待区社保中心核对缴费记录"},
        headers=agent,
    )
    assert held.status_code == 200, held.text
    path = await page_path(client, {**order, "agent": agent})  # the agent who handles it now
    text = (await client.post(path, data={"digits": PHONE[-4:]})).text
    assert "中止办理 → 中止：等待区社保中心核对缴费记录" in text  # the resident's own notice
    assert "请病假" not in text and "改派" not in text
    assert "王建军" in text  # whom to call now: the agent who handles it


async def test_wrong_digits_are_refused_then_locked_out_then_let_in_after_the_wait(
    client, demo, login, ctx, clock
):
    order = await accepted_order(client, login)
    path = await page_path(client, order)
    wrong = "0000" if ID_NUMBER[-4:] != "0000" and PHONE[-4:] != "0000" else "1111"
    for left in (4, 3, 2, 1):
        refused = await client.post(path, data={"digits": wrong})
        assert refused.status_code == 403
        assert "不符" in refused.text and f"还可尝试{left}次" in refused.text
        assert "办理中" not in refused.text
    locked = await client.post(path, data={"digits": wrong})
    assert locked.status_code == 429 and "已暂时锁定" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    still = await client.post(path, data={"digits": PHONE[-4:]})  # even the right digits
    assert still.status_code == 429 and "办理中" not in still.text
    assert await _views(ctx, order["id"]) == 0
    clock.advance(minutes=16)
    shown = await client.post(path, data={"digits": PHONE[-4:]})
    assert shown.status_code == 200 and "办理中" in shown.text
    assert await _views(ctx, order["id"]) == 1


async def test_twenty_wrong_answers_in_a_day_lock_the_page_for_the_day(
    client, demo, login, clock, monkeypatch
):
    monkeypatch.setattr(edge, "ADDRESS_STRIKES", 1000)
    order = await accepted_order(client, login)
    path = await page_path(client, order)
    for _ in range(4):
        for _ in range(5):
            answer = await client.post(path, data={"digits": "abcd"})  # never digits: wrong
            assert answer.status_code in (403, 429)
        clock.advance(minutes=16)
    locked = await client.post(path, data={"digits": PHONE[-4:]})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 20 * 3600
    clock.advance(hours=24)
    assert (await client.post(path, data={"digits": PHONE[-4:]})).status_code == 200


async def test_one_address_cannot_try_many_slips(client, demo, login, monkeypatch):
    monkeypatch.setattr(edge, "ADDRESS_STRIKES", 3)
    first = await accepted_order(client, login)
    second = await accepted_order(client, login)
    one, other = await page_path(client, first), await page_path(client, second)
    for _ in range(3):
        assert (await client.post(one, data={"digits": "0001"})).status_code == 403
    refused = await client.post(other, data={"digits": PHONE[-4:]})
    assert refused.status_code == 429 and "尝试次数过多" in refused.text
    assert "办理中" not in refused.text
