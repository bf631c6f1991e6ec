"""The ledger: figures on a month built by hand equal the hand-computed ones; the monthly
workbook opens with openpyxl and its register matches; exports are masked (every cell
scanned) unless an admin states a purpose; scope; the audit log.

October 2026 in 西集镇 (resident2 of 西集村, served by 吴秀芳, agent4a):
  O4  accepted Tue 29 Sept (5 working days, due 12 Oct), held 30 Sept with 4 days left,
      resumed Fri 9 Oct (due 14 Oct: 10, 12, 13, 14; Sat 10 Oct is a make-up working day),
      completed Wed 14 Oct: on time, 7 working days (30 Sept, 8, 9, 10, 12, 13, 14 Oct)
  O1  green channel, submitted and accepted Fri 9 Oct, completed Mon 12 Oct: on time, 2 days
  O3  submitted Tue 13 Oct, rejected the same day (不予受理)
  O5  entered by the agent on Tue 20 Oct, still in review
  O2  submitted Mon 26 Oct, a supplement notice, supplemented, accepted Wed 28 Oct,
      completed Tue 3 Nov (next month)
"""

from __future__ import annotations

import io
import uuid

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from app.demo import demo_id_number
from app.security.pii import mask_id_number, mask_phone
from jobs import tasks
from tests.factories import guide, order_copies, submit, upload_photo
from tests.notifications.test_reminders import at

RESIDENT2_ID = demo_id_number("370406", "19650817", "031")
RESIDENT2_PHONE = "13706325678"


class Month:
    def __init__(self, client, login, clock) -> None:
        self.client, self.login, self.clock = client, login, clock

    async def move(self, order_id: int, action: str, when, body=None, handle="agent4a"):
        self.clock.current = when
        headers = await self.login(handle)
        prefix = "/mp/v1/orders" if handle.startswith("resident") else "/mp/v1/agent/orders"
        response = await self.client.post(
            f"{prefix}/{order_id}/{action}", json=body or {}, headers=headers
        )
        assert response.status_code == 200, (action, response.text)
        return response.json()

    async def submit(self, when, **extra) -> int:
        self.clock.current = when
        response = await submit(self.client, await self.login("resident2"), **extra)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def take_and_accept(self, order_id: int, when) -> None:
        await self.move(order_id, "take", when)
        await self.move(order_id, "accept", when)


async def _october(client, login, clock) -> dict[str, int]:
    m = Month(client, login, clock)
    o4 = await m.submit(at(2026, 9, 29, 9, 0))
    await m.take_and_accept(o4, at(2026, 9, 29, 10, 0))
    await m.move(o4, "hold", at(2026, 9, 30, 10, 0), {"reason": "等群众补开证明"})
    await m.move(o4, "resume", at(2026, 10, 9, 9, 30), handle="resident2")
    await m.move(o4, "complete", at(2026, 10, 14, 15, 0), {"outcome": "approved"})
    o1 = await m.submit(at(2026, 10, 9, 10, 0), greenChannel=True)
    await m.take_and_accept(o1, at(2026, 10, 9, 11, 0))
    await m.move(o1, "complete", at(2026, 10, 12, 16, 0), {"outcome": "approved"})
    o3 = await m.submit(at(2026, 10, 13, 9, 0))
    await m.move(o3, "take", at(2026, 10, 13, 10, 0))
    await m.move(o3, "reject", at(2026, 10, 13, 10, 5), {"reason": "不属于本事项办理范围"})
    clock.current = at(2026, 10, 20, 10, 0)
    agent = await login("agent4a")
    materials = {}
    for slot in (await guide(client, "RS-0001"))["materials"]:
        if slot["required"]:
            materials[slot["code"]] = [await upload_photo(client, agent)]
    entered = await client.post(
        "/mp/v1/agent/orders",
        json={
            "itemCode": "RS-0001",
            "resident": {
                "name": "王秀兰",
                "idNumber": demo_id_number("370406", "19420305", "046"),
                "phone": "13906329988",
            },
            "materials": materials,
            "entrustmentUploadIds": [await upload_photo(client, agent)],
        },
        headers={**agent, "Idempotency-Key": f"desk-{uuid.uuid4().hex}"},
    )
    assert entered.status_code == 201, entered.text
    o5 = int(entered.json()["id"])
    await m.move(o5, "take", at(2026, 10, 20, 10, 30))
    o2 = await m.submit(at(2026, 10, 26, 9, 0))
    await m.move(o2, "take", at(2026, 10, 26, 10, 0))
    await m.move(
        o2,
        "request-supplement",
        at(2026, 10, 26, 10, 10),
        {"missing": [{"code": "id_card", "reason": "照片看不清"}]},
    )
    clock.current = at(2026, 10, 27, 9, 0)
    resident = await login("resident2")
    photo = await upload_photo(client, resident)
    await m.move(
        o2, "supplement", at(2026, 10, 27, 9, 0), {"materials": {"id_card": [photo]}}, "resident2"
    )
    await m.move(o2, "accept", at(2026, 10, 28, 10, 0))
    await m.move(o2, "complete", at(2026, 11, 3, 10, 0), {"outcome": "approved"})
    return {"o1": o1, "o2": o2, "o3": o3, "o4": o4, "o5": o5}


