"""First-time setup: the region tree from a file of statistical division codes, loaded again
with corrections, every problem listed with its row; and the first admin, bound by code."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from app.cli import main
from app.demo import REGIONS_FILE
from app.models import Account, Region
from app.regions.division_codes import RegionsInvalid, load_regions, read_regions
from tests.conftest import settings_env

SAMPLE = REGIONS_FILE.read_bytes()


def _csv(*lines: str) -> bytes:
    return ("\n".join(["统计用区划代码,城乡分类代码,名称", *lines]) + "\n").encode()


async def _tree(ctx) -> dict[str, tuple[str, str, str | None]]:
    """code -> (name, level, parent's code)"""

    def read(session):
        rows = session.scalars(select(Region)).all()
        codes = {r.id: r.code for r in rows}
        return {r.code: (r.name, r.level, codes.get(r.parent_id)) for r in rows}

    return await ctx.db.run_read(read)


async def test_the_sample_file_loads_the_demo_district_with_levels_from_the_codes(ctx):
    rows = read_regions(SAMPLE, REGIONS_FILE.name)
    loaded = await ctx.db.run_write(lambda s: load_regions(s, rows, ctx.now()))
    assert (loaded.district, loaded.added, loaded.renamed) == ("山亭区", 9, 0)
    assert (loaded.removed, loaded.retired) == ([], [])
    tree = await _tree(ctx)
    assert tree["370406000000"] == ("山亭区", "district", None)
    assert tree["370406101000"] == ("店子镇", "town", "370406000000")
    assert tree["370406102203"] == ("东江村", "village", "370406102000")
    assert len(tree) == 9

    def ancestors(session):
        village = session.scalar(select(Region).where(Region.code == "370406102203"))
        return session.get(Region, village.town_id).code, session.get(
            Region, village.district_id
        ).code

    assert await ctx.db.run_read(ancestors) == ("370406102000", "370406000000")


async def test_loading_a_corrected_file_renames_and_adds_and_duplicates_nothing(ctx):
    first = read_regions(SAMPLE, "d.csv")
    await ctx.db.run_write(lambda s: load_regions(s, first, ctx.now()))
    corrected = _csv(
        "370000000000,,山东省",  # above the district: skipped
        "370406000000,,山亭区",
        "370406101000,,店子镇",
        "370406101201,220,店子村",
        "370406101202,220,东庄社区",  # renamed
        "370406101204,220,新建村",  # new
        "370406103000,,山城街道",  # a new street
        "370406103001,111,山城社区",
    )
    again = read_regions(corrected, "d.csv")
    loaded = await ctx.db.run_write(lambda s: load_regions(s, again, ctx.now()))
    assert (loaded.added, loaded.renamed, loaded.unchanged) == (3, 1, 3)
    # What the file no longer lists and nothing refers to is removed, and reported.
    assert loaded.removed == [
        "370406101203 岩马村",
        "370406102000 西集镇",
        "370406102201 西集村",
        "370406102202 孟庄村",
        "370406102203 东江村",
    ]
    assert loaded.retired == []
    tree = await _tree(ctx)
    assert len(tree) == 7
    assert tree["370406101202"][0] == "东庄社区"
    assert tree["370406103001"] == ("山城社区", "village", "370406103000")
    # Once more, the same file: nothing changes.
    third = await ctx.db.run_write(
        lambda s: load_regions(s, read_regions(corrected, "d.csv"), ctx.now())
    )
    assert (third.added, third.renamed, third.unchanged) == (0, 0, 7)
    assert (third.removed, third.retired) == ([], [])
    assert len(await _tree(ctx)) == 7


async def test_a_region_in_use_that_the_file_drops_is_retired_and_comes_back_when_listed(
    ctx, demo, client, login
):
    """The demo district has orders, staff and residents in 西集镇's villages: a file without
    西集镇 retires the town and its villages in use (never deleting them), removes what
    nothing refers to, and residents can no longer choose a retired village. Listing them
    again brings them back."""
    without = _csv(
        "370406000000,,山亭区",
        "370406101000,,店子镇",
        "370406101201,,店子村",
        "370406101202,,东庄村",
        "370406101203,,岩马村",
    )
    loaded = await ctx.db.run_write(
        lambda s: load_regions(s, read_regions(without, "d.csv"), ctx.now())
    )
    assert "370406102000 西集镇" in loaded.retired
    assert set(loaded.removed) | set(loaded.retired) == {
        "370406102000 西集镇",
        "370406102201 西集村",
        "370406102202 孟庄村",
        "370406102203 东江村",
    }
    tree = await _tree(ctx)
    assert "370406102000" in tree  # kept
    public = (await client.get("/mp/v1/regions")).json()
    assert [t["name"] for t in public[0]["children"]] == ["店子镇"]
    retired_village = await ctx.db.run_read(
        lambda s: s.scalar(
            select(Region.id).where(
                Region.code.in_([c.split()[0] for c in loaded.retired]), Region.level == "village"
            )
        )
    )
    headers = await login("newcomer")
    chosen = await client.patch("/mp/v1/me", json={"villageId": retired_village}, headers=headers)
    assert chosen.status_code == 422 and "已撤销" in chosen.json()["errors"][0]["message"]

    back = await ctx.db.run_write(
        lambda s: load_regions(s, read_regions(SAMPLE, "d.csv"), ctx.now())
    )
    assert back.restored == len(loaded.retired)
    assert back.added == len(loaded.removed)
    public = (await client.get("/mp/v1/regions")).json()
    assert [t["name"] for t in public[0]["children"]] == ["店子镇", "西集镇"]


def test_a_file_with_ten_problems_reports_ten_with_their_rows():
    bad = _csv(
        "370406000000,,山亭区",
        "37040610100,,少一位",  # 3: not 12 digits
        "37040610100X,,",  # 4: not digits, and no name
        "370406101000,,",  # 5: no name
        "370406101000,,店子镇",
        "370406101000,,又一个店子镇",  # 7: duplicate of row 6
        "370406101201,," + "长" * 61,  # 8: name too long
        "370406101202,,东庄\x00村",  # 9: control character
        "370407000000,,另一个区",  # 10: a second district
        "370408101000,,外区的镇",  # 11: not under the district
        "370406101203,,岩马\t村",  # 12: a tab in a name
    )
    with pytest.raises(RegionsInvalid) as raised:
        read_regions(bad, "bad.csv")
    problems = raised.value.problems
    assert [(p.row, p.field) for p in problems] == [
        (3, "code"),
        (4, "code"),
        (4, "name"),
        (5, "name"),
        (7, "code"),
        (8, "name"),
        (9, "name"),
        (10, "code"),
        (11, "code"),
        (12, "name"),
    ], [(p.row, p.field, p.message) for p in problems]
    assert "第 6 行重复" in problems[4].message
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in p.message) for p in problems)


