"""The 受理单 (and the 回执 after 回交) as a PDF: its facts, both layouts, who may have it,
none before 受理, the resident masked, and the QR code that opens the progress page."""

from __future__ import annotations

import io
import re
from typing import Any

import segno
from pypdf import PdfReader

from app.demo import demo_id_number
from app.orders.outputs import RIGHTS_AND_DUTIES
from tests.console.signing_in import sign_in
from tests.factories import delivered, submit, taken_by_agent1a

ID_NUMBER = demo_id_number("370406", "19480312", "022")  # resident1 张秀英
PHONE = "13906321234"
AGENT_PHONE = "13806320101"  # agent1a 刘桂兰's duty phone
URL = re.compile(r"http://testserver/p/[A-Za-z0-9_-]{32}")
MM = 72 / 25.4


async def accepted_order(client: Any, login: Any) -> dict[str, Any]:
    """resident1's order, taken and accepted by agent1a (Monday 23 Nov, 5 working days)."""
    resident = await login("resident1")
    submitted = await submit(client, resident)
    assert submitted.status_code == 201, submitted.text
    order = submitted.json()
    agent = await taken_by_agent1a(client, login, order["id"])
    accepted = await client.post(
        f"/mp/v1/agent/orders/{order['id']}/accept", json={}, headers=agent
    )
    assert accepted.status_code == 200, accepted.text
    return {**accepted.json(), "agent": agent, "resident": resident}


def pdf_text(data: bytes) -> str:
    """The PDF's text with every space and line break removed (lines wrap anywhere)."""
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))


def qr_matches(data: bytes, url: str) -> bool:
    """Decode by comparison: the PDF's one image, module by module, is the QR code segno
    makes of `url` (the slip draws it at 8 pixels a module with a 2-module border)."""
    images = PdfReader(io.BytesIO(data)).pages[0].images
    assert len(images) == 1
    picture = images[0].image.convert("L")
    matrix = segno.make(url, error="m").matrix
    side = len(matrix) + 4
    assert picture.width == picture.height == side * 8
    for row, line in enumerate(matrix):
        for column, dark in enumerate(line):
            pixel = picture.getpixel(((column + 2) * 8 + 4, (row + 2) * 8 + 4))
            if (pixel < 128) != bool(dark):
                return False
    return True


