"""The console in a real browser: headless Chromium (Debian's package) driven by Playwright
against the real service started by the test, the mini-program's part played over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import openpyxl
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import free_port, settings_env
from tests.factories import agent_id, submit

CHROMIUM = os.environ.get("DAIBAN_TEST_CHROMIUM", "/usr/bin/chromium")
# As root, in a closed network: no sandbox, no GPU, no calls home (which fail here).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The board refreshes itself every 15 s; a little more for a slow machine.
BOARD_REFRESH_MS = 25_000

pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it)"
)


class Service:
    def __init__(self, url: str) -> None:
        self.url = url
        self.api = httpx.AsyncClient(base_url=url, timeout=30)

    async def phone(self, handle: str) -> dict[str, str]:
        """The mini-program of a demo person: the Authorization header of its login."""
        response = await self.api.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['accessToken']}"}


@pytest.fixture
def served(tmp_path: Path, database_url: str, demo: None) -> Iterator[str]:
    """`daiban serve` on the test's database (the demo district seeded), as an operator
    starts it; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAIBAN_")},
        **settings_env(
            tmp_path / "var",
            database_url,
            DAIBAN_SERVER_PORT=str(port),
            DAIBAN_STORAGE_PUBLIC_URL=url,
            DAIBAN_DEMO_DATA="false",
        ),
    }
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("the service did not come up")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


@pytest.fixture
async def service(served: str) -> AsyncIterator[Service]:
    service = Service(served)
    yield service
    await service.api.aclose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


async def _signed_in_by_qr(browser: Browser, service: Service, handle: str) -> Page:
    """A new browser at the sign-in page; the phone of `handle` scans and confirms."""
    context = await browser.new_context(
        base_url=service.url, viewport={"width": 1366, "height": 768}, locale="zh-CN"
    )
    page = await context.new_page()
    await page.goto("/console/sign-in")
    await expect(page).to_have_title(re.compile("^登录"))
    scanned = await page.locator("figure.qr").get_attribute("data-scan")
    assert scanned and scanned.startswith(f"{service.url}/console/q/")
    code = scanned.rsplit("/", 1)[1]
    phone = await service.phone(handle)
    scan = await service.api.post("/mp/v1/auth/console/scan", json={"code": code}, headers=phone)
    assert scan.status_code == 200, scan.text
    await expect(page.get_by_text("已扫码，请在手机上确认登录。")).to_be_visible()
    await expect(page.locator("#sign-in-state")).to_contain_text(
        {"dispatcher1a": "李晓燕", "admin": "王立新"}.get(handle, "")
    )
    confirm = await service.api.post(
        "/mp/v1/auth/console/confirm", json={"code": code}, headers=phone
    )
    assert confirm.status_code == 204, confirm.text
    await expect(page).to_have_url(f"{service.url}/console/")
    return page