def test_a_file_without_the_header_or_the_district_says_so():
    with pytest.raises(RegionsInvalid) as raised:
        read_regions("370406000000,山亭区\n".encode(), "x.csv")
    assert raised.value.problems[0].row == 1 and "表头" in raised.value.problems[0].message
    with pytest.raises(RegionsInvalid) as raised:
        read_regions(_csv("370406101000,,店子镇"), "x.csv")
    assert "区县" in raised.value.problems[0].message


def test_a_village_whose_town_is_not_in_the_file_is_refused():
    with pytest.raises(RegionsInvalid) as raised:
        read_regions(_csv("370406000000,,山亭区", "370406109201,,孤村"), "x.csv")
    assert [(p.row, p.message) for p in raised.value.problems] == [
        (3, "上级 370406109000 不在文件中")
    ]


def test_an_xlsx_with_codes_kept_as_numbers_and_a_gb18030_csv_read_the_same():
    book = Workbook()
    sheet = book.active
    sheet.append(["统计用区划代码", "名称"])
    sheet.append([370406000000, "山亭区"])
    sheet.append([370406101000.0, "店子镇"])
    buffer = io.BytesIO()
    book.save(buffer)
    from_xlsx = read_regions(buffer.getvalue(), "d.xlsx")
    from_gbk = read_regions(
        "代码,名称\n370406000000,山亭区\n370406101000,店子镇\n".encode("gb18030"), "d.csv"
    )
    assert [(r.code, r.name, r.level) for r in from_xlsx] == [
        ("370406000000", "山亭区", "district"),
        ("370406101000", "店子镇", "town"),
    ]
    assert [(r.code, r.name, r.level) for r in from_gbk] == [
        (r.code, r.name, r.level) for r in from_xlsx
    ]


