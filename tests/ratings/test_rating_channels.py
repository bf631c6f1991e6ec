"""Ratings through every channel: the mini-program, the public progress page (a resident
without WeChat, after the digits), and a paper rating card (评价卡) typed in by the agent or
a dispatcher with a photo of the signed card. Each rating says its channel; the figures count
ratings by channel and keep staff-recorded cards apart, and the resident hears of a card
recorded in their name.

resident2 李建国 (西集村) is served by 吴秀芳 (agent4a); 西集镇's dispatcher is dispatcher2a."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.demo import demo_id_number
from app.models import Order, OrderEvent, Rating, Upload
from tests.factories import delivered, submit, upload_photo
from tests.notifications.test_reminders import messages
from tests.orders.test_slip import URL, pdf_text

TODAY = "from=2026-11-23&to=2026-11-23"
ID_DIGITS = demo_id_number("370406", "19650817", "031")[-4:]  # resident2's
TICKET = re.compile(r'name="ticket" value="([^"]+)"')


async def _card(client, headers, order_id: int, **body):
    return await client.post(
        f"/mp/v1/agent/orders/{order_id}/rating-card", json=body, headers=headers
    )


async def _rating_row(ctx, order_id: int) -> Rating | None:
    return await ctx.db.run_read(
        lambda s: s.scalar(select(Rating).where(Rating.order_id == order_id))
    )


async def test_a_paper_card_is_recorded_by_the_agent_with_its_photo(client, demo, login, ctx):
    order_id = await delivered(client, login)
    agent = await login("agent4a")
    before = (await client.get(f"/mp/v1/agent/orders/{order_id}", headers=agent)).json()
    assert "rating-card" in before["nextActions"]
    photo = await upload_photo(client, agent)
    recorded = await _card(
        client, agent, order_id, grade=4, tags=["办事快"], comment="挺好", cardUploadIds=[photo]
    )
    assert recorded.status_code == 201, recorded.text
    view = recorded.json()
    assert view["channel"] == "paper" and view["channelName"] == "纸质评价卡"
    assert view["recordedByName"] == "吴秀芳" and view["cardUploadIds"] == [photo]
    assert view["comment"] == "挺好"  # the service's own word list passed it

    row = await _rating_row(ctx, order_id)
    assert row is not None and row.channel == "paper" and row.recorded_by is not None
    order = await ctx.db.run_read(lambda s: s.get(Order, order_id))
    assert order.status == "closed"
    # The timeline names the agent who typed it in, and says it was a card.
    event = await ctx.db.run_read(
        lambda s: s.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id, OrderEvent.action == "rate")
        ).one()
    )
    assert event.actor_role == "agent" and event.actor_id == row.recorded_by
    assert "纸质评价卡" in (event.note or "")
    # The card's photo is the order's now.
    card = await ctx.db.run_read(lambda s: s.get(Upload, photo))
    assert card.order_id == order_id
    # The resident is told, with whom to call if it is not what they wrote.
    told = await messages(ctx, "resident2", "rating_card")
    assert len(told) == 1 and "满意" in told[0].body and "便民服务站" in told[0].body
    mine = await client.get(f"/mp/v1/orders/{order_id}/rating", headers=await login("resident2"))
    assert mine.json()["channel"] == "paper"
    after = (await client.get(f"/mp/v1/agent/orders/{order_id}", headers=agent)).json()
    assert "rating-card" not in after["nextActions"]
    # Once only, whichever channel comes second.
    again = await client.post(
        f"/mp/v1/orders/{order_id}/rating", json={"grade": 5}, headers=await login("resident2")
    )
    assert again.status_code == 409 and again.json()["code"] == "already_rated"


async def test_a_dispatcher_records_a_card_and_staff_see_it_apart(client, demo, login):
    order_id = await delivered(client, login)
    dispatcher = await login("dispatcher2a")
    photo = await upload_photo(client, dispatcher)
    recorded = await client.post(
        f"/mp/v1/dispatch/orders/{order_id}/rating-card",
        json={"grade": 2, "tags": ["超时"], "cardUploadIds": [photo]},
        headers=dispatcher,
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["recordedByName"] is not None
    assert recorded.json()["caseId"] is not None  # a bad rating opens its case as any other
    listed = (await client.get("/mp/v1/dispatch/ratings", headers=dispatcher)).json()
    assert [(r["orderId"], r["channel"]) for r in listed] == [(order_id, "paper")]
    # The agent rated sees the channel, not the card's photo or the order.
    theirs = (await client.get("/mp/v1/agent/ratings", headers=await login("agent4a"))).json()
    assert theirs[0]["channel"] == "paper" and theirs[0]["cardUploadIds"] is None


async def test_a_card_needs_its_photo_and_the_order_s_own_agent(client, demo, login, ctx):
    order_id = await delivered(client, login)
    agent = await login("agent4a")
    no_photo = await _card(client, agent, order_id, grade=5, cardUploadIds=[])
    assert no_photo.status_code == 422, no_photo.text
    assert no_photo.json()["errors"][0]["field"] == "cardUploadIds"
    missing_field = await _card(client, agent, order_id, grade=5)
    assert missing_field.status_code == 422
    someone_elses = await upload_photo(client, await login("agent1a"))
    foreign = await _card(client, agent, order_id, grade=5, cardUploadIds=[someone_elses])
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "cardUploadIds"
    bad_tag = await _card(
        client,
        agent,
        order_id,
        grade=5,
        tags=["超时"],
        cardUploadIds=[await upload_photo(client, agent)],
    )
    assert bad_tag.status_code == 422 and bad_tag.json()["errors"][0]["field"] == "tags"
    for value in (0, 6, 2**63, "5", None):
        wrong = await _card(client, agent, order_id, grade=value, cardUploadIds=[1])
        assert wrong.status_code == 422, (value, wrong.text)
        assert wrong.json()["code"] == "invalid_input"
    # Another town's agent cannot see the order; a resident cannot use the staff route.
    other = await _card(
        client,
        await login("agent1a"),
        order_id,
        grade=5,
        cardUploadIds=[await upload_photo(client, await login("agent1a"))],
    )
    assert other.status_code == 404
    as_resident = await _card(
        client, await login("resident2"), order_id, grade=5, cardUploadIds=[1]
    )
    assert as_resident.status_code == 403
    # Nothing was written by any of them.
    assert await _rating_row(ctx, order_id) is None
    order = await ctx.db.run_read(lambda s: s.get(Order, order_id))
    assert order.status == "delivered"


async def test_an_order_under_way_takes_no_card(client, demo, login):
    order = (await submit(client, await login("resident2"))).json()
    agent = await login("agent4a")
    await client.post(f"/mp/v1/agent/orders/{order['id']}/take", json={}, headers=agent)
    early = await _card(
        client, agent, order["id"], grade=5, cardUploadIds=[await upload_photo(client, agent)]
    )
    assert early.status_code == 409, early.text


# --- the progress page ------------------------------------------------------------------


async def _page_of(client, login, order_id: int) -> str:
    slip = await client.get(
        f"/mp/v1/agent/orders/{order_id}/slip.pdf", headers=await login("agent4a")
    )
    assert slip.status_code == 200, slip.text
    found = URL.search(pdf_text(slip.content))
    assert found
    return found[0].removeprefix("http://testserver")


async def _ticket(client, path: str) -> str:
    shown = await client.post(path, data={"digits": ID_DIGITS})
    assert shown.status_code == 200, shown.text
    found = TICKET.search(shown.text)
    assert found, shown.text
    return found[1]


async def test_a_resident_without_wechat_rates_on_the_progress_page(client, demo, login, ctx):
    order_id = await delivered(client, login)
    path = await _page_of(client, login, order_id)
    shown = await client.post(path, data={"digits": ID_DIGITS})
    assert "对这次代办服务满意吗" in shown.text and "非常满意" in shown.text
    ticket = TICKET.search(shown.text)[1]
    # First the grade: the page then offers that grade's tags.
    chosen = await client.post(f"{path}/rating", data={"ticket": ticket, "grade": "2"})
    assert chosen.status_code == 200
    assert "超时" in chosen.text and "办事快" not in chosen.text and "提交评价" in chosen.text
    assert await _rating_row(ctx, order_id) is None  # nothing written yet
    done = await client.post(
        f"{path}/rating",
        data={
            "ticket": ticket,
            "grade": "2",
            "confirm": "1",
            "tags": ["超时", "态度差"],
            "comment": "等了很久",
        },
    )
    assert done.status_code == 200, done.text
    assert "感谢您的评价" in done.text and "已评价：不满意（进度查询页）" in done.text
    assert "已归档" in done.text  # the page as it now stands, the rating on its timeline
    row = await _rating_row(ctx, order_id)
    assert row is not None and (row.channel, row.grade, row.tags) == ("web", 2, ["超时", "态度差"])
    assert row.recorded_by is None and row.comment == "等了很久"
    order = await ctx.db.run_read(lambda s: s.get(Order, order_id))
    assert order.status == "closed"
    # The bad rating's case opens for the town as any other.
    cases = await client.get("/mp/v1/dispatch/rectifications", headers=await login("dispatcher2a"))
    assert [c["orderId"] for c in cases.json()] == [order_id]
    # Once only: the page now says how it was rated and offers no form.
    again = await client.post(
        f"{path}/rating", data={"ticket": ticket, "grade": "5", "confirm": "1"}
    )
    assert again.status_code == 409 and "已经评价过了" in again.text
    assert (await _rating_row(ctx, order_id)).grade == 2
    later = await client.post(path, data={"digits": ID_DIGITS})
    assert "已评价：不满意" in later.text and 'name="ticket"' not in later.text


async def test_the_page_s_rating_needs_a_ticket_it_gave_and_still_valid(
    client, demo, login, ctx, clock
):
    order_id = await delivered(client, login)
    path = await _page_of(client, login, order_id)
    ticket = await _ticket(client, path)
    expires, _, mac = ticket.partition(".")
    for forged in ("", "x", f"{expires}.{'0' * 32}", f"{int(expires) + 3600}.{mac}", "9" * 64):
        refused = await client.post(
            f"{path}/rating", data={"ticket": forged, "grade": "5", "confirm": "1"}
        )
        assert refused.status_code == 403 and "重新输入后四位" in refused.text, forged
    other_order = await delivered(client, login)
    other_path = await _page_of(client, login, other_order)
    elsewhere = await client.post(
        f"{other_path}/rating", data={"ticket": ticket, "grade": "5", "confirm": "1"}
    )
    assert elsewhere.status_code == 403  # a ticket names its own page only
    clock.advance(minutes=31)
    late = await client.post(
        f"{path}/rating", data={"ticket": ticket, "grade": "5", "confirm": "1"}
    )
    assert late.status_code == 403
    assert await _rating_row(ctx, order_id) is None
    assert await _rating_row(ctx, other_order) is None


async def test_the_page_s_form_refuses_bad_input_and_writes_nothing(client, demo, login, ctx):
    order_id = await delivered(client, login)
    path = await _page_of(client, login, order_id)
    ticket = await _ticket(client, path)
    cases = (
        {"grade": "9", "confirm": "1"},  # not a grade: the grades again, nothing written
        {"grade": "5", "confirm": "1", "tags": ["超时"]},  # a bad tag for 非常满意
        {"grade": "5", "confirm": "1", "comment": "好\x00人"},
        {"grade": "5", "confirm": "1", "comment": "傻逼" * 400},  # cut at 500, then blocked
    )
    answers = [await client.post(f"{path}/rating", data={"ticket": ticket, **c}) for c in cases]
    assert answers[0].status_code == 200 and "非常满意" in answers[0].text
    assert answers[1].status_code == 422 and "不是这一评价可选的标签" in answers[1].text
    assert answers[2].status_code == 422 and "无法识别的字符" in answers[2].text
    assert answers[3].status_code == 200  # written: the comment is kept, hidden from staff
    row = await _rating_row(ctx, order_id)
    assert row is not None and row.comment_status == "blocked" and len(row.comment) == 500
    listed = (
        await client.get("/mp/v1/dispatch/ratings", headers=await login("dispatcher2a"))
    ).json()
    assert listed[0]["comment"] is None


async def test_an_order_under_way_offers_no_rating_on_its_page(client, demo, login):
    order = (await submit(client, await login("resident2"))).json()
    agent = await login("agent4a")
    for action in ("take", "accept"):
        await client.post(f"/mp/v1/agent/orders/{order['id']}/{action}", json={}, headers=agent)
    path = await _page_of(client, login, order["id"])
    shown = await client.post(path, data={"digits": ID_DIGITS})
    assert shown.status_code == 200 and 'name="ticket"' not in shown.text


# --- the figures --------------------------------------------------------------------------


async def test_the_figures_count_channels_and_keep_cards_apart(client, demo, login):
    by_app, by_card, by_page = [await delivered(client, login) for _ in range(3)]
    resident = await login("resident2")
    await client.post(f"/mp/v1/orders/{by_app}/rating", json={"grade": 1}, headers=resident)
    agent = await login("agent4a")
    card = await _card(
        client, agent, by_card, grade=5, cardUploadIds=[await upload_photo(client, agent)]
    )
    assert card.status_code == 201
    path = await _page_of(client, login, by_page)
    ticket = await _ticket(client, path)
    await client.post(f"{path}/rating", data={"ticket": ticket, "grade": "4", "confirm": "1"})

    dispatcher = await login("dispatcher2a")
    by_agent = (
        await client.get(f"/mp/v1/dispatch/satisfaction?{TODAY}&by=agent", headers=dispatcher)
    ).json()
    total = by_agent["total"]
    assert total["channels"] == {"app": 1, "web": 1, "paper": 1, "default": 0}
    assert total["paperRatings"] == 1 and total["paperSatisfactionRate"] == 1.0
    assert total["satisfactionRate"] == round(2 / 3, 4)
    assert total["satisfactionRateWithoutPaper"] == 0.5
    stats = (await client.get(f"/mp/v1/dispatch/stats?{TODAY}", headers=dispatcher)).json()
    assert stats["ratingChannels"] == {"app": 1, "web": 1, "paper": 1, "default": 0}
    assert stats["paperRatings"] == 1 and stats["satisfactionRateWithoutPaper"] == 0.5
