"""The monthly ledger, versioned: a month's ledger is provisional (未定稿) until its deadline
(a village's the end of the 7th of the next month, a town's the end of the 10th, local
time) and made again on every nightly run; the first run after the deadline freezes it as
version 1, which never changes again; a correction after that adds version 2 beside it,
with its reason, audited. Everything through the HTTP API and the ledgers job, on 西集镇
(resident2 李建国 of 西集村, whose orders go to 吴秀芳, agent4a)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from jobs import tasks
from tests.console.signing_in import sign_in
from tests.factories import submit
from tests.notifications.test_reminders import at

CORRECTION = "10月两件办件状态登记有误,按当前数据重新生成"


async def _ledgers(client, login, who: str, region: str, month: str = "2026-10") -> list[Any]:
    """The listed versions of a region's month, for a dispatcher or the admin (logged in
    afresh: the clock moves past tokens' lifetimes)."""
    role = "admin" if who == "admin" else "dispatch"
    response = await client.get(f"/mp/v1/{role}/ledgers", headers=await login(who))
    assert response.status_code == 200, response.text
    return [f for f in response.json() if f["regionName"] == region and f["month"] == month]


async def _only(client, login, who: str, region: str, month: str = "2026-10") -> dict[str, Any]:
    found = await _ledgers(client, login, who, region, month)
    assert len(found) == 1, found
    return found[0]


async def _download(client, ledger: dict[str, Any]) -> bytes:
    response = await client.get(ledger["url"])
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == ledger["sha256"]
    return response.content


def _but_link(ledger: dict[str, Any]) -> dict[str, Any]:
    """A listed ledger without its download link (signed anew on every list)."""
    return {k: v for k, v in ledger.items() if k != "url"}


def _first_lines(data: bytes) -> list[str]:
    """The first sheet's first two lines: the title and what state the file is in."""
    book = load_workbook(io.BytesIO(data), read_only=True)
    assert book.sheetnames[0] == "汇总"
    rows = list(book["汇总"].iter_rows(values_only=True, max_row=2))
    return [str(row[0]) for row in rows]


def _register_statuses(data: bytes) -> list[str]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    rows = list(book["办件登记"].iter_rows(values_only=True))
    return [row[rows[0].index("状态")] for row in rows[1:]]


async def _order(client, login, when, clock) -> int:
    clock.current = when
    response = await submit(client, await login("resident2"))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _region_id(client, name: str) -> int:
    tree = (await client.get("/mp/v1/regions")).json()
    return next(
        v["id"]
        for d in tree
        for t in d["children"]
        for v in [t, *t["children"]]
        if v["name"] == name
    )


async def _frozen_october(client, login, clock, ctx) -> int:
    """One order of 西集村 in October; the month built as it goes, then frozen (the town
    too). The order's id."""
    order = await _order(client, login, at(2026, 10, 20, 9, 0), clock)
    for day in (8, 11):
        clock.current = at(2026, 11, day, 1, 30)
        await tasks.build_ledgers(ctx)
    return order


async def test_the_current_months_ledger_is_provisional_marked_in_file_and_list_and_rebuilt_nightly(
    client, demo, login, clock, ctx, settings
):
    await _order(client, login, at(2026, 10, 20, 9, 0), clock)
    clock.current = at(2026, 10, 25, 15, 40)  # an admin builds the month still running
    admin = await login("admin")
    built = await client.post(
        "/mp/v1/admin/ledgers/build", json={"month": "2026-10"}, headers=admin
    )
    assert built.json() == {"month": "2026-10", "built": 8, "failed": []}
    early = await _only(client, login, "dispatcher2a", "西集村")
    assert early["provisional"] is True and early["version"] == 1
    assert early["frozenAt"] is None and early["reason"] is None
    assert early["deadline"] == "2026-11-07T16:00:00Z"  # the end of 7 November in Shanghai
    assert early["orders"] == 1
    title, state = _first_lines(await _download(client, early))
    assert title == "西集村 2026年10月 帮办代办台账(未定稿)"
    assert state == "未定稿(截至 2026-10-25 15:40 生成,11月7日定稿)"
    town = await _only(client, login, "dispatcher2a", "西集镇")
    assert town["provisional"] is True and town["deadline"] == "2026-11-10T16:00:00Z"
    _, town_state = _first_lines(await _download(client, town))
    assert town_state == "未定稿(截至 2026-10-25 15:40 生成,11月10日定稿)"

    await _order(client, login, at(2026, 10, 28, 11, 0), clock)  # after the early build
    clock.current = at(2026, 10, 29, 1, 30)
    await tasks.build_ledgers(ctx)  # the nightly run
    rebuilt = await _only(client, login, "dispatcher2a", "西集村")  # made again, not added
    assert rebuilt["provisional"] is True and rebuilt["version"] == 1
    assert rebuilt["orders"] == 2 and rebuilt["sha256"] != early["sha256"]
    data = await _download(client, rebuilt)
    assert _first_lines(data)[1] == "未定稿(截至 2026-10-29 01:30 生成,11月7日定稿)"
    assert len(_register_statuses(data)) == 2
    objects = Path(settings.storage.local_dir or Path(settings.core.var_dir) / "objects")
    assert len(list((objects / "ledgers" / "2026-10").iterdir())) == 8  # drafts replaced

    clock.current = at(2026, 11, 7, 23, 30)  # the 7th's last half hour: still provisional
    await tasks.build_ledgers(ctx)
    assert (await _only(client, login, "dispatcher2a", "西集村"))["provisional"] is True