async def test_setup_loads_the_file_and_the_first_admin_binds_with_the_printed_code(
    ctx, client, database_url: str, tmp_path: Path, monkeypatch, capsys
):
    """`daiban setup` as the county's IT office runs it, without demo data; then the first
    admin logs in with WeChat and binds. A second "first" admin is refused once bound."""
    for name, value in settings_env(
        tmp_path / "var", database_url, DAIBAN_DEMO_DATA="false"
    ).items():
        monkeypatch.setenv(name, value)
    argv = ["setup", "--regions", str(REGIONS_FILE), "--first-admin", "王立新"]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "regions of 山亭区: 9 added, 0 renamed, 0 brought back, 0 unchanged" in out
    code = out.split("binding code ")[1].split()[0]

    login = await client.post("/mp/v1/auth/login", json={"code": "dev:county-it"})
    headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    bound = await client.post("/mp/v1/auth/bind-staff", json={"code": code}, headers=headers)
    assert bound.status_code == 200, bound.text
    admin = {"Authorization": f"Bearer {bound.json()['accessToken']}"}
    me = (await client.get("/mp/v1/me", headers=admin)).json()
    assert me["role"] == "admin" and me["name"] == "王立新"
    regions = (await client.get("/mp/v1/regions")).json()
    assert [r["name"] for r in regions] == ["山亭区"]
    assert [t["name"] for t in regions[0]["children"]] == ["店子镇", "西集镇"]

    # Bound now: setup will not make another first admin, and says why.
    again = ["setup", "--district", "370406000000", "--first-admin", "李四"]
    assert await asyncio.to_thread(main, again) == 1
    assert "已有绑定的管理员" in capsys.readouterr().err
    admins = await ctx.db.run_read(
        lambda s: s.scalars(select(Account.name).where(Account.role == "admin")).all()
    )
    assert admins == ["王立新"]


async def test_setup_run_again_before_binding_gives_the_same_admin_a_new_code(
    ctx, database_url: str, tmp_path: Path, monkeypatch, capsys
):
    for name, value in settings_env(tmp_path / "var", database_url).items():
        monkeypatch.setenv(name, value)
    argv = ["setup", "--regions", str(REGIONS_FILE), "--first-admin", "王立新"]
    assert await asyncio.to_thread(main, argv) == 0
    first = capsys.readouterr().out.split("binding code ")[1].split()[0]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "0 added, 0 renamed, 0 brought back, 9 unchanged" in out
    second = out.split("binding code ")[1].split()[0]
    assert second != first
    admins = await ctx.db.run_read(
        lambda s: s.scalars(select(Account.name).where(Account.role == "admin")).all()
    )
    assert admins == ["王立新"]


def test_a_bad_region_file_makes_setup_list_every_problem_and_exit_1(
    tmp_path: Path, database_url: str, monkeypatch, capsys
):
    for name, value in settings_env(tmp_path / "var", database_url).items():
        monkeypatch.setenv(name, value)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv("370406000000,,山亭区", "37040610100,,少一位", "370406101000,,"))
    assert main(["setup", "--regions", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "nothing loaded: 2 problems" in err
    assert "row 3  code:" in err and "row 4  name:" in err
