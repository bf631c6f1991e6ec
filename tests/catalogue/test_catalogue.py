"""The service catalogue: shipped content, search ranking, village filter, versions, import
and export, and who may switch items on or off."""

from __future__ import annotations

import base64
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec
import yaml
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.catalogue.document import read_document
from app.demo import CATALOGUE_FILE
from app.models import CatalogueItem, ItemEnablement, ItemVersion, Region

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _item(code: str, name: str, **extra):
    item = {
        "code": code,
        "name": name,
        "department": "hrss",
        "level": "town",
        "kind": "promised",
        "mode": "proxy",
        "conditions": "符合条件的城乡居民",
        "materials": [{"code": "id_card", "name": "居民身份证"}],
        "steps": ["申请", "受理", "办结"],
        "promised_days": 5,
        "legal_days": 20,
        "legal_basis": "《中华人民共和国社会保险法》",
        "phone": "0632-8812345",
        "enabled": ["town", "village"],
    }
    item.update(extra)
    return item


def _doc(*items, departments=None) -> bytes:
    departments = departments or [
        {"code": "hrss", "name": "区人力资源和社会保障局"},
        {"code": "pension", "name": "区养老保险服务中心"},
    ]
    return yaml.safe_dump(
        {"version": 1, "departments": departments, "items": list(items)}, allow_unicode=True
    ).encode()


async def _import(client, headers, body: bytes, fmt: str = "yaml"):
    return await client.post(
        f"/mp/v1/admin/catalogue/import?format={fmt}", content=body, headers=headers
    )


async def test_the_shipped_catalogue_meets_seed_001_minimums(client, demo, ctx):
    document = read_document(CATALOGUE_FILE.read_bytes(), CATALOGUE_FILE.name)
    assert sum("town" in i.enabled for i in document.items) >= 80
    assert sum("village" in i.enabled for i in document.items) >= 50
    per_region = await ctx.db.run_read(
        lambda s: dict(
            s.execute(
                select(Region.level, func.min(func.coalesce(_count_subquery(), 0)))
                .where(Region.level.in_(("town", "village")))
                .group_by(Region.level)
            ).all()
        )
    )
    assert per_region["town"] >= 80 and per_region["village"] >= 50


def _count_subquery():
    return (
        select(func.count())
        .select_from(ItemEnablement)
        .where(ItemEnablement.region_id == Region.id)
        .scalar_subquery()
    )


async def test_search_ranks_exact_name_then_alias_then_part_of_name(client, demo, login):
    admin = await login("admin")
    body = _doc(
        _item("TS-0001", "城乡居民养老保险待遇领取"),  # part of the name
        _item("TS-0002", "养老保险", mode="full"),  # the exact name
        _item("TS-0003", "参保登记", aliases=["养老保险"]),  # an exact alias
        _item("TS-0004", "居民补贴", department="pension"),  # only the department matches
    )
    assert (await _import(client, admin, body)).status_code == 200
    page = (
        await client.get("/mp/v1/catalogue/items", params={"q": "养老保险", "limit": 50})
    ).json()
    codes = [i["code"] for i in page["items"] if i["code"].startswith("TS-")]
    assert codes[:3] == ["TS-0002", "TS-0003", "TS-0001"]
    assert codes[-1] == "TS-0004"
    everything = [i["code"] for i in page["items"]]
    assert everything[0] == "TS-0002"
    # The shipped pension enrolment also has the alias 养老保险: exact aliases come before any
    # partial match, whichever file they came from.
    assert everything.index("RS-0001") < everything.index("TS-0001")


async def test_search_by_alias_finds_the_shipped_pension_enrolment(client, demo):
    page = (await client.get("/mp/v1/catalogue/items", params={"q": "交养老保险"})).json()
    assert page["items"][0]["name"] == "城乡居民基本养老保险参保登记"