async def test_after_the_7th_a_village_and_after_the_10th_a_town_is_frozen_as_version_1(
    client, demo, login, clock, ctx
):
    await _order(client, login, at(2026, 10, 20, 9, 0), clock)
    clock.current = at(2026, 11, 1, 1, 30)
    assert await tasks.build_ledgers(ctx) == 8  # last month: six villages, two towns
    assert (await _only(client, login, "dispatcher2a", "西集村"))["provisional"] is True

    clock.current = at(2026, 11, 8, 1, 30)  # the first run after the villages' deadline
    await tasks.build_ledgers(ctx)
    village = await _only(client, login, "dispatcher2a", "西集村")
    assert village["provisional"] is False and village["version"] == 1
    assert village["frozenAt"] == "2026-11-07T17:30:00Z" and village["reason"] is None
    title, state = _first_lines(await _download(client, village))
    assert title == "西集村 2026年10月 帮办代办台账"
    assert state == "定稿 第1版(2026-11-08 01:30 生成)"
    town = await _only(client, login, "dispatcher2a", "西集镇")
    assert town["provisional"] is True  # the town compiles until the 10th

    clock.current = at(2026, 11, 10, 1, 30)
    await _order(client, login, at(2026, 11, 10, 1, 30), clock)  # November's: not October's
    await tasks.build_ledgers(ctx)
    assert _but_link(await _only(client, login, "dispatcher2a", "西集村")) == _but_link(village)
    town_still = await _only(client, login, "dispatcher2a", "西集镇")
    assert town_still["provisional"] is True and town_still["sha256"] != town["sha256"]

    clock.current = at(2026, 11, 11, 1, 30)  # after the 10th
    await tasks.build_ledgers(ctx)
    final_town = await _only(client, login, "dispatcher2a", "西集镇")
    assert final_town["provisional"] is False and final_town["version"] == 1
    assert final_town["frozenAt"] == "2026-11-10T17:30:00Z"
    kept = await _download(client, final_town)
    assert _first_lines(kept)[1] == "定稿 第1版(2026-11-11 01:30 生成)"

    clock.current = at(2026, 11, 12, 1, 30)  # a later run leaves both untouched
    assert await tasks.build_ledgers(ctx) == 0
    again_village = await _only(client, login, "dispatcher2a", "西集村")
    again_town = await _only(client, login, "dispatcher2a", "西集镇")
    assert again_village["sha256"] == village["sha256"]
    assert again_village["builtAt"] == village["builtAt"]
    assert again_town["sha256"] == final_town["sha256"]
    assert await _download(client, again_town) == kept


