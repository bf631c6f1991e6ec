"""Screenshots of the console's main pages for docs/console.md, made anew from the demo
district: `make screenshots` (or `.venv/bin/python docs/screenshots/take.py`).

It serves the service on a fresh SQLite file with the demo data, plays a morning's work
through the API (orders submitted, one dispatched, a complaint), signs in with a demo code
and saves 1366×768 PNGs beside this script. It needs Debian's `chromium` and a Chinese
font (`fonts-wqy-microhei`), both from apt-get."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.console.test_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.factories import agent_id, submit  # noqa: E402

PAGES = {
    "sign-in.png": "/console/sign-in",
    "board.png": "/console/",
    "order.png": None,  # the order dispatched below
    "cases.png": "/console/cases",
    "figures.png": "/console/figures",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _phone(api: httpx.AsyncClient, handle: str) -> dict[str, str]:
    response = await api.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


async def _morning(api: httpx.AsyncClient) -> int:
    """Orders in 店子镇's pool, one of them dispatched and taken; a complaint."""
    resident = await _phone(api, "resident1")
    orders = [
        (await submit(api, resident, code)).json() for code in ("RS-0001", "RS-0002", "MZ-0001")
    ]
    dispatcher = await _phone(api, "dispatcher1a")
    liu = await agent_id(api, dispatcher, "刘桂兰")
    first = orders[0]["id"]
    await api.post(
        f"/mp/v1/dispatch/orders/{first}/assign", json={"agentId": liu}, headers=dispatcher
    )
    agent = await _phone(api, "agent1a")
    await api.post(f"/mp/v1/agent/orders/{first}/take", json={}, headers=agent)
    await api.post(
        "/mp/v1/complaints",
        json={"orderId": orders[1]["id"], "text": "提交两天了还没有人联系我"},
        headers=resident,
    )
    return int(first)


async def shoot(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as api:
        order_id = await _morning(api)
    PAGES["order.png"] = f"/console/orders/{order_id}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            base_url=url, viewport={"width": 1366, "height": 768}, locale="zh-CN"
        )
        page = await context.new_page()
        await page.goto("/console/sign-in")
        await page.screenshot(path=HERE / "sign-in.png")
        await page.get_by_label("演示登录码").fill("dev:dispatcher1a")
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_url(f"{url}/console/")
        for name, path in PAGES.items():
            if name == "sign-in.png":
                continue
            await page.goto(str(path))
            await page.wait_for_load_state("networkidle")
            await page.screenshot(path=HERE / name)
            print(f"docs/screenshots/{name}")
        await browser.close()


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="daiban-screenshots-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAIBAN_")},
        "DAIBAN_VAR_DIR": str(folder),
        "DAIBAN_SERVER_PORT": str(port),
        "DAIBAN_STORAGE_PUBLIC_URL": url,
        "DAIBAN_SCHEDULER_MODE": "off",
        "DAIBAN_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        asyncio.run(shoot(url))
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