async def test_keyset_pages_cover_everything_once(client, demo):
    seen, cursor = [], None
    while True:
        params = {"limit": 17, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/mp/v1/catalogue/items", params=params)).json()
        seen += [i["code"] for i in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    document = read_document(CATALOGUE_FILE.read_bytes(), CATALOGUE_FILE.name)
    assert sorted(seen) == sorted(i.code for i in document.items)


async def test_village_filter_follows_what_the_station_handles(client, demo, login):
    tree = (await client.get("/mp/v1/regions")).json()
    village, other_village = tree[0]["children"][0]["children"][:2]
    dispatcher = await login("dispatcher1a")
    code = "RS-0001"
    off = await client.put(
        "/mp/v1/dispatch/catalogue/enablements",
        json={"regionId": village["id"], "itemCodes": [code], "enabled": False},
        headers=dispatcher,
    )
    assert off.status_code == 200, off.text

    async def codes(village_id):
        page = await client.get(
            "/mp/v1/catalogue/items", params={"q": "养老", "villageId": village_id, "limit": 50}
        )
        return {i["code"] for i in page.json()["items"]}

    assert code not in await codes(village["id"])
    assert code in await codes(other_village["id"])


async def test_a_dispatcher_edits_enablement_only_in_their_own_town(client, demo, login):
    tree = (await client.get("/mp/v1/regions")).json()
    other_town_village = tree[0]["children"][1]["children"][0]
    response = await client.put(
        "/mp/v1/dispatch/catalogue/enablements",
        json={"regionId": other_town_village["id"], "itemCodes": ["RS-0001"], "enabled": False},
        headers=await login("dispatcher1a"),
    )
    assert response.status_code == 404
    own = await client.put(
        "/mp/v1/dispatch/catalogue/enablements",
        json={"regionId": other_town_village["id"], "itemCodes": ["RS-0001"], "enabled": False},
        headers=await login("dispatcher2a"),
    )
    assert own.status_code == 200
    agent = await client.put(
        "/mp/v1/dispatch/catalogue/enablements",
        json={"regionId": other_town_village["id"], "itemCodes": ["RS-0001"], "enabled": True},
        headers=await login("agent4a"),
    )
    assert agent.status_code == 403


async def test_editing_a_guide_makes_a_new_version_and_keeps_the_old(client, demo, login, ctx):
    admin = await login("admin")
    guide = (await client.get("/mp/v1/catalogue/items/RS-0001")).json()
    assert guide["version"] == 1
    body = yaml.safe_load(CATALOGUE_FILE.read_text())["items"][0]
    assert body["code"] == "RS-0001"
    body["promised_days"] = 3
    body["materials"] = body["materials"][:2]
    edited = await client.put("/mp/v1/admin/catalogue/items/RS-0001", json=body, headers=admin)
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2 and edited.json()["promisedDays"] == 3
    first = await ctx.db.run_read(
        lambda s: s.execute(
            select(ItemVersion).where(ItemVersion.id == guide["versionId"])
        ).scalar_one()
    )
    assert first.promised_days == guide["promisedDays"]
    assert len(first.materials) == len(guide["materials"]) > 2
    versions = (
        await client.get("/mp/v1/admin/catalogue/items/RS-0001/versions", headers=admin)
    ).json()
    assert [v["version"] for v in versions] == [1, 2]


async def test_a_bad_edit_lists_every_problem(client, demo, login):
    body = _item(
        "RS-0001",
        "",
        kind="immediate",
        promised_days=3,
        legal_days=1,
        materials=[{"code": "x", "name": "", "required": False}],
    )
    response = await client.put(
        "/mp/v1/admin/catalogue/items/RS-0001", json=body, headers=await login("admin")
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"name", "legal_days", "promised_days", "materials", "materials[0].name"} <= fields


async def test_an_import_reports_every_problem_at_once_and_writes_nothing(client, demo, login, ctx):
    admin = await login("admin")
    before = await ctx.db.run_read(
        lambda s: s.scalar(select(func.count()).select_from(ItemVersion))
    )
    body = _doc(
        _item("BAD-0001", "正常的事项"),
        _item("BAD-0001", "编码重复的事项"),
        _item("BAD-0002", "负数时限", promised_days=-1),
        _item("BAD-0003", "层级不对", level="province"),
        _item("BAD-0004", "材料没名字", materials=[{"code": "id_card", "name": " "}]),
        {**_item("BAD-0005", "多了一列"), "colour": "red"},
        _item("BAD-0006", "部门不存在", department="nowhere"),
    )
    response = await _import(client, admin, body)
    assert response.status_code == 422
    problems = response.json()["errors"]
    by_row = {(p["row"].split()[-1], p["field"]) for p in problems}
    assert ("BAD-0001", "code") in by_row
    assert ("BAD-0002", "promised_days") in by_row
    assert ("BAD-0003", "level") in by_row
    assert ("BAD-0004", "materials[0].name") in by_row
    assert ("BAD-0005", "colour") in by_row
    assert ("BAD-0006", "department") in by_row

    def check(session: Session) -> int | None:
        after = session.scalar(select(func.count()).select_from(ItemVersion))
        assert (
            session.scalar(
                select(func.count())
                .select_from(CatalogueItem)
                .where(CatalogueItem.code.like("BAD-%"))
            )
            == 0
        )
        return after

    after = await ctx.db.run_read(check)
    assert after == before


async def test_an_xlsx_with_an_unknown_column_is_refused(client, demo, login):
    admin = await login("admin")
    exported = await client.get("/mp/v1/admin/catalogue/export", headers=admin)
    book = load_workbook(io.BytesIO(exported.content))
    book["items"].cell(row=1, column=30, value="surprise")
    book["items"].cell(row=2, column=30, value="x")
    out = io.BytesIO()
    book.save(out)
    response = await _import(client, admin, out.getvalue(), fmt="xlsx")
    assert response.status_code == 422
    assert {"row": "items!1", "field": "surprise", "message": "不认识的列"} in response.json()[
        "errors"
    ]


async def test_export_then_import_changes_nothing(client, demo, login, ctx):
    admin = await login("admin")
    exported = await client.get("/mp/v1/admin/catalogue/export", headers=admin)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith(XLSX)
    versions_before = await ctx.db.run_read(
        lambda s: s.scalar(select(func.count()).select_from(ItemVersion))
    )
    response = await _import(client, admin, exported.content, fmt="xlsx")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["created"] == 0 and result["updated"] == 0 and result["unchanged"] >= 80
    assert (
        await ctx.db.run_read(lambda s: s.scalar(select(func.count()).select_from(ItemVersion)))
        == versions_before
    )
    again = await client.get("/mp/v1/admin/catalogue/export", headers=admin)
    first, second = (
        load_workbook(io.BytesIO(exported.content)),
        load_workbook(io.BytesIO(again.content)),
    )
    for name in ("items", "materials", "departments"):
        assert list(first[name].values) == list(second[name].values)


async def test_a_consultation_item_gives_guidance_and_the_agents_phone(client, demo):
    tree = (await client.get("/mp/v1/regions")).json()
    village = tree[0]["children"][0]["children"][0]
    page = (await client.get("/mp/v1/catalogue/items", params={"q": "出生登记"})).json()
    consult = None
    for summary in page["items"]:
        guide = (
            await client.get(
                f"/mp/v1/catalogue/items/{summary['code']}", params={"villageId": village["id"]}
            )
        ).json()
        if guide["mode"] == "consult":
            consult = guide
            break
    assert consult is not None
    assert consult["canSubmitOnline"] is False and consult["inPerson"] is True
    assert "本人" in consult["guidance"]
    assert [a["post"] for a in consult["villageAgents"]] == ["A", "B"]
    assert all(a["workPhone"] for a in consult["villageAgents"])
    proxy = (await client.get("/mp/v1/catalogue/items/RS-0001")).json()
    assert proxy["canSubmitOnline"] is True and proxy["guidance"] is None
    assert proxy["free"] is True and proxy["materials"][0]["name"]


async def test_departments_and_unknown_items(client, demo):
    departments = (await client.get("/mp/v1/catalogue/departments")).json()
    assert len(departments) >= 10 and all(d["itemCount"] >= 1 for d in departments)
    assert (await client.get("/mp/v1/catalogue/items/NO-9999")).status_code == 404


async def test_retired_items_disappear_from_search(client, demo, login):
    admin = await login("admin")
    assert (
        await client.post("/mp/v1/admin/catalogue/items/RS-0001/retire", headers=admin)
    ).status_code == 204
    page = (await client.get("/mp/v1/catalogue/items", params={"q": "交养老保险"})).json()
    assert "RS-0001" not in {i["code"] for i in page["items"]}
    assert (await client.get("/mp/v1/catalogue/items/RS-0001")).status_code == 404


async def test_popular_in_the_village_is_ranked_by_its_recent_requests(client, demo, login, clock):
    from tests.factories import submit

    tree = (await client.get("/mp/v1/regions")).json()
    village = tree[0]["children"][0]["children"][0]  # 店子村, resident1's village

    async def popular() -> list[tuple[str, int]]:
        response = await client.get("/mp/v1/catalogue/popular", params={"villageId": village["id"]})
        assert response.status_code == 200, response.text
        return [(p["item"]["code"], p["orders"]) for p in response.json()]

    assert await popular() == []  # no orders yet: nothing invented
    resident, elsewhere = await login("resident1"), await login("resident2")
    for code in ("RS-0002", "RS-0001", "RS-0001"):
        assert (await submit(client, resident, code)).status_code == 201
    assert (await submit(client, elsewhere, "RS-0003")).status_code == 201  # another village
    clock.advance(minutes=2)  # past the minute an answer is kept
    assert await popular() == [("RS-0001", 2), ("RS-0002", 1)]
    off = await client.put(
        "/mp/v1/dispatch/catalogue/enablements",
        json={"regionId": village["id"], "itemCodes": ["RS-0001"], "enabled": False},
        headers=await login("dispatcher1a"),
    )
    assert off.status_code == 200
    clock.advance(minutes=2)
    assert await popular() == [("RS-0002", 1)]  # only what the station still handles
    clock.advance(days=91)
    assert await popular() == []  # the window is the last 90 days
    missing = await client.get("/mp/v1/catalogue/popular", params={"villageId": 10**6})
    assert missing.status_code == 404


# --- every problem of a file, in one round ------------------------------------------------


def _problems(response) -> set[tuple[str, str]]:
    """(item code or sheet row, field) of each problem listed."""
    assert response.status_code == 422, response.text
    return {(p["row"].split()[-1], p["field"]) for p in response.json()["errors"]}


async def test_a_wrong_type_does_not_hide_the_items_other_problems(client, demo, login):
    wrong = {
        **_item(
            "BAD-0101",
            "类型不对",
            promised_days="五",
            legal_days=-2,
            level="province",
            materials=[{"code": "id_card", "name": "居民身份证", "count": "两", "colour": 1}],
        ),
        "colour": "red",
        "size": 3,
    }
    no_phone = _item("BAD-0102", "缺少电话")
    del no_phone["phone"]
    response = await _import(client, await login("admin"), _doc(wrong, no_phone))
    assert _problems(response) >= {
        ("BAD-0101", "promised_days"),
        ("BAD-0101", "legal_days"),
        ("BAD-0101", "level"),
        ("BAD-0101", "colour"),
        ("BAD-0101", "size"),
        ("BAD-0101", "materials[0].count"),
        ("BAD-0101", "materials[0].colour"),
        ("BAD-0102", "phone"),
    }
    messages = {p["field"]: p["message"] for p in response.json()["errors"]}
    assert messages["promised_days"] == "应为整数"
    assert messages["materials[0].count"] == "应为整数"
    assert not [m for m in messages.values() if "Expected" in m or "Object" in m or "`" in m]


async def test_an_unknown_department_is_listed_with_the_rest_when_the_file_has_none(
    client, demo, login
):
    body = yaml.safe_dump(
        {
            "items": [
                _item("BAD-0201", "部门不存在", department="nowhere"),
                _item("BAD-0202", "负数时限", promised_days=-1),
                _item("BAD-0203", "已有部门"),  # hrss is in the database already
            ]
        },
        allow_unicode=True,
    ).encode()
    response = await _import(client, await login("admin"), body)
    assert _problems(response) == {("BAD-0201", "department"), ("BAD-0202", "promised_days")}


async def test_files_that_broke_the_database_get_a_problem_list(client, demo, login, ctx):
    admin = await login("admin")
    twice = [{"code": "hrss", "name": "区人社局"}, {"code": "hrss", "name": "区人社局(重复)"}]
    response = await _import(client, admin, _doc(_item("BAD-0301", "部门重复"), departments=twice))
    assert response.status_code == 422, response.text
    assert [(p["row"], p["field"]) for p in response.json()["errors"]] == [
        ("departments[1] hrss", "code")
    ]
    response = await _import(
        client,
        admin,
        _doc(
            _item("BAD-0302", "电话太长", phone="0632-88123456 转 分机 12345"),
            _item("BAD-0303", "俗称有竖线", aliases=["养老|保险"]),
            _item("BAD-0304", "时限太大", promised_days=10**10, legal_days=10**10),
            _item("BAD-0305", "开通层级重复", enabled=["village", "village", "village"]),
            _item("BAD-0306", "只开通到村", enabled=["village"]),
            _item("BAD-0307", "收费太大", fee={"amount_fen": 2**40, "basis": "某文件"}),
            departments=[{"code": "hrss", "name": "区" + "人" * 60}],
        ),
    )
    assert _problems(response) == {
        ("hrss", "name"),
        ("BAD-0302", "phone"),
        ("BAD-0303", "aliases[0]"),
        ("BAD-0304", "promised_days"),
        ("BAD-0304", "legal_days"),
        ("BAD-0305", "enabled"),
        ("BAD-0306", "enabled"),
        ("BAD-0307", "fee.amount_fen"),
    }
    assert (
        await ctx.db.run_read(
            lambda s: s.scalar(
                select(func.count())
                .select_from(CatalogueItem)
                .where(CatalogueItem.code.like("BAD-%"))
            )
        )
        == 0
    )


async def test_xlsx_material_problems_name_the_materials_row(client, demo, login):
    admin = await login("admin")
    exported = await client.get("/mp/v1/admin/catalogue/export", headers=admin)
    book = load_workbook(io.BytesIO(exported.content))
    materials = book["materials"]
    header = [c.value for c in materials[1]]
    owner = materials.cell(row=2, column=1).value
    materials.cell(row=2, column=header.index("name") + 1, value=" ")
    materials.cell(row=3, column=header.index("count") + 1, value="两份")
    materials.append(["NO-9999", "id_card", "居民身份证"])
    orphan_row = materials.max_row
    out = io.BytesIO()
    book.save(out)
    response = await _import(client, admin, out.getvalue(), fmt="xlsx")
    assert response.status_code == 422, response.text
    rows = {(p["row"], p["field"]) for p in response.json()["errors"]}
    assert rows == {
        (f"materials!2 {owner}", "name"),
        (f"materials!3 {materials.cell(row=3, column=1).value}", "count"),
        (f"materials!{orphan_row} NO-9999", "item_code"),
    }


# --- where an item is offered ---------------------------------------------------------


async def _regions(client) -> tuple[dict, dict, dict]:
    """店子镇, its first village 店子村 (resident1's), and a village of 西集镇."""
    district = (await client.get("/mp/v1/regions")).json()[0]
    town, other_town = district["children"][:2]
    return town, town["children"][0], other_town["children"][0]


async def _village_codes(client, village_id: int, **params) -> set[str]:
    page = await client.get(
        "/mp/v1/catalogue/items", params={"villageId": village_id, "limit": 50, **params}
    )
    assert page.status_code == 200, page.text
    return {i["code"] for i in page.json()["items"]}


async def _region_codes(client, headers, region_id: int, role: str = "admin") -> set[str]:
    path = "admin" if role == "admin" else "dispatch"
    response = await client.get(
        f"/mp/v1/{path}/catalogue/enablements", params={"regionId": region_id}, headers=headers
    )
    assert response.status_code == 200, response.text
    return {i["code"] for i in response.json()["items"]}


async def test_the_guide_says_so_when_the_village_switched_the_item_off(client, demo, login):
    _, village, other_village = await _regions(client)
    off = await client.put(
        "/mp/v1/dispatch/catalogue/enablements",
        json={"regionId": village["id"], "itemCodes": ["RS-0001"], "enabled": False},
        headers=await login("dispatcher1a"),
    )
    assert off.status_code == 200, off.text
    here = (
        await client.get("/mp/v1/catalogue/items/RS-0001", params={"villageId": village["id"]})
    ).json()
    assert here["canSubmitOnline"] is False
    assert "本村" in here["cannotSubmitReason"] and here["guidance"]
    assert here["villageAgents"]  # whom to call instead
    there = (
        await client.get(
            "/mp/v1/catalogue/items/RS-0001", params={"villageId": other_village["id"]}
        )
    ).json()
    assert there["canSubmitOnline"] is True and there["cannotSubmitReason"] is None


async def test_a_dispatcher_switching_off_their_town_switches_off_its_villages(client, demo, login):
    from tests.factories import submit

    town, village, other_village = await _regions(client)
    dispatcher = await login("dispatcher1a")
    off = await client.put(
        "/mp/v1/dispatch/catalogue/enablements",
        json={"regionId": town["id"], "itemCodes": ["RS-0001"], "enabled": False},
        headers=dispatcher,
    )
    assert off.status_code == 200, off.text
    assert off.json()["switchedOffInVillages"] == len(town["children"])
    assert "RS-0001" not in await _region_codes(client, dispatcher, town["id"], "dispatcher")
    assert "RS-0001" not in await _region_codes(client, dispatcher, village["id"], "dispatcher")
    assert "RS-0001" not in await _village_codes(client, village["id"], q="养老")
    assert "RS-0001" in await _village_codes(client, other_village["id"], q="养老")
    assert (await submit(client, await login("resident1"), "RS-0001")).status_code == 404

    village_on = await client.put(
        "/mp/v1/dispatch/catalogue/enablements",
        json={"regionId": village["id"], "itemCodes": ["RS-0001"], "enabled": True},
        headers=dispatcher,
    )
    assert village_on.status_code == 409 and village_on.json()["itemCodes"] == ["RS-0001"]
    for region in (town, village):
        on = await client.put(
            "/mp/v1/dispatch/catalogue/enablements",
            json={"regionId": region["id"], "itemCodes": ["RS-0001"], "enabled": True},
            headers=dispatcher,
        )
        assert on.status_code == 200, on.text
    assert "RS-0001" in await _village_codes(client, village["id"], q="养老")


async def test_who_may_read_what_a_region_offers(client, demo, login):
    town, village, other_village = await _regions(client)
    admin, dispatcher = await login("admin"), await login("dispatcher1a")
    offered = await _region_codes(client, dispatcher, village["id"], "dispatcher")
    assert "RS-0001" in offered and len(offered) >= 50
    assert len(await _region_codes(client, admin, other_village["id"])) >= 50
    foreign = await client.get(
        "/mp/v1/dispatch/catalogue/enablements",
        params={"regionId": other_village["id"]},
        headers=dispatcher,
    )
    assert foreign.status_code == 404
    agent = await client.get(
        "/mp/v1/dispatch/catalogue/enablements",
        params={"regionId": village["id"]},
        headers=await login("agent1a"),
    )
    assert agent.status_code == 403
    off = await client.put(
        "/mp/v1/admin/catalogue/enablements",
        json={"regionId": other_village["id"], "itemCodes": ["RS-0001"], "enabled": False},
        headers=admin,
    )
    assert off.status_code == 200 and off.json()["switchedOffInVillages"] == 0
    assert "RS-0001" not in await _region_codes(client, admin, other_village["id"])
    assert "RS-0001" in await _region_codes(client, admin, town["id"])


# --- editing ---------------------------------------------------------------------------


async def test_changing_enabled_on_an_existing_item_takes_effect(client, demo, login):
    admin = await login("admin")
    town, village, _ = await _regions(client)
    item = _item("TS-0101", "新开事项", enabled=["town"])
    assert (await _import(client, admin, _doc(item))).json()["created"] == 1
    assert "TS-0101" in await _region_codes(client, admin, town["id"])
    assert "TS-0101" not in await _village_codes(client, village["id"], q="新开事项")

    item["enabled"] = ["town", "village"]
    result = (await _import(client, admin, _doc(item))).json()
    assert result["updated"] == 1
    assert "TS-0101" in await _village_codes(client, village["id"], q="新开事项")

    item["enabled"] = []
    edited = await client.put("/mp/v1/admin/catalogue/items/TS-0101", json=item, headers=admin)
    assert edited.status_code == 200, edited.text
    assert "TS-0101" not in await _region_codes(client, admin, town["id"])
    assert "TS-0101" not in await _region_codes(client, admin, village["id"])
    versions = await client.get("/mp/v1/admin/catalogue/items/TS-0101/versions", headers=admin)
    assert [v["version"] for v in versions.json()] == [1]  # the guide itself never changed


async def test_a_retired_item_stays_retired_until_restored(client, demo, login):
    admin = await login("admin")
    body = yaml.safe_load(CATALOGUE_FILE.read_text())["items"][0]
    assert body["code"] == "RS-0001"
    retired = await client.post("/mp/v1/admin/catalogue/items/RS-0001/retire", headers=admin)
    assert retired.status_code == 204

    edit = await client.put(
        "/mp/v1/admin/catalogue/items/RS-0001", json={**body, "promised_days": 3}, headers=admin
    )
    assert edit.status_code == 409 and edit.json()["code"] == "item_retired"
    changed = await _import(client, admin, _doc({**body, "promised_days": 3}))
    assert _problems(changed) == {("RS-0001", "code")}
    unchanged = await _import(client, admin, _doc(body))
    assert unchanged.status_code == 200 and unchanged.json()["unchanged"] == 1
    assert (await client.get("/mp/v1/catalogue/items/RS-0001")).status_code == 404

    restored = await client.post("/mp/v1/admin/catalogue/items/RS-0001/restore", headers=admin)
    assert restored.status_code == 200 and restored.json()["version"] == 1
    again = await client.post("/mp/v1/admin/catalogue/items/RS-0001/restore", headers=admin)
    assert again.status_code == 409
    assert (await client.get("/mp/v1/catalogue/items/RS-0001")).status_code == 200
    edit = await client.put(
        "/mp/v1/admin/catalogue/items/RS-0001", json={**body, "promised_days": 3}, headers=admin
    )
    assert edit.status_code == 200 and edit.json()["version"] == 2


async def test_admin_creates_an_item_enabled_where_it_says(client, demo, login):
    admin = await login("admin")
    town, village, other_village = await _regions(client)
    body = _item("TS-0201", "新建的事项", enabled=["town", "village"])
    created = await client.post("/mp/v1/admin/catalogue/items", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and created.json()["canSubmitOnline"] is True
    for region in (town, village, other_village):
        assert "TS-0201" in await _region_codes(client, admin, region["id"])
    assert "TS-0201" in await _village_codes(client, village["id"], q="新建的事项")
    again = await client.post("/mp/v1/admin/catalogue/items", json=body, headers=admin)
    assert again.status_code == 409


async def test_search_filters_by_kind_and_department(client, demo):
    async def search(**params) -> list[dict]:
        page = await client.get("/mp/v1/catalogue/items", params={"limit": 50, **params})
        assert page.status_code == 200, page.text
        return page.json()["items"]

    immediate = await search(kind="immediate")
    assert immediate and {i["kind"] for i in immediate} == {"immediate"}
    pension = await search(department="hrss")
    assert pension and {i["departmentCode"] for i in pension} == {"hrss"}
    both = await search(department="hrss", kind="immediate")
    assert {i["code"] for i in both} == {i["code"] for i in immediate} & {
        i["code"] for i in pension
    }
    assert await search(department="nowhere") == []


# --- round trips and the command line -------------------------------------------------


async def test_yaml_export_then_import_changes_nothing(client, demo, login):
    admin = await login("admin")
    exported = await client.get("/mp/v1/admin/catalogue/export?format=yaml", headers=admin)
    assert exported.status_code == 200
    document = yaml.safe_load(exported.content)
    assert len(document["items"]) >= 80
    response = await _import(client, admin, exported.content)
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 0, "updated": 0, "unchanged": len(document["items"])}
    again = await client.get("/mp/v1/admin/catalogue/export?format=yaml", headers=admin)
    assert again.content == exported.content


def _daiban(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The `daiban` command of this checkout (python -m app.cli is its entry point)."""
    return subprocess.run(  # noqa: S603 - our own command; the arguments are the test's
        [sys.executable, "-m", "app.cli", *args],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_command_line_imports_and_exports(tmp_path):
    env = {
        **os.environ,
        "DAIBAN_VAR_DIR": str(tmp_path / "var"),
        "DAIBAN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}",
        "DAIBAN_SECURITY_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "DAIBAN_SECURITY_PII_KEYS": "t1:" + base64.b64encode(b"k" * 32).decode(),
        "DAIBAN_SECURITY_PII_HASH_KEY": "test-hash-key",
        "DAIBAN_SCHEDULER_MODE": "off",
        "DAIBAN_LOG_FORMAT": "text",
    }
    assert _daiban(env, "migrate").returncode == 0
    shipped = read_document(CATALOGUE_FILE.read_bytes(), CATALOGUE_FILE.name)
    done = _daiban(env, "catalogue", "import", str(CATALOGUE_FILE))
    assert done.returncode == 0, done.stderr
    assert f"created {len(shipped.items)}" in done.stdout

    for name in ("out.xlsx", "out.yaml"):
        exported = _daiban(env, "catalogue", "export", str(tmp_path / name))
        assert exported.returncode == 0, exported.stderr
        again = _daiban(env, "catalogue", "import", str(tmp_path / name))
        assert again.returncode == 0, again.stderr
        assert f"created 0, updated 0, unchanged {len(shipped.items)}" in again.stdout
    assert _same_content(read_document((tmp_path / "out.yaml").read_bytes(), "out.yaml"), shipped)

    bad = tmp_path / "bad.yaml"
    bad.write_bytes(_doc(_item("BAD-0401", "负数", promised_days=-1), _item("RS-0001", "")))
    refused = _daiban(env, "catalogue", "import", str(bad))
    assert refused.returncode == 1
    assert "BAD-0401  promised_days" in refused.stderr and "RS-0001  name" in refused.stderr
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        codes = {code for (code,) in db.execute("SELECT code FROM catalogue_items")}
    assert codes == {i.code for i in shipped.items}  # nothing of the refused file


def _same_content(a, b) -> bool:
    """The same departments and items, whatever their order in the file."""

    def key(document):
        return (
            sorted((d.code, d.name) for d in document.departments),
            sorted((i.code, yaml.safe_dump(msgspec.to_builtins(i))) for i in document.items),
        )

    return key(a) == key(b)


# --- the five kinds (seed 000) and 容缺 marks, checked on import -------------------------


def _joint(code: str, name: str, **extra):
    return _item(code, name, kind="joint", level="town", **extra)


async def test_a_joint_item_without_co_departments_is_refused_on_import(client, demo, login):
    response = await _import(client, await login("admin"), _doc(_joint("BAD-0501", "没有协办")))
    assert _problems(response) == {("BAD-0501", "co_departments")}
    assert response.json()["errors"][0]["message"] == "联办件须写明至少一个协办部门(部门代码)"
    created = await client.post(
        "/mp/v1/admin/catalogue/items",
        json=_joint("BAD-0502", "没有协办"),
        headers=await login("admin"),
    )
    assert created.status_code == 422, created.text
    assert [e["field"] for e in created.json()["errors"]] == ["co_departments"]


async def test_co_departments_are_known_other_than_the_lead_each_once_and_only_on_joint_items(
    client, demo, login, ctx
):
    response = await _import(
        client,
        await login("admin"),
        _doc(
            _joint("BAD-0511", "协办部门不存在", co_departments=["pension", "nowhere"]),
            _joint("BAD-0512", "协办即牵头", co_departments=["hrss"]),
            _joint("BAD-0513", "协办重复", co_departments=["pension", "pension"]),
            _item("BAD-0514", "承诺件写了协办", co_departments=["pension"]),
            _joint("TS-0515", "正常的联办件", co_departments=["pension"]),
        ),
    )
    assert _problems(response) == {
        ("BAD-0511", "co_departments[1]"),
        ("BAD-0512", "co_departments[0]"),
        ("BAD-0513", "co_departments[1]"),
        ("BAD-0514", "co_departments"),
    }
    messages = {p["row"].split()[-1]: p["message"] for p in response.json()["errors"]}
    assert messages["BAD-0511"] == "未知部门 nowhere"
    assert messages["BAD-0512"] == "协办部门不能是牵头部门本身"
    assert messages["BAD-0513"] == "协办部门 pension 重复"
    assert (
        await ctx.db.run_read(
            lambda s: s.scalar(
                select(func.count())
                .select_from(CatalogueItem)
                .where(CatalogueItem.code.like("%-05%"))
            )
        )
        == 0
    )


async def test_a_joint_guide_names_its_lead_and_co_departments(client, demo, login, ctx):
    admin = await login("admin")
    item = _joint("TS-0521", "联办的事项", co_departments=["pension"])
    assert (await _import(client, admin, _doc(item))).json()["created"] == 1
    guide = (await client.get("/mp/v1/catalogue/items/TS-0521")).json()
    assert guide["kindName"] == "联办件"
    assert guide["department"] == "区人力资源和社会保障局"
    assert guide["coDepartments"] == [{"code": "pension", "name": "区养老保险服务中心"}]
    assert (
        guide["jointNote"] == "联办件: 由区人力资源和社会保障局牵头, 会同区养老保险服务中心联合办理"
    )
    stored = await ctx.db.run_read(
        lambda s: s.execute(
            select(ItemVersion.co_departments).where(ItemVersion.id == guide["versionId"])
        ).scalar_one()
    )
    assert stored == ["pension"]
    plain = (await client.get("/mp/v1/catalogue/items/RS-0001")).json()
    assert plain["coDepartments"] == [] and plain["jointNote"] is None


async def test_an_immediate_item_at_district_level_is_refused(client, demo, login):
    admin = await login("admin")
    body = _item("BAD-0531", "区级即办", kind="immediate", level="district", promised_days=0)
    response = await _import(client, admin, _doc(body))
    assert _problems(response) == {("BAD-0531", "level")}
    assert "镇街权限" in response.json()["errors"][0]["message"]
    for n, level in enumerate(("town", "village")):
        fine = await _import(client, admin, _doc({**body, "code": f"TS-053{n}", "level": level}))
        assert fine.status_code == 200, fine.text
    edited = await client.put(
        "/mp/v1/admin/catalogue/items/RS-0002",  # shipped as an immediate item at town level
        json={**yaml.safe_load(CATALOGUE_FILE.read_text())["items"][1], "level": "district"},
        headers=admin,
    )
    assert edited.status_code == 422 and edited.json()["errors"][0]["field"] == "level"


async def test_a_material_marked_may_follow_that_is_essential_is_refused(client, demo, login):
    def with_materials(code: str, *materials):
        return _item(code, "材料标注", materials=[{"name": "材料", **m} for m in materials])

    response = await _import(
        client,
        await login("admin"),
        _doc(
            with_materials("BAD-0541", {"code": "id_card", "may_follow": True}),
            with_materials(
                "BAD-0542",
                {"code": "id_card"},
                {"code": "application_form", "may_follow": True},
                {"code": "entrustment", "may_follow": True},
            ),
            with_materials(
                "BAD-0543",
                {"code": "id_card"},
                {"code": "photo", "required": False, "may_follow": True},
            ),
            with_materials("TS-0544", {"code": "id_card"}, {"code": "photo", "may_follow": True}),
        ),
    )
    assert _problems(response) == {
        ("BAD-0541", "materials[0].may_follow"),
        ("BAD-0542", "materials[1].may_follow"),
        ("BAD-0542", "materials[2].may_follow"),
        ("BAD-0543", "materials[1].may_follow"),
    }
    messages = {(p["row"].split()[-1], p["message"]) for p in response.json()["errors"]}
    assert ("BAD-0541", "申请人身份证、申请表和委托书不能容缺后补") in messages
    assert ("BAD-0543", "只有必需材料才能标注容缺后补") in messages


def test_the_orders_never_let_the_materials_the_catalogue_refuses_follow():
    from app.catalogue.document import ESSENTIAL_MATERIALS
    from app.orders import records

    for code in ESSENTIAL_MATERIALS:  # even if a stored guide marked one
        assert not records.may_follow(None, {"code": code, "required": True, "may_follow": True})
    assert records.may_follow(None, {"code": "photo", "required": True, "may_follow": True})
    assert not records.may_follow(None, {"code": "photo", "required": True})


async def test_the_shipped_catalogue_passes_every_check_and_lets_minor_materials_follow(
    client, demo
):
    document = read_document(CATALOGUE_FILE.read_bytes(), CATALOGUE_FILE.name)  # all checks
    assert not [i.code for i in document.items if i.kind == "immediate" and i.level == "district"]
    joint = [i for i in document.items if i.kind == "joint"]
    assert joint and all(i.co_departments for i in joint)
    assert not [i.code for i in document.items if i.kind != "joint" and i.co_departments]
    following = [i for i in document.items if i.allow_accept_with_gaps]
    assert following
    marked = {m.code for i in following for m in i.materials if m.may_follow}
    assert marked and not marked & {"id_card", "application_form", "entrustment"}

    guide = (await client.get("/mp/v1/catalogue/items/RS-0001")).json()
    assert guide["allowAcceptWithGaps"] is True
    assert {m["code"]: m["mayFollow"] for m in guide["materials"]} == {
        "id_card": False,
        "hukou_book": True,
        "application_form": False,
        "entrustment": False,
    }
    disability = (await client.get("/mp/v1/catalogue/items/MZ-0014")).json()
    assert disability["kindName"] == "联办件" and disability["department"] == "区民政局"
    assert [d["name"] for d in disability["coDepartments"]] == ["区残疾人联合会"]


async def test_xlsx_carries_co_departments_and_may_follow(client, demo, login):
    admin = await login("admin")
    exported = await client.get("/mp/v1/admin/catalogue/export", headers=admin)
    book = load_workbook(io.BytesIO(exported.content))
    items, materials = book["items"], book["materials"]
    item_header = [c.value for c in items[1]]
    material_header = [c.value for c in materials[1]]
    assert "co_departments" in item_header and "allow_accept_with_gaps" not in item_header
    assert "may_follow" in material_header
    rows = {r[0]: r for r in items.iter_rows(min_row=2, values_only=True)}
    assert rows["WJ-0007"][item_header.index("co_departments")] == "police|medical|hrss"
    marks = {
        (r[0], r[1]): r[material_header.index("may_follow")]
        for r in materials.iter_rows(min_row=2, values_only=True)
    }
    assert marks[("RS-0001", "hukou_book")] == "是" and marks[("RS-0001", "id_card")] == "否"

    # Commas separate the codes as well; an essential material's mark names its own row.
    for n, row in enumerate(items.iter_rows(min_row=2, values_only=True), start=2):
        if row[0] == "MZ-0015":
            items.cell(row=n, column=item_header.index("co_departments") + 1, value="dpf, health")
    for n, row in enumerate(materials.iter_rows(min_row=2, values_only=True), start=2):
        if (row[0], row[1]) == ("RS-0002", "id_card"):
            id_row = n
            materials.cell(row=n, column=material_header.index("may_follow") + 1, value="是")
    out = io.BytesIO()
    book.save(out)
    refused = await _import(client, admin, out.getvalue(), fmt="xlsx")
    assert refused.status_code == 422, refused.text
    assert [(p["row"], p["field"]) for p in refused.json()["errors"]] == [
        (f"materials!{id_row} RS-0002", "may_follow")
    ]
    materials.cell(row=id_row, column=material_header.index("may_follow") + 1, value="否")
    out = io.BytesIO()
    book.save(out)
    done = await _import(client, admin, out.getvalue(), fmt="xlsx")
    assert done.status_code == 200 and done.json()["updated"] == 1, done.text
    guide = (await client.get("/mp/v1/catalogue/items/MZ-0015")).json()
    assert [d["code"] for d in guide["coDepartments"]] == ["dpf", "health"]


async def test_an_older_file_with_the_item_level_gaps_switch_still_imports_where_it_agrees(
    client, demo, login
):
    admin = await login("admin")
    photo = {"code": "photo", "name": "照片"}
    agrees = _item("TS-0551", "旧文件", allow_accept_with_gaps=False)
    agrees_too = _item(
        "TS-0552",
        "旧文件",
        allow_accept_with_gaps=True,
        materials=[{"code": "id_card", "name": "居民身份证"}, {**photo, "may_follow": True}],
    )
    done = await _import(client, admin, _doc(agrees, agrees_too))
    assert done.status_code == 200 and done.json()["created"] == 2, done.text
    guide = (await client.get("/mp/v1/catalogue/items/TS-0552")).json()
    assert guide["allowAcceptWithGaps"] is True
    switched_on = _item(
        "BAD-0553",
        "旧文件",
        allow_accept_with_gaps=True,
        materials=[{"code": "id_card", "name": "居民身份证"}, photo],
    )
    response = await _import(client, admin, _doc(switched_on))
    assert _problems(response) == {("BAD-0553", "allow_accept_with_gaps")}
    assert "may_follow" in response.json()["errors"][0]["message"]

    # An xlsx exported before the marks: its items sheet has the column, its materials none.
    exported = await client.get("/mp/v1/admin/catalogue/export", headers=admin)
    book = load_workbook(io.BytesIO(exported.content))
    items, materials = book["items"], book["materials"]
    column = items.max_column + 1
    items.cell(row=1, column=column, value="allow_accept_with_gaps")
    material_header = [c.value for c in materials[1]]
    marked = material_header.index("may_follow") + 1
    codes = set()
    for n, row in enumerate(materials.iter_rows(min_row=2, values_only=True), start=2):
        if row[marked - 1] == "是":
            codes.add(row[0])
        materials.cell(row=n, column=marked).value = None  # cell(value=None) keeps the value
    materials.cell(row=1, column=marked).value = None
    for n in range(2, items.max_row + 1):
        items.cell(row=n, column=column, value="否")
    out = io.BytesIO()
    book.save(out)
    old = await _import(client, admin, out.getvalue(), fmt="xlsx")
    assert old.status_code == 200, old.text
    assert old.json()["updated"] == len(codes)  # the marks were dropped, as the file says
    guide = (await client.get("/mp/v1/catalogue/items/RS-0001")).json()
    assert guide["allowAcceptWithGaps"] is False