async def test_a_correction_with_a_reason_makes_version_2_beside_1_both_listed_and_audited(
    client, demo, login, clock, ctx
):
    order = await _frozen_october(client, login, clock, ctx)
    first = await _only(client, login, "admin", "西集村")
    first_data = await _download(client, first)
    assert _register_statuses(first_data) == ["待接单"]

    clock.current = at(2026, 11, 12, 10, 0)  # the order moves on after the freeze
    agent = await login("agent4a")
    for action in ("take", "accept"):
        moved = await client.post(f"/mp/v1/agent/orders/{order}/{action}", json={}, headers=agent)
        assert moved.status_code == 200, moved.text
    clock.current = at(2026, 11, 12, 15, 0)
    village_id = await _region_id(client, "西集村")
    admin = await login("admin")
    made = await client.post(
        f"/mp/v1/admin/ledgers/{village_id}/2026-10/corrections",
        json={"reason": CORRECTION},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    second = made.json()
    assert second["version"] == 2 and second["provisional"] is False
    assert second["reason"] == CORRECTION and second["frozenAt"] == "2026-11-12T07:00:00Z"
    assert second["regionName"] == "西集村" and second["month"] == "2026-10"

    listed = await _ledgers(client, login, "admin", "西集村")
    assert [f["version"] for f in listed] == [2, 1]  # newest first, the first kept beside it
    assert _but_link(listed[1]) == _but_link(first)
    by_dispatcher = await _ledgers(client, login, "dispatcher2a", "西集村")
    assert [f["version"] for f in by_dispatcher] == [2, 1]  # the town's dispatchers too
    assert await _download(client, listed[1]) == first_data  # version 1 unchanged
    corrected = await _download(client, listed[0])
    assert corrected != first_data
    title, state = _first_lines(corrected)
    assert title == "西集村 2026年10月 帮办代办台账"
    assert state == (
        f"更正 第2版(2026-11-12 15:00 生成;更正原因:{CORRECTION};第1版定稿于 2026-11-08 01:30)"
    )
    assert _register_statuses(corrected) == ["办理中"]  # the data as it stands now
    assert _register_statuses(first_data) == ["待接单"]

    log = (await client.get("/mp/v1/admin/audit?action=ledger.correct", headers=admin)).json()
    assert len(log) == 1
    assert log[0]["actorName"] == "王立新" and log[0]["purpose"] == CORRECTION
    assert log[0]["detail"] == {"region": "西集村", "month": "2026-10", "version": 2}

    clock.current = at(2026, 11, 13, 1, 30)  # the nightly run touches no version
    await tasks.build_ledgers(ctx)
    after = await _ledgers(client, login, "admin", "西集村")
    assert [(f["version"], f["sha256"]) for f in after] == [
        (2, second["sha256"]),
        (1, first["sha256"]),
    ]
    third = await client.post(
        f"/mp/v1/admin/ledgers/{village_id}/2026-10/corrections",
        json={"reason": "再次核对"},
        headers=await login("admin"),
    )
    assert third.status_code == 201 and third.json()["version"] == 3


async def test_a_correction_without_a_reason_is_a_422_problem(client, demo, login, clock, ctx):
    await _frozen_october(client, login, clock, ctx)
    admin = await login("admin")
    village_id = await _region_id(client, "西集村")
    path = f"/mp/v1/admin/ledgers/{village_id}/2026-10/corrections"
    for body in ({}, {"reason": ""}, {"reason": "  \n "}):
        refused = await client.post(path, json=body, headers=admin)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["code"] == "invalid_input"
        assert "reason" in [e["field"] for e in problem["errors"]], problem
    bad_month = await client.post(
        f"/mp/v1/admin/ledgers/{village_id}/2026-13/corrections",
        json={"reason": CORRECTION},
        headers=admin,
    )
    assert bad_month.status_code == 422 and bad_month.json()["errors"][0]["field"] == "month"
    assert len(await _ledgers(client, login, "admin", "西集村")) == 1  # nothing was added
    log = (await client.get("/mp/v1/admin/audit?action=ledger.correct", headers=admin)).json()
    assert log == []


async def test_a_ledger_not_yet_frozen_or_not_built_cannot_be_corrected(
    client, demo, login, clock, ctx
):
    await _order(client, login, at(2026, 10, 20, 9, 0), clock)
    clock.current = at(2026, 11, 3, 1, 30)
    await tasks.build_ledgers(ctx)
    admin = await login("admin")
    village_id = await _region_id(client, "西集村")
    early = await client.post(
        f"/mp/v1/admin/ledgers/{village_id}/2026-10/corrections",
        json={"reason": CORRECTION},
        headers=admin,
    )
    assert early.status_code == 409, early.text
    assert early.json()["code"] == "ledger_not_final"
    missing = await client.post(
        f"/mp/v1/admin/ledgers/{village_id}/2026-08/corrections",
        json={"reason": CORRECTION},
        headers=admin,
    )
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_a_dispatcher_cannot_correct_a_ledger(client, demo, login, clock, ctx):
    await _frozen_october(client, login, clock, ctx)
    dispatcher = await login("dispatcher2a")
    village_id = await _region_id(client, "西集村")
    refused = await client.post(
        f"/mp/v1/admin/ledgers/{village_id}/2026-10/corrections",
        json={"reason": CORRECTION},
        headers=dispatcher,
    )
    assert refused.status_code == 403
    own_route = await client.post(
        f"/mp/v1/dispatch/ledgers/{village_id}/2026-10/corrections",
        json={"reason": CORRECTION},
        headers=dispatcher,
    )
    assert own_route.status_code in (404, 405)
    assert [f["version"] for f in await _ledgers(client, login, "dispatcher2a", "西集村")] == [1]


async def test_the_work_log_sheet_shows_no_residents_full_name(client, demo, login, clock, ctx):
    order = await _order(client, login, at(2026, 10, 20, 9, 0), clock)
    clock.current = at(2026, 10, 21, 9, 0)
    cancelled = await client.post(
        f"/mp/v1/orders/{order}/cancel", json={}, headers=await login("resident2")
    )
    assert cancelled.status_code == 200, cancelled.text
    clock.current = at(2026, 11, 8, 1, 30)
    await tasks.build_ledgers(ctx)
    village = await _only(client, login, "dispatcher2a", "西集村")
    book = load_workbook(io.BytesIO(await _download(client, village)), read_only=True)
    log = list(book["工作日志"].iter_rows(values_only=True))
    who = [row[log[0].index("操作人")] for row in log[1:]]
    roles = [row[log[0].index("角色")] for row in log[1:]]
    assert who and {w for w, r in zip(who, roles, strict=True) if r == "群众"} == {"李**"}
    register = list(book["办件登记"].iter_rows(values_only=True))
    assert register[1][register[0].index("群众")] == "李**"
    every_cell = [
        str(cell)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell
    ]
    assert not any("李建国" in cell for cell in every_cell)


async def test_two_workers_building_at_once_keep_one_row_per_region_and_its_own_file(
    client, demo, login, clock, ctx, settings
):
    await _order(client, login, at(2026, 10, 20, 9, 0), clock)
    for day in (3, 8):  # provisional, then frozen: each time two runs race
        clock.current = at(2026, 11, day, 1, 30)
        await asyncio.gather(tasks.build_ledgers(ctx), tasks.build_ledgers(ctx))
        admin = await login("admin")
        listed = (await client.get("/mp/v1/admin/ledgers", headers=admin)).json()
        assert len(listed) == 8  # one row per village and town
        for ledger in listed:
            await _download(client, ledger)  # its file is there, with its sha256
        objects = Path(settings.storage.local_dir or Path(settings.core.var_dir) / "objects")
        files = list((objects / "ledgers" / "2026-10").iterdir())
        assert len(files) == 8  # the losers' files and the replaced drafts removed


async def test_the_consoles_ledger_list_shows_each_version_and_what_is_provisional(
    client, demo, login, clock, ctx
):
    await _frozen_october(client, login, clock, ctx)
    clock.current = at(2026, 11, 12, 15, 0)
    village_id = await _region_id(client, "西集村")
    admin = await login("admin")
    made = await client.post(
        f"/mp/v1/admin/ledgers/{village_id}/2026-10/corrections",
        json={"reason": CORRECTION},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    november = await client.post(
        "/mp/v1/admin/ledgers/build", json={"month": "2026-11"}, headers=admin
    )
    assert november.json()["built"] == 8
    await sign_in(client, await login("dispatcher2a"))
    page = await client.get("/console/figures")
    assert page.status_code == 200
    rows = [
        re.sub(r"<[^>]+>|\s+", "", row)
        for row in re.findall(r"<tr><td>2026-1[01]</td>.*?</tr>", page.text, re.S)
    ]
    assert len(rows) == 4 + 4 + 1  # November's four, October's four and the correction
    assert any(r.startswith("2026-11西集村未定稿（2026-12-0724:00定稿）") for r in rows), rows
    assert any(r.startswith("2026-10西集村第2版（更正：10月两件办件") for r in rows), rows
    assert any(r.startswith("2026-10西集村第1版（定稿）") for r in rows), rows
    assert page.text.count("下载 xlsx") == 9