async def test_the_a4_slip_says_what_the_acceptance_slip_says_with_the_resident_masked(
    client, demo, login
):
    order = await accepted_order(client, login)
    response = await client.get(
        f"/mp/v1/agent/orders/{order['id']}/slip.pdf", headers=order["agent"]
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith(
        f'inline; filename="{order["number"]}.pdf"'
    )
    assert response.headers["cache-control"] == "no-store"
    reader = PdfReader(io.BytesIO(response.content))
    assert round(float(reader.pages[0].mediabox.width) / MM) == 210  # A4
    text = pdf_text(response.content)
    assert "帮办代办受理单" in text
    assert order["number"] in text and order["itemName"] in text
    assert "最迟2026年11月30日" in text  # the last working day: 5 working days from Mon 23
    assert "免费代办" in text
    assert "刘桂兰" in text and AGENT_PHONE in text and "店子村便民服务站" in text
    assert re.sub(r"\s+", "", RIGHTS_AND_DUTIES) in text
    assert "张**" in text
    assert "张秀英" not in text and ID_NUMBER not in text and PHONE not in text
    assert ID_NUMBER[-4:] not in text and PHONE[-4:] not in text


async def test_the_receipt_layout_is_an_80mm_roll_as_long_as_its_content(client, demo, login):
    order = await accepted_order(client, login)
    response = await client.get(
        f"/mp/v1/orders/{order['id']}/slip.pdf?layout=receipt", headers=order["resident"]
    )
    assert response.status_code == 200, response.text
    page = PdfReader(io.BytesIO(response.content)).pages
    assert len(page) == 1
    assert round(float(page[0].mediabox.width) / MM) == 80
    assert 100 < float(page[0].mediabox.height) / MM < 297  # a strip, not a sheet
    text = pdf_text(response.content)
    assert order["number"] in text and "免费代办" in text and "刘桂兰" in text
    assert "张**" in text and "张秀英" not in text
    assert URL.search(text)


async def test_the_qr_code_holds_the_link_printed_under_it_and_it_opens_the_page(
    client, demo, login
):
    order = await accepted_order(client, login)
    first = await client.get(f"/mp/v1/agent/orders/{order['id']}/slip.pdf", headers=order["agent"])
    found = URL.search(pdf_text(first.content))
    assert found, "no link under the QR code"
    assert qr_matches(first.content, found[0])
    assert not qr_matches(first.content, found[0][:-1] + ("A" if found[0][-1] != "A" else "B"))
    page = await client.get(found[0].removeprefix("http://testserver"))
    assert page.status_code == 200 and "后四位" in page.text
    # Printed again, by anyone allowed: the same link (the token is derived, not stored).
    again = await client.get(
        f"/mp/v1/dispatch/orders/{order['id']}/slip.pdf?layout=receipt",
        headers=await login("dispatcher1a"),
    )
    assert again.status_code == 200, again.text
    assert URL.search(pdf_text(again.content))[0] == found[0]  # type: ignore[index]


async def test_no_slip_before_acceptance(client, demo, login):
    resident = await login("resident1")
    order = (await submit(client, resident)).json()
    agent = await taken_by_agent1a(client, login, order["id"])
    for path, headers in (
        (f"/mp/v1/agent/orders/{order['id']}/slip.pdf", agent),
        (f"/mp/v1/orders/{order['id']}/slip.pdf", resident),
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "slip_not_issued"


async def test_only_the_orders_own_people_get_its_slip(client, demo, login):
    order = await accepted_order(client, login)
    path = f"/orders/{order['id']}/slip.pdf"
    answers = {
        "agent1a": ("/mp/v1/agent", 200),
        "agent1b": ("/mp/v1/agent", 403),  # same station, not the order's agent
        "agent2a": ("/mp/v1/agent", 404),  # another village
        "resident1": ("/mp/v1", 200),
        "resident2": ("/mp/v1", 404),
        "dispatcher1a": ("/mp/v1/dispatch", 200),
        "dispatcher2a": ("/mp/v1/dispatch", 404),  # another town
    }
    for handle, (prefix, status) in answers.items():
        response = await client.get(prefix + path, headers=await login(handle))
        assert response.status_code == status, (handle, response.text[:200])
    # A route of another role: 403.
    wrong_role = await client.get(f"/mp/v1/agent{path}", headers=await login("resident1"))
    assert wrong_role.status_code == 403


async def test_after_hand_back_the_paper_is_a_receipt_with_the_outcome(client, demo, login):
    order_id = await delivered(client, login)  # resident2, agent4a 吴秀芳, picked up
    response = await client.get(
        f"/mp/v1/orders/{order_id}/slip.pdf", headers=await login("resident2")
    )
    assert response.status_code == 200, response.text
    text = pdf_text(response.content)
    assert "帮办代办回执" in text and "帮办代办受理单" not in text
    assert "办理结果准予办理" in text
    assert "办结日期2026年11月23日" in text
    assert "回交方式自取,2026年11月23日" in text
    assert "李**" in text and "李建国" not in text


async def test_the_console_order_page_links_the_slip_to_print(client, demo, login):
    order = await accepted_order(client, login)
    await sign_in(client, await login("dispatcher1a"))
    page = await client.get(f"/console/orders/{order['id']}")
    assert page.status_code == 200
    link = f'href="/console/orders/{order["id"]}/slip.pdf"'
    assert link in page.text and "打印受理单（A4）" in page.text
    assert f'href="/console/orders/{order["id"]}/slip.pdf?layout=receipt"' in page.text
    pdf = await client.get(f"/console/orders/{order['id']}/slip.pdf?layout=receipt")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert order["number"] in pdf_text(pdf.content)
    # Before acceptance there is no link, and the address answers the console's error page.
    fresh = (await submit(client, await login("resident1"))).json()
    assert "slip.pdf" not in (await client.get(f"/console/orders/{fresh['id']}")).text
    early = await client.get(f"/console/orders/{fresh['id']}/slip.pdf")
    assert early.status_code == 409 and "还没有受理单" in early.text
