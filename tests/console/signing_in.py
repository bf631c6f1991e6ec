"""Signing in to the console as a browser does, with the mini-program's part played
through the API: the test helpers the console's tests share."""

from __future__ import annotations

import re
from typing import Any

import httpx

SCAN = re.compile(r'data-scan="([^"]+)"')
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def scanned_code(page: str) -> str:
    """What the phone reads off the sign-in page's QR code: the last part of its link."""
    found = SCAN.search(page)
    assert found, "the sign-in page shows no QR code"
    return found[1].rsplit("/", 1)[1]


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found[1]


async def scan_and_confirm(
    client: httpx.AsyncClient, phone: dict[str, str], code: str
) -> tuple[httpx.Response, httpx.Response]:
    scan = await client.post("/mp/v1/auth/console/scan", json={"code": code}, headers=phone)
    confirm = await client.post("/mp/v1/auth/console/confirm", json={"code": code}, headers=phone)
    return scan, confirm


async def sign_in(client: httpx.AsyncClient, phone: dict[str, str]) -> str:
    """The whole QR sign-in in `client`'s cookie jar; returns a page's CSRF token."""
    page = await client.get("/console/sign-in")
    assert page.status_code == 200, page.text
    scan, confirm = await scan_and_confirm(client, phone, scanned_code(page.text))
    assert scan.status_code == 200, scan.text
    assert confirm.status_code == 204, confirm.text
    state = await client.get("/console/sign-in/state", headers={"HX-Request": "true"})
    assert state.headers.get("hx-redirect") == "/console/", state.text
    board = await client.get("/console/")
    assert board.status_code == 200, board.text
    return csrf_of(board.text)


def form(csrf: str, **fields: Any) -> dict[str, Any]:
    return {"_csrf_token": csrf, **fields}
