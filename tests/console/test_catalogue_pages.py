"""The catalogue on the console: an admin edits an item (a new version), retires and restores
it, exports and imports the list; dispatchers and admins switch items on and off."""

from __future__ import annotations

import html
import re

from sqlalchemy import func, select

from app.models import AuditEntry, CatalogueItem, ItemVersion
from tests.console.signing_in import form, sign_in


async def _audited(ctx, action: str) -> int:
    return await ctx.db.run_read(
        lambda s: s.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == action))
    )


async def test_an_item_is_edited_as_yaml_into_a_new_version(client, demo, login, ctx):
    csrf = await sign_in(client, await login("admin"))
    found = (await client.get("/console/admin/catalogue", params={"q": "养老"})).text
    assert "RS-0001" in found
    page = (await client.get("/console/admin/catalogue/items/RS-0001")).text
    yaml = re.search(r'<textarea id="document"[^>]*>(.*?)</textarea>', page, re.S)
    assert yaml and "promised_days: 5" in yaml[1]
    text = html.unescape(yaml[1])

    broken = await client.post(
        "/console/admin/catalogue/items/RS-0001",
        data=form(csrf, document=text.replace("promised_days: 5", "promised_days: -1")),
    )
    assert broken.status_code == 422 and "promised_days" in broken.text
    assert "promised_days: -1" in broken.text  # what was typed, kept to correct
    renamed = await client.post(
        "/console/admin/catalogue/items/RS-0001",
        data=form(csrf, document=text.replace("code: RS-0001", "code: RS-9999")),
    )
    assert renamed.status_code == 422 and "不能修改事项编码" in renamed.text

    saved = await client.post(
        "/console/admin/catalogue/items/RS-0001",
        data=form(csrf, document=text.replace("promised_days: 5", "promised_days: 3")),
    )
    assert saved.status_code == 303, saved.text
    versions = await ctx.db.run_read(
        lambda s: s.scalar(
            select(func.count(ItemVersion.id))
            .join(CatalogueItem, CatalogueItem.id == ItemVersion.item_id)
            .where(CatalogueItem.code == "RS-0001")
        )
    )
    assert versions == 2 and await _audited(ctx, "catalogue.edit") == 1
    assert "第 2 版" in (await client.get(saved.headers["location"])).text


async def test_an_item_is_retired_and_restored(client, demo, login, ctx):
    csrf = await sign_in(client, await login("admin"))
    retired = await client.post("/console/admin/catalogue/items/RS-0002/retire", data=form(csrf))
    assert retired.status_code == 303
    page = (await client.get(retired.headers["location"])).text
    assert "已停用。" in page and "已停用的事项（1）" in page
    guide = await client.get("/mp/v1/catalogue/items/RS-0002")
    assert guide.status_code == 404
    restored = await client.post("/console/admin/catalogue/items/RS-0002/restore", data=form(csrf))
    assert restored.status_code == 303
    assert (await client.get("/mp/v1/catalogue/items/RS-0002")).status_code == 200
    again = await client.post("/console/admin/catalogue/items/RS-0002/restore", data=form(csrf))
    assert again.status_code == 409 and "不需要恢复" in again.text
    assert await _audited(ctx, "catalogue.retire") == 1


async def test_the_list_is_exported_and_imported_back_unchanged(client, demo, login, ctx):
    csrf = await sign_in(client, await login("admin"))
    exported = await client.get("/console/admin/catalogue/export", params={"format": "yaml"})
    assert exported.status_code == 200 and b"RS-0001" in exported.content
    xlsx = await client.get("/console/admin/catalogue/export")
    assert xlsx.content[:2] == b"PK"
    imported = await client.post(
        "/console/admin/catalogue/import",
        data={"_csrf_token": csrf},
        files={"file": ("catalogue.yaml", exported.content, "application/yaml")},
    )
    assert imported.status_code == 200
    assert re.search(r"新增 0 项，修改 0 项，未变 \d+ 项", imported.text)
    junk = await client.post(
        "/console/admin/catalogue/import",
        data={"_csrf_token": csrf},
        files={"file": ("catalogue.yaml", b"items: [{code: X}]", "application/yaml")},
    )
    assert junk.status_code == 422 and 'role="alert"' in junk.text
    without_token = await client.post(
        "/console/admin/catalogue/import",
        files={"file": ("catalogue.yaml", exported.content, "application/yaml")},
    )
    assert without_token.status_code == 403


async def test_a_dispatcher_switches_items_for_a_village_station(client, demo, login, ctx):
    csrf = await sign_in(client, await login("dispatcher1a"))
    page = (await client.get("/console/offer")).text
    regions = dict(re.findall(r'<option value="(\d+)"[^>]*>\W*(\w+?)（', page))
    assert set(regions.values()) == {"店子镇", "店子村", "东庄村", "岩马村"}
    village = next(i for i, name in regions.items() if name == "店子村")
    town = next(i for i, name in regions.items() if name == "店子镇")
    shown = (await client.get("/console/offer", params={"region": village})).text
    codes = re.findall(r'name="shown" value="([^"]+)"', shown)
    ticked = re.findall(r'name="item" value="([^"]+)" checked', shown)
    assert "RS-0001" in ticked
    off = await client.post(
        "/console/offer",
        data={
            "_csrf_token": csrf,
            "region_id": village,
            "shown": codes,
            "item": [c for c in ticked if c != "RS-0001"],
        },
    )
    assert off.status_code == 303
    items = await client.get("/mp/v1/catalogue/items/RS-0001", params={"villageId": village})
    assert items.json()["canSubmitOnline"] is False

    # The town switches it off; the village cannot switch it on alone.
    town_page = (await client.get("/console/offer", params={"region": town})).text
    town_ticked = re.findall(r'name="item" value="([^"]+)" checked', town_page)
    town_codes = re.findall(r'name="shown" value="([^"]+)"', town_page)
    await client.post(
        "/console/offer",
        data={
            "_csrf_token": csrf,
            "region_id": town,
            "shown": town_codes,
            "item": [c for c in town_ticked if c != "RS-0001"],
        },
    )
    refused = await client.post(
        "/console/offer",
        data={"_csrf_token": csrf, "region_id": village, "shown": codes, "item": ticked},
    )
    assert refused.status_code == 409 and "请先为乡镇开通" in refused.text
    assert await _audited(ctx, "catalogue.enablement") == 2

    other = await client.get("/console/offer", params={"region": 999999})
    assert other.status_code == 404