async def test_octobers_figures_equal_the_hand_computed_ones(client, demo, login, clock):
    await _october(client, login, clock)
    clock.current = at(2026, 11, 5, 10, 0)
    response = await client.get(
        "/mp/v1/dispatch/stats?from=2026-10-01&to=2026-10-31", headers=await login("dispatcher2a")
    )
    assert response.status_code == 200, response.text
    f = response.json()
    assert f["received"] == 4  # O1, O3, O5, O2 (O4 came in September)
    assert f["accepted"] == 2  # O1, O2
    assert f["rejected"] == 1  # O3
    assert f["completed"] == 2 and f["completedOnTime"] == 2 and f["completedLate"] == 0
    assert f["completionRate"] == 0.5  # of O1 and O2, only O1 was done by 31 Oct
    assert f["onTimeRate"] == 1.0
    assert f["averageWorkingDays"] == 4.5 and f["p90WorkingDays"] == 7  # O1: 2, O4: 7
    assert f["supplementRate"] == 0.5  # O2
    assert f["channels"] == {"mini_program": 3, "agent": 1}
    # O1 declared; O5's resident (王秀兰, born 1942) is over 70: flagged by age.
    assert f["greenChannelShare"] == 0.5
    assert f["greenChannelCompleted"] == 1 and f["greenChannelOnTimeRate"] == 1.0  # O1
    assert f["byKind"] == {"promised": 4} and f["progressSteps"] == 0
    assert f["secondRounds"] == 0  # O2 needed one notice only
    assert f["topItems"] == [
        {"code": "RS-0001", "name": "城乡居民基本养老保险参保登记", "count": 4}
    ]
    assert f["inProgressNow"] == 0 and f["overdueNow"] == 0
    november = (
        await client.get(
            "/mp/v1/dispatch/stats?from=2026-11-01&to=2026-11-30",
            headers=await login("dispatcher2a"),
        )
    ).json()
    assert november["completed"] == 1 and november["accepted"] == 0
    assert november["completionRate"] is None
    filtered = (
        await client.get(
            "/mp/v1/dispatch/stats?from=2026-10-01&to=2026-10-31&itemCode=NO-SUCH",
            headers=await login("dispatcher2a"),
        )
    ).json()
    assert filtered["received"] == 0
    other = (
        await client.get(
            "/mp/v1/dispatch/stats?from=2026-10-01&to=2026-10-31",
            headers=await login("dispatcher1a"),
        )
    ).json()
    assert other["received"] == 0