async def test_a_dispatcher_signs_in_by_qr_and_dispatches_an_order_from_the_board(browser, service):
    page = await _signed_in_by_qr(browser, service, "dispatcher1a")
    await expect(page).to_have_title("调度台 · 帮办代办工作台")
    await expect(page.get_by_role("heading", name="调度台 · 店子镇")).to_be_visible()
    await expect(page.get_by_role("heading", name="待派单（0）")).to_be_visible()

    # A resident's order arrives: the board shows it without being reloaded.
    resident = await service.phone("resident1")
    order = (await submit(service.api, resident)).json()
    pool = page.get_by_role("row").filter(has_text=order["number"])
    await expect(pool).to_be_visible(timeout=BOARD_REFRESH_MS)
    await expect(page.get_by_role("heading", name="待派单（1）")).to_be_visible()

    # Assigned from the board, with the keyboard-labelled list of the town's agents.
    dispatcher = await service.phone("dispatcher1a")
    liu, wang = [await agent_id(service.api, dispatcher, n) for n in ("刘桂兰", "王建军")]
    await pool.get_by_label("派给哪位代办员").select_option(str(liu))
    await pool.get_by_role("button", name="派单").click()
    await expect(page).to_have_url(re.compile(rf"/console/orders/{order['id']}\?done=assign$"))
    await expect(page.get_by_role("status")).to_have_text("已派单。")
    await expect(page.locator("dl.facts").first).to_contain_text("待接单")
    # The materials' photos show as thumbnails, from the short-lived links.
    photos = page.locator("td.photos img")
    await expect(photos.first).to_be_visible()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('td.photos img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )

    # The agent takes it on the phone: the order page shows the move.
    agent = await service.phone("agent1a")
    took = await service.api.post(f"/mp/v1/agent/orders/{order['id']}/take", json={}, headers=agent)
    assert took.status_code == 200, took.text
    await page.reload()
    await expect(page.locator("dl.facts").first).to_contain_text("审核中")
    await expect(page.locator("ol.timeline")).to_contain_text("接单")

    # An illegal move: the Chinese reason on the page, no stack trace.
    await page.goto(f"/console/orders/{order['id']}")
    reassign = page.locator("form", has=page.get_by_label("改派原因"))
    await reassign.get_by_label("改派给").select_option(str(wang))
    await reassign.get_by_label("改派原因").fill("刘桂兰外出培训")
    await reassign.get_by_role("button", name="改派").click()
    await expect(page.get_by_role("status")).to_have_text("已改派。")

    # A dispatcher of another town sees none of it.
    other = await browser.new_context(base_url=service.url)
    stranger = await other.new_page()
    await stranger.goto("/console/sign-in")
    await stranger.get_by_label("演示登录码").fill("dev:dispatcher2a")
    await stranger.get_by_role("button", name="登录").click()
    await expect(stranger.get_by_role("heading", name="调度台 · 西集镇")).to_be_visible()
    await expect(stranger.locator("main")).not_to_contain_text(order["number"])
    await stranger.goto(f"/console/orders/{order['id']}")
    await expect(stranger.get_by_role("alert")).to_contain_text("没有找到")
    await stranger.goto(f"/console/orders?number={order['number']}")
    await expect(stranger.get_by_role("status")).to_contain_text("本镇没有编号为")

    # Signing out ends the session: the board is behind the sign-in page again.
    await page.get_by_role("button", name="退出").click()
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?why=session_ended$"))
    await page.goto("/console/")
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?why=console_signed_out$"))


async def test_a_complaint_is_answered_and_the_ledger_downloaded(browser, service, tmp_path):
    resident = await service.phone("resident1")
    order = (await submit(service.api, resident)).json()
    made = await service.api.post(
        "/mp/v1/complaints",
        json={"orderId": order["id"], "text": "提交两天了还没有人联系我"},
        headers=resident,
    )
    assert made.status_code == 201, made.text
    admin = await service.phone("admin")
    month = order["number"][2:6] + "-" + order["number"][6:8]  # DB + yyyymmdd + sequence
    built = await service.api.post(
        "/mp/v1/admin/ledgers/build", json={"month": month}, headers=admin
    )
    assert built.status_code == 200, built.text

    page = await _signed_in_by_qr(browser, service, "dispatcher1a")
    await page.get_by_role("link", name="投诉与整改").click()
    await expect(page).to_have_title(re.compile("^投诉与整改"))
    await page.get_by_role("link", name="提交两天了还没有人联系我").click()
    await expect(page.locator("dl.facts")).to_contain_text("待答复")
    await page.get_by_label("答复内容（群众会在小程序中看到）").fill("已安排代办员今天上午联系您")
    await page.get_by_role("button", name="提交答复").click()
    await expect(page.get_by_role("status")).to_have_text("已答复，群众会在小程序中收到。")
    mine = await service.api.get(f"/mp/v1/complaints/{made.json()['id']}", headers=resident)
    assert mine.json()["answer"] == "已安排代办员今天上午联系您"

    await page.get_by_role("link", name="统计与台账").click()
    ledger = page.get_by_role("row").filter(has_text="店子镇（汇总）").get_by_role("link")
    async with page.expect_download() as download_info:
        await ledger.click()
    download = await download_info.value
    saved = tmp_path / "ledger.xlsx"
    await download.save_as(saved)
    workbook = openpyxl.load_workbook(saved)
    assert workbook.sheetnames  # a real workbook, the town's month

    async with page.expect_download() as export_info:
        await page.get_by_role("button", name=re.compile("^导出")).click()
    export = await export_info.value
    assert export.suggested_filename.startswith("办件清单_")


async def test_the_pages_load_nothing_from_outside_the_service(browser, service):
    """County intranets have no internet: every script and style comes from the service."""
    page = await _signed_in_by_qr(browser, service, "dispatcher1a")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for path in ("/console/", "/console/orders", "/console/sign-in"):
        await page.goto(path)
        await page.wait_for_load_state("networkidle")
    await asyncio.sleep(0)
    assert requested and all(url.startswith(service.url) for url in requested), requested
    scripts = await page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
    assert len(scripts) == 1 and scripts[0].startswith(
        f"{service.url}/console/static/htmx.min.js?v="
    )


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter(el => el.type !== 'hidden')
    .filter(el => el.tagName === 'BUTTON' ? !el.textContent.trim() : el.labels.length === 0)
    .map(el => el.outerHTML.slice(0, 80))"""


async def test_every_field_is_labelled_and_the_keyboard_reaches_the_work(browser, service):
    """Office PCs, and people who work by keyboard: every field has its label, every page
    its title, and a dispatcher assigns an order without the mouse."""
    resident = await service.phone("resident1")
    order = (await submit(service.api, resident)).json()
    page = await _signed_in_by_qr(browser, service, "dispatcher1a")
    for path in (
        "/console/",
        "/console/orders",
        f"/console/orders/{order['id']}",
        "/console/agents",
        "/console/cases",
        "/console/ratings",
        "/console/figures",
        "/console/offer",
    ):
        await page.goto(path)
        assert await page.title(), path
        assert await page.evaluate(UNLABELLED) == [], path

    admin = await _signed_in_by_qr(browser, service, "admin")
    for path in (
        "/console/",
        "/console/admin/staff",
        "/console/admin/catalogue",
        "/console/admin/catalogue/items/RS-0001",
        "/console/admin/appeals",
        "/console/admin/calendar/2027",
        "/console/admin/audit",
        "/console/admin/jobs",
    ):
        await admin.goto(path)
        assert await admin.title(), path
        assert await admin.evaluate(UNLABELLED) == [], path

    await page.goto("/console/")
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="跳到正文")
    await expect(skip).to_be_focused()
    pool = page.get_by_role("row").filter(has_text=order["number"])
    await pool.get_by_label("派给哪位代办员").focus()
    await page.keyboard.press("Tab")
    await expect(pool.get_by_role("button", name="派单")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text("已派单。")
