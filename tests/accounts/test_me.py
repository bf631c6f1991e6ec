"""The resident's profile: validation, masking everywhere, and no plaintext in the database."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sqlalchemy import text

from app.logs import JsonFormatter

ID_NUMBER = "11010519491231002X"
PHONE = "13698765432"


async def test_resident_fills_in_the_profile_and_sees_it_masked(client, demo, login):
    headers = await login("newcomer")
    regions = (await client.get("/mp/v1/regions")).json()
    village = regions[0]["children"][0]["children"][1]
    response = await client.patch(
        "/mp/v1/me",
        json={
            "name": "赵大娘",
            "villageId": village["id"],
            "phone": PHONE,
            "idNumber": ID_NUMBER.lower(),
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["idNumber"] == "110***********002X"
    assert me["phone"] == "136****5432"
    assert me["region"]["name"] == village["name"]
    assert me["profileComplete"] is True
    assert ID_NUMBER not in response.text and PHONE not in response.text
    again = await client.get("/mp/v1/me", headers=headers)
    assert again.json() == me


async def test_profile_errors_name_every_bad_field_and_change_nothing(client, demo, login):
    headers = await login("resident1")
    before = (await client.get("/mp/v1/me", headers=headers)).json()
    response = await client.patch(
        "/mp/v1/me",
        json={"name": "王", "phone": "12345", "idNumber": "110105194912310021", "villageId": 2},
        headers=headers,
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"name", "phone", "idNumber", "villageId"}
    after = (await client.get("/mp/v1/me", headers=headers)).json()
    assert after == before


async def test_staff_cannot_edit_their_profile_themselves(client, demo, login):
    response = await client.patch(
        "/mp/v1/me", json={"name": "改名"}, headers=await login("agent1a")
    )
    assert response.status_code == 403


async def test_no_plaintext_id_or_phone_in_the_stored_rows(client, demo, login, ctx):
    headers = await login("newcomer")
    await client.patch("/mp/v1/me", json={"phone": PHONE, "idNumber": ID_NUMBER}, headers=headers)
    rows = await ctx.db.run_read(lambda s: s.execute(text("SELECT * FROM accounts")).all())
    dumped = repr(rows)
    assert ID_NUMBER not in dumped and PHONE not in dumped
    assert "11010519491231" not in dumped


async def test_no_plaintext_in_the_sqlite_file(client, demo, login, settings, sqlite_only):
    headers = await login("newcomer")
    await client.patch("/mp/v1/me", json={"phone": PHONE, "idNumber": ID_NUMBER}, headers=headers)
    path = Path(settings.database_url.split("///", 1)[1])
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert raw, "database file not found"
    assert ID_NUMBER.encode() not in raw and PHONE.encode() not in raw
    # The demo resident's number is stored the same way.
    assert b"370406194803120" not in raw


async def test_phone_from_wechat_in_dev_mode(client, demo, login):
    headers = await login("newcomer")
    response = await client.post("/mp/v1/me/phone", json={"code": f"dev:{PHONE}"}, headers=headers)
    assert response.status_code == 200
    assert response.json()["phone"] == "136****5432"


async def test_logs_carry_the_request_id_and_never_the_id_or_phone(client, demo, login, caplog):
    caplog.set_level(logging.DEBUG)
    headers = {**await login("newcomer"), "x-request-id": "trace-me-1"}
    await client.patch("/mp/v1/me", json={"phone": PHONE, "idNumber": ID_NUMBER}, headers=headers)
    wrong = {"phone": "1", "idNumber": ID_NUMBER[:-1] + "1"}
    await client.patch("/mp/v1/me", json=wrong, headers=headers)
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    access = [line for line in lines if '"logger": "daiban.access"' in line]
    me = (await client.get("/mp/v1/me", headers=headers)).json()
    mine = [json.loads(line) for line in access if '"requestId": "trace-me-1"' in line]
    assert {(a["route"], a["status"], a["userId"], a["role"]) for a in mine} == {
        ("/mp/v1/me", 200, me["id"], "resident"),
        ("/mp/v1/me", 422, me["id"], "resident"),
    }
    assert all(a["method"] in ("PATCH", "GET") and a["ms"] >= 0 for a in mine)
    everything = "\n".join(lines)
    assert ID_NUMBER not in everything and PHONE not in everything
    assert ID_NUMBER[:-1] not in everything