def _cells(data: bytes) -> list[list[str]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    return [
        ["" if cell is None else str(cell) for cell in row]
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
    ]


async def test_the_monthly_ledger_opens_and_its_register_matches(client, demo, login, clock, ctx):
    orders = await _october(client, login, clock)
    clock.current = at(2026, 11, 5, 2, 0)  # the job ran late: still before the 7th
    assert await tasks.build_ledgers(ctx) == 8  # six villages and two towns
    # Still provisional (未定稿) before the 7th: made again, never added twice.
    assert await tasks.build_ledgers(ctx) == 8
    dispatcher = await login("dispatcher2a")
    files = (await client.get("/mp/v1/dispatch/ledgers", headers=dispatcher)).json()
    assert len(files) == 4 and all(f["provisional"] and f["version"] == 1 for f in files)
    assert {(f["regionName"], f["month"]) for f in files} == {
        ("西集镇", "2026-10"),
        ("西集村", "2026-10"),
        ("孟庄村", "2026-10"),
        ("东江村", "2026-10"),
    }
    village = next(f for f in files if f["regionName"] == "西集村")
    download = await client.get(village["url"])
    assert download.status_code == 200
    book = load_workbook(io.BytesIO(download.content), read_only=True)
    assert book.sheetnames == ["汇总", "办件登记", "工作日志", "评价"]
    register = list(book["办件登记"].iter_rows(values_only=True))
    numbers = {row[0] for row in register[1:]}
    detail = {}
    for name, order_id in orders.items():
        got = await client.get(f"/mp/v1/dispatch/orders/{order_id}", headers=dispatcher)
        detail[name] = got.json()
    assert numbers == {detail[k]["number"] for k in ("o1", "o2", "o3", "o5")}
    by_number = {row[0]: row for row in register[1:]}
    o1 = by_number[detail["o1"]["number"]]
    header = register[0]
    assert o1[header.index("是否按期")] == "是" and o1[header.index("办理结果")] == "准予"
    assert o1[header.index("群众")] == "李**"
    assert by_number[detail["o3"]["number"]][header.index("状态")] == "不予受理"
    assert village["orders"] == 4
    summary = {r[0]: r[1] for r in book["汇总"].iter_rows(values_only=True) if len(r) > 1}
    assert summary["受理件数"] == 2 and summary["按期办结率"] == "100.0%"
    log = list(book["工作日志"].iter_rows(values_only=True))[1:]
    october_events = [
        e
        for d in detail.values()
        for e in d["timeline"]
        if e["at"] >= "2026-09-30T16:00:00Z" and e["at"] < "2026-10-31T16:00:00Z"
    ]
    assert len(log) == len(october_events)
    cells = "\n".join("\t".join(row) for row in _cells(download.content))
    assert RESIDENT2_ID not in cells and RESIDENT2_PHONE not in cells


async def test_exports_are_masked_in_every_cell_unless_an_admin_states_a_purpose(
    client, demo, login, clock, ctx
):
    await _october(client, login, clock)
    clock.current = at(2026, 11, 5, 10, 0)
    query = "from=2026-09-01&to=2026-10-31"
    masked = await client.get(
        f"/mp/v1/dispatch/orders/export?{query}", headers=await login("dispatcher2a")
    )
    assert masked.status_code == 200, masked.text
    assert masked.headers["content-type"].startswith("application/vnd.openxmlformats")
    cells = _cells(masked.content)
    assert len(cells) == 1 + 5  # the header and O1…O5
    flat = [cell for row in cells for cell in row]
    assert not any(RESIDENT2_ID in c or RESIDENT2_PHONE in c for c in flat)
    assert mask_id_number(RESIDENT2_ID) in flat and mask_phone(RESIDENT2_PHONE) in flat
    admin = await login("admin")
    no_purpose = await client.get(
        f"/mp/v1/admin/orders/export-unmasked?{query}&purpose=", headers=admin
    )
    assert no_purpose.status_code == 422
    unmasked = await client.get(
        f"/mp/v1/admin/orders/export-unmasked?{query}&purpose=区医保局核对参保名单", headers=admin
    )
    assert unmasked.status_code == 200
    assert any(RESIDENT2_ID in c for row in _cells(unmasked.content) for c in row)
    denied = await client.get(
        f"/mp/v1/dispatch/orders/export-unmasked?{query}&purpose=x",
        headers=await login("dispatcher2a"),
    )
    assert denied.status_code == 404
    log = (
        await client.get("/mp/v1/admin/audit?action=orders.export_unmasked", headers=admin)
    ).json()
    assert len(log) == 1 and log[0]["purpose"] == "区医保局核对参保名单"
    assert log[0]["actorName"] == "王立新" and log[0]["detail"]["rows"] == 5
    masked_log = (await client.get("/mp/v1/admin/audit?action=orders.export", headers=admin)).json()
    assert len(masked_log) == 1 and masked_log[0]["actorRole"] == "dispatcher"


async def test_a_dispatcher_cannot_export_another_town(client, demo, login, clock):
    await _october(client, login, clock)
    clock.current = at(2026, 11, 5, 10, 0)
    other = await login("dispatcher1a")
    tree = (await client.get("/mp/v1/regions")).json()
    xiji = next(
        v["id"] for d in tree for t in d["children"] for v in t["children"] if v["name"] == "西集村"
    )
    refused = await client.get(
        f"/mp/v1/dispatch/orders/export?from=2026-10-01&to=2026-10-31&villageId={xiji}",
        headers=other,
    )
    assert refused.status_code == 404
    own = await client.get(
        "/mp/v1/dispatch/orders/export?from=2026-10-01&to=2026-10-31", headers=other
    )
    assert len(_cells(own.content)) == 1  # the header only


async def test_changes_to_settings_and_reads_of_personal_data_are_audited(client, demo, login, ctx):
    dispatcher = await login("dispatcher2a")
    await client.put("/mp/v1/dispatch/settings", json={"autoDispatch": False}, headers=dispatcher)
    agents = (await client.get("/mp/v1/dispatch/agents", headers=dispatcher)).json()
    agent = next(a["id"] for a in agents if a["name"] == "郑海涛")
    await client.patch(
        f"/mp/v1/dispatch/agents/{agent}/duty", json={"status": "off_duty"}, headers=dispatcher
    )
    admin = await login("admin")
    await client.put(
        "/mp/v1/admin/calendar/2027", json={"days": [], "complete": False}, headers=admin
    )
    await client.post("/mp/v1/admin/catalogue/items/RS-0001/retire", headers=admin)
    edited = await client.patch(
        f"/mp/v1/admin/staff/{agent}", json={"serviceHours": "周一至周六 8:30-17:30"}, headers=admin
    )
    assert edited.status_code == 200, edited.text
    log = (await client.get("/mp/v1/admin/audit", headers=admin)).json()
    actions = [e["action"] for e in log]
    assert actions == [
        "staff.edit",
        "catalogue.retire",
        "calendar.year",
        "dispatch.duty",
        "dispatch.rule",
    ]
    assert log[0]["detail"] == {"serviceHours": "周一至周六 8:30-17:30"}
    assert log[-1]["detail"] == {"autoDispatch": False} and log[-1]["actorName"] == "杨春华"
    assert (await client.get("/mp/v1/admin/audit", headers=dispatcher)).status_code == 403


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"]
)
async def test_the_audit_log_refuses_changes(client, demo, login, ctx, statement):
    await client.put(
        "/mp/v1/dispatch/settings",
        json={"autoDispatch": False},
        headers=await login("dispatcher2a"),
    )
    with pytest.raises(Exception, match="append-only"):
        await ctx.db.run_write(lambda s: s.execute(text(statement)))
    rows = await ctx.db.run_read(
        lambda s: s.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
    )
    assert rows == ["regions.load", "dispatch.rule"]  # the demo's regions, then the change


async def test_figures_over_more_accepted_orders_than_a_statement_takes_parameters(
    client, demo, login, clock, ctx
):
    """A district's year holds more accepted orders than one statement may carry bind
    parameters (32,767 on PostgreSQL): the supplement rate once sent every accepted
    order's id as one, and the admin's figures for a year answered 500. Here October
    gets 33,000 more orders accepted like O1 (no supplement)."""
    orders = await _october(client, login, clock)
    copies = 33_000
    copy = order_copies(orders["o1"], copies)
    await ctx.db.run_write(lambda s: s.execute(text(copy)))
    clock.current = at(2026, 11, 5, 10, 0)
    response = await client.get(
        "/mp/v1/admin/stats?from=2026-10-01&to=2026-10-31", headers=await login("admin")
    )
    assert response.status_code == 200, response.text
    f = response.json()
    assert f["accepted"] == 2 + copies  # O1, O2 and the copies
    assert f["supplementRate"] == round(1 / (2 + copies), 4)  # O2 alone
