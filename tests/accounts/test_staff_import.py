"""Staff at scale: an admin imports a sheet of staff; every problem is listed with its row
and nothing is written then; a corrected sheet updates by staff number or work phone without
duplicates; the new people's binding codes come back, also as a sheet to print."""

from __future__ import annotations

import io

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from app.models import Account
from tests.factories import submit

HEADER = ["姓名", "角色", "岗位", "区划代码", "值班电话", "工号", "服务时间"]
TOWN, VILLAGE = "370406101000", "370406101202"  # 店子镇, 东庄村


def sheet(*rows: list) -> bytes:
    book = Workbook()
    page = book.active
    page.append(HEADER)
    for row in rows:
        page.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


FIRST = sheet(
    ["周中心", "代办员", "A", TOWN, "0632-8801001", "SD-001", "周一至周五 8:30-17:00"],
    ["吴中心", "代办员", "B岗", TOWN, "0632-8801001", "SD-002", None],
    ["郑站员", "代办员", None, int(VILLAGE), "13806321111", None, None],  # a code as a number
    ["钱调度", "调度员", None, TOWN, "0632-8801009", None, None],
)


async def _import(client, admin, data: bytes, path: str = "/mp/v1/admin/staff/import"):
    return await client.post(path, content=data, headers=admin)


async def _staff_count(ctx) -> int:
    return await ctx.db.run_read(
        lambda s: s.scalar(
            select(func.count()).select_from(Account).where(Account.role != "resident")
        )
    )


async def test_a_sheet_creates_staff_with_codes_and_a_corrected_one_updates_them(
    ctx, demo, client, login
):
    admin = await login("admin")
    before = await _staff_count(ctx)
    first = await _import(client, admin, FIRST)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (4, 0, 0)
    people = {p["staff"]["name"]: p for p in body["people"]}
    assert people["吴中心"]["staff"]["post"] == "B"
    assert people["周中心"]["staff"]["region"]["name"] == "店子镇"
    assert people["郑站员"]["staff"]["region"]["name"] == "东庄村"
    assert people["钱调度"]["staff"]["role"] == "dispatcher"
    assert all(p["bindingCode"] for p in body["people"])
    assert await _staff_count(ctx) == before + 4

    # Each new person binds with their code.
    bound = await client.post(
        "/mp/v1/auth/bind-staff",
        json={"code": people["周中心"]["bindingCode"]},
        headers=await login("zhou-centre"),
    )
    assert bound.status_code == 200 and bound.json()["account"]["role"] == "agent"

    # A corrected sheet: a name fixed (found by staff number), hours added (found by phone),
    # one person new; the rest unchanged. Nobody is duplicated; only the new one gets a code.
    corrected = sheet(
        ["周中兴", "代办员", "A", TOWN, "0632-8801001", "SD-001", "周一至周五 8:30-17:00"],
        ["吴中心", "代办员", "B", TOWN, "0632-8801001", "SD-002", None],
        ["郑站员", "代办员", None, VILLAGE, "13806321111", None, "每天上午"],
        ["钱调度", "调度员", None, TOWN, "0632-8801009", None, None],
        ["孙新人", "代办员", "A", VILLAGE, "13806322222", None, None],
    )
    again = await _import(client, admin, corrected)
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 2, 2)
    assert [p["staff"]["name"] for p in body["people"] if p["bindingCode"]] == ["孙新人"]
    assert await _staff_count(ctx) == before + 5
    listed = (await client.get("/mp/v1/admin/staff", headers=admin)).json()
    assert "周中兴" in {s["name"] for s in listed} and "周中心" not in {s["name"] for s in listed}
    # The same sheet once more changes nothing.
    third = (await _import(client, admin, corrected)).json()
    assert (third["created"], third["updated"], third["unchanged"]) == (0, 0, 5)
    # Two rows that would find one person (a new staff number, and the phone alone).
    twice = sheet(
        ["郑站员", "代办员", None, VILLAGE, "13806321111", "SD-009", None],
        ["郑站员", "代办员", None, VILLAGE, "13806321111", None, None],
    )
    answer = await _import(client, admin, twice)
    assert answer.status_code == 422 and answer.json()["errors"][0]["row"] == 3


