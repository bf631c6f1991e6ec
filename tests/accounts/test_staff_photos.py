"""The photo on a staff member's public card (挂牌上岗): set by an admin of the district from
their own finished upload, shown to anyone through a short-lived link, on the local-disk
backend and on an S3 server (moto, driven by the real minio client)."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import Context
from app.models import Account, Upload
from app.uploads.service import cleanup_unattached
from tests.conftest import Clock, demo_service, make_settings, storage_env
from tests.factories import other_district_admin
from tests.images import jpeg, pdf
from tests.uploads.test_uploads import s3_endpoint  # noqa: F401 - the moto S3 server fixture


@pytest.fixture
def clock() -> Clock:
    # Real time: moto judges its links against the real clock.
    return Clock(datetime.now(UTC).replace(microsecond=0))


class Phone:
    """Plays the mini-program: log in, upload through the presigned form, fetch links."""

    def __init__(self, client: httpx.AsyncClient, outside: httpx.AsyncClient, ctx: Context):
        self.client, self.outside, self.ctx = client, outside, ctx

    async def login(self, handle: str) -> dict[str, str]:
        r = await self.client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['accessToken']}"}

    async def ticket(
        self, headers: dict[str, str], data: bytes, purpose: str, ctype: str
    ) -> httpx.Response:
        body = {"purpose": purpose, "contentType": ctype, "size": len(data)}
        return await self.client.post("/mp/v1/uploads", json=body, headers=headers)

    async def upload(
        self,
        headers: dict[str, str],
        data: bytes | None = None,
        *,
        purpose: str = "staff_photo",
        ctype: str = "image/jpeg",
        complete: bool = True,
    ) -> int:
        data = jpeg(800, 600) if data is None else data
        ticket = (await self.ticket(headers, data, purpose, ctype)).json()
        files = {ticket["fileField"]: ("photo.jpg", data, ctype)}
        posted = await self._http(ticket["url"]).post(
            ticket["url"], data=ticket["fields"], files=files
        )
        assert posted.status_code in (200, 201, 204), posted.text
        if complete:
            done = await self.client.post(
                f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers
            )
            assert done.status_code == 200, done.text
        return int(ticket["id"])

    def _http(self, url: str) -> httpx.AsyncClient:
        return self.client if url.startswith("http://testserver") else self.outside

    async def get(self, url: str) -> httpx.Response:
        """A download as anyone would make it: no Authorization header."""
        return await self._http(url).get(url)

    async def cards(self, village_id: int) -> list[dict[str, Any]]:
        response = await self.client.get(f"/mp/v1/villages/{village_id}/agents")
        assert response.status_code == 200, response.text
        return list(response.json())

    async def staff(self, admin: dict[str, str], name: str) -> dict[str, Any]:
        staff = (await self.client.get("/mp/v1/admin/staff", headers=admin)).json()
        return dict(next(s for s in staff if s["name"] == name))


@pytest.fixture(params=["local", "minio"])
async def phone(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, clock: Clock
) -> AsyncIterator[Phone]:
    env = storage_env(request.param, request, f"daiban-photos-{uuid.uuid4().hex[:12]}")
    settings = make_settings(tmp_path / "var", database_url, **env)
    async with demo_service(settings, clock) as (ctx, client, outside):
        yield Phone(client, outside, ctx)


@pytest.fixture
def local_phone(phone: Phone, request: pytest.FixtureRequest) -> Phone:
    if request.node.callspec.params["phone"] != "local":
        pytest.skip("moves the injected clock, which the S3 server does not follow")
    return phone


async def _agent(phone: Phone, admin: dict[str, str], name: str = "刘桂兰") -> dict[str, Any]:
    return await phone.staff(admin, name)


async def _photo_keys(ctx: Context, upload_id: int) -> tuple[str | None, str | None]:
    def keys(session: Session) -> tuple[str | None, str | None]:
        upload = session.get(Upload, upload_id)
        assert upload is not None
        return upload.key, upload.thumbnail_key

    return await ctx.db.run_read(keys)


async def _photo_key(ctx: Context, account_id: int) -> str | None:
    return await ctx.db.run_read(
        lambda s: s.scalar(select(Account.photo_key).where(Account.id == account_id))
    )


async def test_an_admin_sets_a_photo_and_anyone_sees_it_on_the_public_card(phone: Phone):
    admin = await phone.login("admin")
    agent = await _agent(phone, admin)
    assert agent["hasPhoto"] is False
    upload_id = await phone.upload(admin, jpeg(800, 600))
    key, thumbnail_key = await _photo_keys(phone.ctx, upload_id)
    response = await phone.client.put(
        f"/mp/v1/admin/staff/{agent['id']}/photo", json={"uploadId": upload_id}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["hasPhoto"] is True
    cards = await phone.cards(agent["region"]["id"])
    card = next(c for c in cards if c["id"] == agent["id"])
    assert card["photoUrl"]
    assert all(c["photoUrl"] is None for c in cards if c["id"] != agent["id"])
    shown = await phone.get(card["photoUrl"])
    assert shown.status_code == 200
    assert Image.open(io.BytesIO(shown.content)).size == (800, 600)
    # The staff account took the upload over: the card's file stays, the thumbnail goes.
    assert await _photo_key(phone.ctx, agent["id"]) == key
    assert key is not None and await phone.ctx.store.stat(key) is not None
    assert thumbnail_key is not None and await phone.ctx.store.stat(thumbnail_key) is None
    gone = await phone.client.get(f"/mp/v1/uploads/{upload_id}", headers=admin)
    assert gone.status_code == 404
    # The agent's own station page shows the same photo.
    station = await phone.client.get("/mp/v1/agent/station", headers=await phone.login("agent1a"))
    assert next(c for c in station.json() if c["id"] == agent["id"])["photoUrl"]


async def test_the_card_photo_link_is_short_lived(local_phone: Phone, clock: Clock):
    phone = local_phone
    admin = await phone.login("admin")
    agent = await _agent(phone, admin)
    upload_id = await phone.upload(admin)
    await phone.client.put(
        f"/mp/v1/admin/staff/{agent['id']}/photo", json={"uploadId": upload_id}, headers=admin
    )
    card = next(c for c in await phone.cards(agent["region"]["id"]) if c["id"] == agent["id"])
    ttl = phone.ctx.settings.storage.download_url_ttl_seconds
    expires = int(parse_qs(urlparse(card["photoUrl"]).query)["expires"][0])
    assert expires == int(clock().timestamp()) + ttl
    clock.advance(seconds=ttl + 1)
    expired = await phone.get(card["photoUrl"])
    assert expired.status_code == 403 and expired.json()["code"] == "link_expired"
    fresh = next(c for c in await phone.cards(agent["region"]["id"]) if c["id"] == agent["id"])
    assert (await phone.get(fresh["photoUrl"])).status_code == 200


async def test_the_clean_up_of_unattached_uploads_leaves_card_photos_alone(
    local_phone: Phone, clock: Clock
):
    phone = local_phone
    admin = await phone.login("admin")
    agent = await _agent(phone, admin)
    upload_id = await phone.upload(admin)
    await phone.client.put(
        f"/mp/v1/admin/staff/{agent['id']}/photo", json={"uploadId": upload_id}, headers=admin
    )
    clock.advance(hours=phone.ctx.settings.storage.unattached_upload_ttl_hours + 1)
    await cleanup_unattached(phone.ctx)
    card = next(c for c in await phone.cards(agent["region"]["id"]) if c["id"] == agent["id"])
    assert (await phone.get(card["photoUrl"])).status_code == 200


async def test_a_new_photo_replaces_the_old_file_and_a_photo_can_be_taken_down(phone: Phone):
    admin = await phone.login("admin")
    agent = await _agent(phone, admin)
    url = f"/mp/v1/admin/staff/{agent['id']}/photo"
    first = await phone.upload(admin, jpeg(640, 480))
    await phone.client.put(url, json={"uploadId": first}, headers=admin)
    old_key = await _photo_key(phone.ctx, agent["id"])
    second = await phone.upload(admin, jpeg(480, 640))
    assert (await phone.client.put(url, json={"uploadId": second}, headers=admin)).is_success
    assert old_key is not None and await phone.ctx.store.stat(old_key) is None
    card = next(c for c in await phone.cards(agent["region"]["id"]) if c["id"] == agent["id"])
    shown = await phone.get(card["photoUrl"])
    assert Image.open(io.BytesIO(shown.content)).size == (480, 640)
    new_key = await _photo_key(phone.ctx, agent["id"])
    removed = await phone.client.delete(url, headers=admin)
    assert removed.status_code == 200 and removed.json()["hasPhoto"] is False
    card = next(c for c in await phone.cards(agent["region"]["id"]) if c["id"] == agent["id"])
    assert card["photoUrl"] is None
    assert new_key is not None and await phone.ctx.store.stat(new_key) is None


async def test_only_an_admins_own_finished_staff_photo_will_do(phone: Phone):
    admin = await phone.login("admin")
    agent = await _agent(phone, admin)
    url = f"/mp/v1/admin/staff/{agent['id']}/photo"
    resident = await phone.login("resident1")
    refused = await phone.ticket(resident, jpeg(), "staff_photo", "image/jpeg")
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["purpose"]
    not_an_image = await phone.ticket(admin, pdf(), "staff_photo", "application/pdf")
    assert not_an_image.status_code == 422
    material = await phone.upload(admin, purpose="material")
    unfinished = await phone.upload(admin, complete=False)
    someone_elses = await phone.upload(resident, purpose="material")
    for upload_id in (material, unfinished, someone_elses, 10**9):
        response = await phone.client.put(url, json={"uploadId": upload_id}, headers=admin)
        assert response.status_code == 404, (upload_id, response.text)
    # The upload still exists as it was: only a successful take-over removes it.
    assert (await phone.client.get(f"/mp/v1/uploads/{material}", headers=admin)).is_success
    staff_only = await phone.client.put(
        url, json={"uploadId": material}, headers=await phone.login("dispatcher1a")
    )
    assert staff_only.status_code == 403
    unknown_field = await phone.client.put(
        url, json={"uploadId": material, "key": "objects/x.jpg"}, headers=admin
    )
    assert unknown_field.status_code == 422
    assert (await phone.staff(admin, agent["name"]))["hasPhoto"] is False


async def test_an_admin_of_another_district_gets_404(phone: Phone):
    admin = await phone.login("admin")
    agent = await _agent(phone, admin)

    outsider = await phone.login(await other_district_admin(phone.ctx))
    theirs = await phone.upload(outsider)
    response = await phone.client.put(
        f"/mp/v1/admin/staff/{agent['id']}/photo", json={"uploadId": theirs}, headers=outsider
    )
    assert response.status_code == 404
    assert (
        await phone.client.delete(f"/mp/v1/admin/staff/{agent['id']}/photo", headers=outsider)
    ).status_code == 404
    # Nor can our admin use the other admin's upload.
    ours = await phone.client.put(
        f"/mp/v1/admin/staff/{agent['id']}/photo", json={"uploadId": theirs}, headers=admin
    )
    assert ours.status_code == 404
    assert (await phone.staff(admin, agent["name"]))["hasPhoto"] is False
