"""The first day of a real deployment, as a county's IT office goes through it
(docs/operations.md, "The first day"): production settings, WeChat live (a local server that
answers like WeChat), no demo data, an empty database. Setup loads the region tree from the
sample division-code file and makes the first admin, who binds; the catalogue is imported;
the admin imports a town centre's two agents and a village station's agent from a sheet;
they bind; a resident logs in, fills in the profile and submits, and the order goes to the
station's agent. On SQLite and on PostgreSQL (whichever the suite runs on)."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from pathlib import Path

import pytest
from openpyxl import Workbook

from app.asgi import create_app
from app.cli import main
from app.context import Context
from app.demo import CATALOGUE_FILE, REGIONS_FILE, demo_id_number
from app.settings import load_settings
from tests.conftest import serve, settings_env
from tests.factories import guide, upload_photo
from tests.wechat_server import FakeWeChat


@pytest.fixture
def wechat():
    with FakeWeChat() as server:
        yield server


def production(var: Path, database_url: str, wechat: FakeWeChat) -> dict[str, str]:
    return settings_env(
        var,
        database_url,
        DAIBAN_ENV="prod",
        DAIBAN_DEMO_DATA="false",
        DAIBAN_WECHAT_MODE="live",
        DAIBAN_WECHAT_APP_ID="wx-county-app",
        DAIBAN_WECHAT_APP_SECRET="wx-county-secret",
        DAIBAN_WECHAT_BASE_URL=wechat.base_url,
        DAIBAN_SECURITY_PII_KEYS="c1:" + base64.b64encode(b"c" * 32).decode(),
        DAIBAN_SECURITY_PII_HASH_KEY="county-hash-key-of-at-least-32-characters",
        DAIBAN_STORAGE_PUBLIC_URL="https://testserver",
    )


def staff_sheet() -> bytes:
    book = Workbook()
    page = book.active
    page.append(["姓名", "角色", "岗位", "区划代码", "值班电话", "工号", "服务时间"])
    page.append(["周中心", "代办员", "A", "370406101000", "0632-8801001", "SD-001", None])
    page.append(["吴中心", "代办员", "B", "370406101000", "0632-8801001", "SD-002", None])
    page.append(["郑站员", "代办员", "A", "370406101201", "13806321111", "SD-003", "每天上午"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def _bind(client, openid: str, code: str) -> dict[str, str]:
    login = await client.post("/mp/v1/auth/login", json={"code": f"ok:{openid}"})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    bound = await client.post("/mp/v1/auth/bind-staff", json={"code": code}, headers=headers)
    assert bound.status_code == 200, bound.text
    return {"Authorization": f"Bearer {bound.json()['accessToken']}"}


@pytest.mark.usefixtures("ctx")  # on PostgreSQL, it empties the database first
async def test_from_an_empty_database_to_a_residents_order_in_production(
    database_url, tmp_path, wechat, monkeypatch, capsys
):
    env = production(tmp_path / "var", database_url, wechat)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    # The IT office: regions and the first admin, then the catalogue.
    setup = ["setup", "--regions", str(REGIONS_FILE), "--first-admin", "王立新"]
    assert await asyncio.to_thread(main, setup) == 0
    out = capsys.readouterr().out
    assert "regions of 山亭区: 9 added" in out
    admin_code = out.split("binding code ")[1].split()[0]
    assert await asyncio.to_thread(main, ["catalogue", "import", str(CATALOGUE_FILE)]) == 0

    settings = load_settings(env)
    assert settings.core.env == "prod" and not settings.core.demo_data
    service = Context.build(settings)
    try:
        async with serve(create_app(settings, ctx=service)) as client:
            admin = await _bind(client, "county-admin", admin_code)
            readiness = (await client.get("/mp/v1/admin/readiness", headers=admin)).json()
            standards = {s["code"]: s for s in readiness["standards"]}
            assert not standards["centre_agents"]["holds"] and standards["https"]["holds"]

            imported = await client.post(
                "/mp/v1/admin/staff/import", content=staff_sheet(), headers=admin
            )
            assert imported.status_code == 200, imported.text
            codes = {p["staff"]["name"]: p["bindingCode"] for p in imported.json()["people"]}
            for name, openid in (("周中心", "zhou"), ("吴中心", "wu"), ("郑站员", "zheng")):
                await _bind(client, openid, codes[name])
            readiness = (await client.get("/mp/v1/admin/readiness", headers=admin)).json()
            standards = {s["code"]: s for s in readiness["standards"]}
            centre = {s["name"] for s in standards["centre_agents"]["shortfalls"]}
            assert centre == {"西集镇"}  # 店子镇 has its two centre agents now
            station = {s["name"] for s in standards["station_agents"]["shortfalls"]}
            assert "店子村" not in station and "东庄村" in station

            # A resident of 店子村: WeChat login, profile with the phone from WeChat, order.
            login = await client.post("/mp/v1/auth/login", json={"code": "ok:resident-zhang"})
            resident = {"Authorization": f"Bearer {login.json()['accessToken']}"}
            tree = (await client.get("/mp/v1/regions")).json()
            village = next(
                v["id"] for t in tree[0]["children"] for v in t["children"] if v["name"] == "店子村"
            )
            profile = await client.patch(
                "/mp/v1/me",
                json={
                    "name": "张秀英",
                    "villageId": village,
                    "idNumber": demo_id_number("370406", "19480312", "022"),
                },
                headers=resident,
            )
            assert profile.status_code == 200, profile.text
            phone = await client.post(
                "/mp/v1/me/phone", json={"code": "phone:13906321234"}, headers=resident
            )
            assert phone.status_code == 200, phone.text
            materials = {}
            for m in (await guide(client, "RS-0001"))["materials"]:
                if m["required"]:
                    materials[m["code"]] = [await upload_photo(client, resident)]
            submitted = await client.post(
                "/mp/v1/orders",
                json={"itemCode": "RS-0001", "materials": materials},
                headers={**resident, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"},
            )
            assert submitted.status_code == 201, submitted.text
            order = submitted.json()
            assert order["status"] == "assigned" and order["agent"]["name"] == "郑站员"
    finally:
        await service.aclose()