async def test_the_codes_come_back_as_a_sheet_to_print(ctx, demo, client, login):
    answer = await _import(client, await login("admin"), FIRST, "/mp/v1/admin/staff/import/codes")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(io.BytesIO(answer.content)).active.iter_rows(values_only=True))
    assert rows[0][:2] == ("行", "姓名") and rows[0][7] == "绑定码"
    assert [(r[0], r[1]) for r in rows[1:]] == [
        (2, "周中心"),
        (3, "吴中心"),
        (4, "郑站员"),
        (5, "钱调度"),
    ]
    assert all(len(r[7]) >= 8 for r in rows[1:])


async def test_a_sheet_with_problems_lists_each_with_its_row_and_writes_nothing(
    ctx, demo, client, login
):
    admin = await login("admin")
    before = await _staff_count(ctx)
    bad = sheet(
        ["周", "代办员", "A", TOWN, "0632-8801001", None, None],  # 2: name too short
        ["吴中心", "司机", None, TOWN, "0632-8801002", None, None],  # 3: no such role
        ["郑站员", "调度员", "A", TOWN, "0632-8801003", None, None],  # 4: a dispatcher's post
        ["王站员", "代办员", None, "3704061012", "0632-8801004", None, None],  # 5: short code
        ["李站员", "代办员", None, VILLAGE, "不是电话", None, None],  # 6: phone
        ["赵站员", "代办员", None, VILLAGE, None, None, None],  # 7: neither phone nor number
        ["钱站员", "代办员", None, VILLAGE, "13806329999", None, None],
        ["孙站员", "代办员", None, VILLAGE, "13806329999", None, None],  # 9: same phone as 8
        ["冯站员", "代办员", None, "370407101201", "13806320001", None, None],  # 10: other district
        ["陈调度", "调度员", None, VILLAGE, "13806320002", None, None],  # 11: not at a town
        ["褚站员", "代办员", None, VILLAGE, "13806320003", "X\tY", None],  # 12: a tab
        ["吴秀芳", "调度员", None, TOWN, "13806320402", None, None],  # 13: 郑海涛's phone, an agent
    )
    answer = await _import(client, admin, bad)
    assert answer.status_code == 422, answer.text
    problems = answer.json()["errors"]
    # All at once: the sheet's own and those against the data (rows 10, 11, 13).
    assert [(p["row"], p["field"]) for p in problems] == [
        (2, "name"),
        (3, "role"),
        (4, "post"),
        (5, "regionCode"),
        (6, "workPhone"),
        (7, "workPhone"),
        (9, "workPhone"),
        (10, "regionCode"),
        (11, "regionCode"),
        (12, "staffNumber"),
        (13, "role"),
    ], problems
    assert await _staff_count(ctx) == before
    for junk in (b"", b"PK\x03\x04 not really a workbook", "姓名,角色\n".encode()):
        refused = await _import(client, admin, junk)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "file"


async def test_an_import_does_not_move_an_agent_who_has_open_orders(ctx, demo, client, login):
    """resident2's order goes to 吴秀芳 (西集村, A post, phone 13806320401): a sheet moving her
    to 店子镇's centre is refused until her orders are handed over."""
    order = await submit(client, await login("resident2"))
    assert order.status_code == 201
    admin = await login("admin")
    moving = sheet(["吴秀芳", "代办员", "A", TOWN, "13806320401", None, None])
    answer = await _import(client, admin, moving)
    assert answer.status_code == 422, answer.text
    assert "在办" in answer.json()["errors"][0]["message"]
    staying = sheet(["吴秀芳", "代办员", "A", "370406102201", "13806320401", None, "全天"])
    answer = await _import(client, admin, staying)
    assert answer.status_code == 200 and answer.json()["updated"] == 1
