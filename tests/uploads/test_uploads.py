"""Uploads through both backends: local disk (the service takes the POST) and MinIO's protocol
(moto's S3 server on loopback, driven by the real minio client and a real multipart POST).

moto does not enforce POST policies, so these tests prove the server-side checks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from PIL import Image, ImageFile
from sqlalchemy import select

from app.asgi import create_app
from app.context import Context
from app.models import Upload
from app.uploads.service import cleanup_unattached, clear_raw_files
from storage.minio_store import MinioStore
from tests.conftest import Clock, demo_service, free_port, make_settings, storage_env
from tests.factories import guide, upload_photo
from tests.images import bomb_png, jpeg, padded_jpeg, pdf
from tests.uploads.test_storage_verify import PAGES, raw_pdf

_buckets = itertools.count()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a process of its own, as MinIO is: what the test process holds in
    memory is then the service's alone."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def clock() -> Clock:
    # Real time: moto stamps objects with the real clock, and expiry is judged against it.
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(params=["local", "minio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def up_env() -> dict[str, str]:
    """Extra settings for one test: override with `@pytest.mark.parametrize("up_env", [...])`."""
    return {}


@pytest.fixture
async def up(
    backend: str,
    database_url: str,
    tmp_path: Path,
    clock: Clock,
    up_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> AsyncIterator[Uploader]:
    env = {"DAIBAN_STORAGE_PENDING_UPLOADS_PER_PERSON": "3", **up_env}
    env |= storage_env(backend, request, f"daiban-{next(_buckets)}")
    settings = make_settings(tmp_path / "var", database_url, **env)
    async with demo_service(settings, clock) as (ctx, client, outside):
        yield Uploader(client, outside, ctx)


class Uploader:
    """Plays the phone: ask for a form, post the file where it says, complete, download."""

    def __init__(self, client: httpx.AsyncClient, outside: httpx.AsyncClient, ctx: Context):
        self.client, self.outside, self.ctx = client, outside, ctx

    async def headers(self, handle: str) -> dict[str, str]:
        r = await self.client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
        return {"Authorization": f"Bearer {r.json()['accessToken']}"}

    async def ticket(self, headers: dict[str, str], size: int, ctype: str = "image/jpeg") -> Any:
        body = {"purpose": "material", "contentType": ctype, "size": size}
        return await self.client.post("/mp/v1/uploads", json=body, headers=headers)

    def _http(self, url: str) -> httpx.AsyncClient:
        return self.client if url.startswith("http://testserver") else self.outside

    async def post_file(self, ticket: dict[str, Any], data: bytes) -> httpx.Response:
        files = {ticket["fileField"]: ("photo.jpg", data, "application/octet-stream")}
        return await self._http(ticket["url"]).post(
            ticket["url"], data=ticket["fields"], files=files
        )

    async def get(self, url: str) -> httpx.Response:
        return await self._http(url).get(url)

    async def upload(self, handle: str, data: bytes, ctype: str = "image/jpeg") -> tuple[Any, Any]:
        headers = await self.headers(handle)
        ticket = (await self.ticket(headers, len(data), ctype)).json()
        posted = await self.post_file(ticket, data)
        assert posted.status_code in (200, 201, 204), posted.text
        done = await self.client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
        return ticket, done


async def test_a_gps_tagged_photo_comes_out_without_exif(up: Uploader):
    original = jpeg(1600, 1200, gps=True)
    assert b"Exif" in original
    ticket, done = await up.upload("resident1", original)
    assert done.status_code == 200, done.text
    view = done.json()
    assert view["status"] == "ready"
    assert (view["width"], view["height"]) == (1600, 1200)
    assert view["contentType"] == "image/jpeg" and len(view["sha256"]) == 64
    headers = await up.headers("resident1")
    links = (await up.client.get(f"/mp/v1/uploads/{ticket['id']}/url", headers=headers)).json()
    stored = await up.get(links["url"])
    assert stored.status_code == 200
    assert b"Exif" not in stored.content and b"FakePhone" not in stored.content
    assert not Image.open(io.BytesIO(stored.content)).getexif()
    thumb = await up.get(links["thumbnailUrl"])
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    # The raw upload, GPS and all, is gone from storage.
    assert await up.ctx.store.stat(ticket["fields"]["key"]) is None


async def test_an_oversize_file_is_refused_and_not_kept(up: Uploader, backend: str):
    headers = await up.headers("resident1")
    small, big = jpeg(400, 300), jpeg(1600, 1200, noise=True)
    ticket = (await up.ticket(headers, len(small))).json()
    posted = await up.post_file(ticket, big)
    done = await up.client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    if backend == "local":
        assert posted.status_code == 413  # the service enforces the signed limit while streaming
        assert done.status_code == 409 and done.json()["code"] == "upload_not_received"
    else:
        assert posted.status_code in (200, 204)  # moto took it: the check is ours
        assert done.status_code == 422 and done.json()["code"] == "file_too_large"
    assert await up.ctx.store.stat(ticket["fields"]["key"]) is None


async def test_wrong_magic_bytes_behind_an_image_type_are_refused(up: Uploader):
    ticket, done = await up.upload("resident1", pdf(), ctype="image/jpeg")
    assert done.status_code == 422
    assert done.json()["code"] == "file_type_mismatch"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in done.json()["detail"])
    assert await up.ctx.store.stat(ticket["fields"]["key"]) is None
    again = await up.client.post(
        f"/mp/v1/uploads/{ticket['id']}/complete", headers=await up.headers("resident1")
    )
    assert again.status_code == 422


@pytest.mark.parametrize("up_env", [{"DAIBAN_STORAGE_PENDING_UPLOADS_PER_PERSON": "12"}])
async def test_concurrent_completes_hold_no_more_files_than_verification_slots(
    up: Uploader, backend: str
):
    """The whole-file read happens inside the verification limiter (two slots): twelve
    phones completing at once cost two files and two decodes (about three files' worth of
    memory here), where reading first and queueing for a slot after held five to twelve.
    On MinIO the S3 stand-in runs in this process, and its copy of each object being read
    counts too: two reads at the same moment are up to four files' worth before decoding."""
    size, phones = 5_000_000, 12
    bound = 4 if backend == "local" else 5
    data = padded_jpeg(size)
    headers = await up.headers("resident1")
    tickets = [(await up.ticket(headers, len(data))).json() for _ in range(phones)]
    for ticket in tickets:
        assert (await up.post_file(ticket, data)).status_code in (200, 201, 204)
    tracemalloc.start()
    try:
        done = await asyncio.gather(
            *(
                up.client.post(f"/mp/v1/uploads/{t['id']}/complete", headers=headers)
                for t in tickets
            )
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [d.status_code for d in done] == [200] * phones
    assert peak < bound * size, f"{peak / size:.1f} files' worth of memory at once"


async def test_a_crash_while_verifying_still_removes_the_raw_file(
    up: Uploader, monkeypatch: pytest.MonkeyPatch
):
    def out_of_memory(self: ImageFile.ImageFile) -> Any:
        raise MemoryError  # what a decoder does when the machine runs short

    headers = await up.headers("resident1")
    data = jpeg(1600, 1200, gps=True)
    ticket = (await up.ticket(headers, len(data))).json()
    assert (await up.post_file(ticket, data)).status_code in (200, 201, 204)
    monkeypatch.setattr(ImageFile.ImageFile, "load", out_of_memory)
    done = await up.client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert done.status_code == 422 and done.json()["code"] == "file_unprocessable"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in done.json()["detail"])
    # The GPS-tagged original is gone, and the upload says so to a retry.
    assert await up.ctx.store.stat(ticket["fields"]["key"]) is None
    again = await up.client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert again.status_code == 422


async def test_a_pdf_is_kept_as_is(up: Uploader):
    _, done = await up.upload("resident1", pdf(), ctype="application/pdf")
    assert done.status_code == 200
    assert done.json()["contentType"] == "application/pdf"
    assert done.json()["size"] == len(pdf())


async def test_a_decompression_bomb_is_refused(up: Uploader):
    _, done = await up.upload("resident1", bomb_png(), ctype="image/png")
    assert done.status_code == 422
    assert done.json()["code"] == "decompression_bomb"


async def test_an_upload_after_the_policy_expired_is_refused(up: Uploader, backend: str, clock):
    headers = await up.headers("resident1")
    data = jpeg()
    clock.advance(hours=-2)  # the form is issued "two hours ago": long expired now
    ticket = (await up.ticket(headers, len(data))).json()
    clock.advance(hours=2)
    posted = await up.post_file(ticket, data)
    done = await up.client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    if backend == "local":
        assert posted.status_code == 403 and posted.json()["code"] == "upload_expired"
        assert done.status_code == 409
    else:
        assert posted.status_code in (200, 204)  # moto does not check the policy's expiry
        assert done.status_code == 410 and done.json()["code"] == "upload_expired"
    assert await up.ctx.store.stat(ticket["fields"]["key"]) is None


async def test_someone_elses_upload_is_404_everywhere(up: Uploader):
    ticket, _ = await up.upload("resident1", jpeg())
    stranger = await up.headers("resident2")
    agent = await up.headers("agent4a")
    for headers in (stranger, agent):
        base = f"/mp/v1/uploads/{ticket['id']}"
        assert (await up.client.post(f"{base}/complete", headers=headers)).status_code == 404
        assert (await up.client.get(f"{base}/url", headers=headers)).status_code == 404
        assert (await up.client.get(base, headers=headers)).status_code == 404


async def test_completing_twice_gives_the_same_answer(up: Uploader):
    ticket, done = await up.upload("resident1", jpeg())
    again = await up.client.post(
        f"/mp/v1/uploads/{ticket['id']}/complete", headers=await up.headers("resident1")
    )
    assert again.status_code == 200 and again.json() == done.json()


async def test_unsupported_types_and_sizes_are_refused_up_front(up: Uploader):
    headers = await up.headers("resident1")
    bad_type = await up.ticket(headers, 1000, ctype="application/x-msdownload")
    assert bad_type.status_code == 422
    too_big = await up.ticket(headers, 50 * 1024 * 1024)
    assert too_big.status_code == 422
    assert {e["field"] for e in too_big.json()["errors"]} == {"size"}


async def test_pending_uploads_per_person_are_limited(up: Uploader):
    headers = await up.headers("resident1")
    for _ in range(3):
        assert (await up.ticket(headers, 1000)).status_code == 201
    refused = await up.ticket(headers, 1000)
    assert refused.status_code == 429 and refused.json()["code"] == "upload_limit_reached"
    other = await up.ticket(await up.headers("resident2"), 1000)
    assert other.status_code == 201


@pytest.mark.parametrize("up_env", [{"DAIBAN_STORAGE_UPLOAD_BYTES_PER_PERSON_PER_DAY": "3000000"}])
async def test_bytes_per_person_per_day_are_limited(up: Uploader, clock: Clock):
    headers = await up.headers("resident1")
    assert (await up.ticket(headers, 2_000_000)).status_code == 201
    assert (await up.ticket(headers, 1_000_000)).status_code == 201  # exactly the limit
    refused = await up.ticket(headers, 1)
    assert refused.status_code == 429 and refused.json()["code"] == "upload_limit_reached"
    assert "今天" in refused.json()["detail"]
    clock.advance(hours=2)  # both forms have expired: nothing is pending, the bytes still count
    assert (await up.ticket(await up.headers("resident1"), 1)).status_code == 429
    assert (await up.ticket(await up.headers("resident2"), 3_000_000)).status_code == 201
    clock.advance(hours=23)
    assert (await up.ticket(await up.headers("resident1"), 3_000_000)).status_code == 201


async def test_unattached_uploads_are_cleaned_up_after_a_day(up: Uploader, clock):
    ticket, _ = await up.upload("resident1", jpeg())
    links = (
        await up.client.get(
            f"/mp/v1/uploads/{ticket['id']}/url", headers=await up.headers("resident1")
        )
    ).json()
    clock.advance(hours=23)
    assert await cleanup_unattached(up.ctx) == 0
    clock.advance(hours=2)
    assert await cleanup_unattached(up.ctx) == 1
    headers = await up.headers("resident1")
    assert (
        await up.client.get(f"/mp/v1/uploads/{ticket['id']}", headers=headers)
    ).status_code == 404
    assert (await up.get(links["url"])).status_code in (403, 404)


async def test_local_upload_url_refuses_a_tampered_signature(up: Uploader, backend: str):
    if backend != "local":
        pytest.skip("the local backend's own signature; MinIO signs its own policies")
    headers = await up.headers("resident1")
    data = jpeg()
    ticket = (await up.ticket(headers, len(data))).json()
    ticket["fields"]["key"] = "objects/2026/11/chosen-by-client.jpg"
    posted = await up.post_file(ticket, data)
    assert posted.status_code == 403 and posted.json()["code"] == "upload_forbidden"


async def test_local_download_links_expire(up: Uploader, backend: str, clock):
    if backend != "local":
        pytest.skip("MinIO judges its own link expiry by the real clock")
    ticket, _ = await up.upload("resident1", jpeg())
    headers = await up.headers("resident1")
    links = (await up.client.get(f"/mp/v1/uploads/{ticket['id']}/url", headers=headers)).json()
    assert (await up.get(links["url"])).status_code == 200
    clock.advance(minutes=6)
    expired = await up.get(links["url"])
    assert expired.status_code == 403 and expired.json()["code"] == "link_expired"
    forged = links["url"].replace("signature=", "signature=0")
    assert (await up.get(forged)).status_code == 404


# --- the local backend's own multipart POST ------------------------------------------------------


def multipart_body(parts: list[tuple[str, bytes, bool]]) -> tuple[bytes, str]:
    """A form in exactly the order given (httpx always puts files last): (name, value, is_file)."""
    boundary = "daiban-test-boundary"
    body = b""
    for name, value, is_file in parts:
        filename = '; filename="photo.jpg"' if is_file else ""
        disposition = f'Content-Disposition: form-data; name="{name}"{filename}'
        body += f"--{boundary}\r\n{disposition}\r\n".encode()
        if is_file:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def form_parts(ticket: dict[str, Any]) -> list[tuple[str, bytes, bool]]:
    return [(name, value.encode(), False) for name, value in ticket["fields"].items()]


def files_under(root: Path) -> list[Path]:
    """Every file the local store holds, temporary ones included."""
    return sorted(p for p in root.rglob("*") if p.is_file())


async def post_raw(up: Uploader, ticket: dict[str, Any], body: Any, ctype: str) -> httpx.Response:
    return await up.client.post(ticket["url"], content=body, headers={"Content-Type": ctype})


@pytest.fixture
def local_root(up: Uploader, backend: str) -> Path:
    if backend != "local":
        pytest.skip("the service's own multipart endpoint is the local backend's")
    root: Path = up.ctx.store.root  # type: ignore[attr-defined]
    return root


async def test_local_form_fields_after_the_file_stay_out_of_it(up: Uploader, local_root: Path):
    headers = await up.headers("resident1")
    data = jpeg()
    ticket = (await up.ticket(headers, len(data))).json()
    body, ctype = multipart_body(
        [*form_parts(ticket), ("file", data, True), ("trailing", b"TRAILING", False)]
    )
    posted = await post_raw(up, ticket, body, ctype)
    assert posted.status_code == 204, posted.text
    assert await up.ctx.store.read(ticket["fields"]["key"], 10 * len(data)) == data
    done = await up.client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text


async def test_local_upload_with_a_second_file_is_refused_and_leaves_nothing(
    up: Uploader, local_root: Path
):
    headers = await up.headers("resident1")
    data = jpeg()
    ticket = (await up.ticket(headers, len(data))).json()
    body, ctype = multipart_body([*form_parts(ticket), ("file", data, True), ("file", data, True)])
    posted = await post_raw(up, ticket, body, ctype)
    assert posted.status_code == 400 and posted.json()["code"] == "too_many_files"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in posted.json()["title"])
    assert files_under(local_root) == []


async def test_local_upload_failures_leave_no_temporary_file(up: Uploader, local_root: Path):
    headers = await up.headers("resident1")
    data = jpeg()
    ticket = (await up.ticket(headers, len(data))).json()
    whole, ctype = multipart_body([*form_parts(ticket), ("file", data, True)])
    # The connection drops in the middle of the file: the closing boundary never comes.
    truncated = await post_raw(up, ticket, whole[: len(whole) - 2000], ctype)
    assert truncated.status_code == 400 and truncated.json()["code"] == "bad_upload"
    assert files_under(local_root) == []
    too_big, _ = multipart_body([*form_parts(ticket), ("file", data + data, True)])
    refused = await post_raw(up, ticket, too_big, ctype)
    assert refused.status_code == 413 and refused.json()["code"] == "file_too_large"
    assert files_under(local_root) == []

    async def dropped() -> AsyncIterator[bytes]:
        yield whole[: len(whole) // 2]
        raise httpx.ReadError("the phone lost its signal")

    await post_raw(up, ticket, dropped(), ctype)  # nobody is left to read the answer
    assert files_under(local_root) == []
    # And after all that, the same signed form still takes the file.
    assert (await post_raw(up, ticket, whole, ctype)).status_code == 204
    assert [p.relative_to(local_root).as_posix() for p in files_under(local_root)] == [
        ticket["fields"]["key"]
    ]


# Audit events (PEP 578) for the disk calls a store makes, handed to whoever watches.
DISK_EVENTS = frozenset({"open", "os.mkdir", "os.rename", "os.utime", "os.remove"})
_disk_watcher: Callable[[str, str], None] | None = None
_disk_audit_added = False


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    watcher = _disk_watcher
    if watcher is not None and event in DISK_EVENTS and isinstance(args[0], str | os.PathLike):
        watcher(event, os.fspath(args[0]))


@contextmanager
def watching_disk(watcher: Callable[[str, str], None]) -> Iterator[None]:
    """Call watcher(event, path), in the calling thread, for each disk call in the block."""
    global _disk_watcher, _disk_audit_added
    if not _disk_audit_added:  # an audit hook cannot be removed: add it once, watch when asked
        sys.addaudithook(_on_audit)
        _disk_audit_added = True
    _disk_watcher = watcher
    try:
        yield
    finally:
        _disk_watcher = None


@contextmanager
def disk_calls(root: Path) -> Iterator[list[tuple[str, int]]]:
    """The (event, thread id) of every disk call under root made inside the block."""
    calls: list[tuple[str, int]] = []

    def record(event: str, path: str) -> None:
        if path.startswith(str(root)):
            calls.append((event, threading.get_ident()))

    with watching_disk(record):
        yield calls


async def test_local_upload_does_no_disk_work_on_the_event_loop(up: Uploader, local_root: Path):
    headers = await up.headers("resident1")
    data = jpeg(1600, 1200, noise=True)  # a few write batches
    ticket = (await up.ticket(headers, len(data))).json()
    with disk_calls(local_root) as calls:
        posted = await up.post_file(ticket, data)
    assert posted.status_code == 204, posted.text
    assert {"open", "os.mkdir", "os.utime", "os.rename"} <= {event for event, _ in calls}
    loop_thread = threading.get_ident()
    assert [event for event, thread in calls if thread == loop_thread] == []


@pytest.mark.parametrize("up_env", [{"DAIBAN_STORAGE_PENDING_UPLOADS_PER_PERSON": "10"}])
async def test_cleanup_never_removes_the_files_of_an_upload_an_order_just_took(
    up: Uploader, local_root: Path, clock: Clock
):
    """The order attaches an old upload at the very moment the clean-up deletes its first file:
    either the order gets the upload with its files, or the clean-up gets both, never a row
    pointing at deleted files."""
    ticket, _ = await up.upload("resident1", jpeg())
    old = await up.ctx.db.run_read(lambda s: s.get(Upload, ticket["id"]))
    assert old is not None and old.key and old.thumbnail_key
    old_files = {local_root / old.key, local_root / old.thumbnail_key}
    clock.advance(hours=25)
    resident = await up.headers("resident1")
    materials = {
        m["code"]: [await upload_photo(up.client, resident)]
        for m in (await guide(up.client, "RS-0001"))["materials"]
        if m["required"]
    }
    first = next(iter(materials))
    materials[first] = [ticket["id"]]
    body = {"itemCode": "RS-0001", "materials": materials}
    order_headers = {**resident, "Idempotency-Key": "race-with-cleanup"}
    answers: list[httpx.Response] = []

    def order_takes_it(event: str, path: str) -> None:
        if event == "os.remove" and Path(path) in old_files and not answers:
            post = partial(up.client.post, "/mp/v1/orders", json=body, headers=order_headers)
            answers.append(anyio.from_thread.run(post))  # clean-up's thread waits meanwhile

    with watching_disk(order_takes_it):
        await cleanup_unattached(up.ctx)
    assert len(answers) == 1, "the order was not placed during the clean-up"
    files = set(files_under(local_root))
    attached = await up.ctx.db.run_read(
        lambda s: s.scalars(select(Upload).where(Upload.order_id.is_not(None))).all()
    )
    for upload in attached:
        for key in (upload.key, upload.thumbnail_key):
            assert key and local_root / key in files, f"upload {upload.id} lost {key}"
    if answers[0].status_code == 201:
        assert ticket["id"] in {u.id for u in attached} and old_files <= files
    else:
        assert answers[0].status_code == 422, answers[0].text
        assert not old_files & files


# --- MinIO: what the signed policy, the links and the bucket's lifecycle say ---------------------

ACCESS_KEY, SECRET_KEY, REGION = "test-access", "test-secret", "us-east-1"


@pytest.fixture
def minio_up(up: Uploader, backend: str) -> Uploader:
    if backend != "minio":
        pytest.skip("MinIO's own policy and links")
    return up


def s3_client(endpoint: str) -> Minio:
    return Minio(endpoint, ACCESS_KEY, SECRET_KEY, secure=False, region=REGION)


def minio_store(
    endpoint: str, public_endpoint: str = "", public_secure: bool = False
) -> MinioStore:
    return MinioStore(
        endpoint=endpoint,
        public_endpoint=public_endpoint or endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        bucket=f"daiban-{next(_buckets)}",
        secure=False,
        public_secure=public_secure,
        region=REGION,
    )


def post_policy_signature(policy: str, day: str) -> str:
    """AWS Signature V4 of a POST policy, computed here from the secret (not by minio)."""
    key = f"AWS4{SECRET_KEY}".encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()


async def test_minio_post_policy_pins_key_type_size_and_expiry(minio_up: Uploader, clock: Clock):
    settings = minio_up.ctx.settings.storage
    size = 123_456
    ticket = (await minio_up.ticket(await minio_up.headers("resident1"), size, "image/png")).json()
    fields = ticket["fields"]
    key = fields["key"]
    assert key.startswith("incoming/") and key.endswith(".png")
    assert ticket["url"] == f"http://{settings.minio_endpoint}/{settings.minio_bucket}"
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    for condition in (
        ["eq", "$bucket", settings.minio_bucket],
        ["eq", "$key", key],
        ["eq", "$Content-Type", "image/png"],
        ["content-length-range", 1, size],
    ):
        assert condition in conditions
    assert [c for c in conditions if c[0] != "eq"] == [["content-length-range", 1, size]]
    assert fields["Content-Type"] == "image/png"
    expiration = datetime.fromisoformat(policy["expiration"])
    ttl = timedelta(seconds=settings.upload_url_ttl_seconds)
    assert abs(expiration - (clock() + ttl)) < timedelta(seconds=1)
    assert datetime.fromisoformat(ticket["expiresAt"]) == clock() + ttl
    day = fields["x-amz-date"][:8]
    assert fields["x-amz-credential"] == f"{ACCESS_KEY}/{day}/{REGION}/s3/aws4_request"
    assert fields["x-amz-signature"] == post_policy_signature(fields["policy"], day)


async def test_minio_download_links_last_the_configured_minutes(minio_up: Uploader, clock: Clock):
    settings = minio_up.ctx.settings.storage
    ticket, _ = await minio_up.upload("resident1", jpeg())
    headers = await minio_up.headers("resident1")
    links = (
        await minio_up.client.get(f"/mp/v1/uploads/{ticket['id']}/url", headers=headers)
    ).json()
    ttl = settings.download_url_ttl_seconds
    assert datetime.fromisoformat(links["expiresAt"]) == clock() + timedelta(seconds=ttl)
    for url in (links["url"], links["thumbnailUrl"]):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        assert parts.netloc == settings.minio_endpoint
        assert query["X-Amz-Expires"] == [str(ttl)]
        assert query["X-Amz-Date"] == [clock().strftime("%Y%m%dT%H%M%SZ")]


async def test_minio_signs_for_the_public_endpoint_and_talks_on_the_internal_one(s3_endpoint: str):
    store = minio_store(s3_endpoint, public_endpoint="files.example.cn", public_secure=True)
    await store.ensure_ready()  # reached moto through the internal endpoint
    assert await anyio.to_thread.run_sync(s3_client(s3_endpoint).bucket_exists, store.bucket)
    now = datetime.now(UTC)
    form = store.presign_upload("incoming/a.jpg", "image/jpeg", 1000, timedelta(minutes=10), now)
    assert form.url == f"https://files.example.cn/{store.bucket}"
    url = store.presign_download("objects/a.jpg", timedelta(minutes=5), now)
    assert url.startswith(f"https://files.example.cn/{store.bucket}/objects/a.jpg?")


async def test_minio_lifecycle_rule_joins_the_operators_rules(s3_endpoint: str):
    client = s3_client(s3_endpoint)
    store = minio_store(s3_endpoint)

    async def rules() -> list[tuple[str | None, str | None, int | None]]:
        config = await anyio.to_thread.run_sync(client.get_bucket_lifecycle, store.bucket)
        assert config is not None
        return sorted(
            (r.rule_id, r.rule_filter.prefix if r.rule_filter else None, r.expiration.days)
            for r in config.rules
            if r.expiration is not None
        )

    await store.ensure_ready()  # a new bucket, with only our rule
    assert await rules() == [("expire-abandoned-uploads", "incoming/", 1)]
    operator = Rule(
        ENABLED,
        rule_filter=Filter(prefix="exports/"),
        rule_id="exports",
        expiration=Expiration(days=30),
    )
    outdated = Rule(
        ENABLED,
        rule_filter=Filter(prefix="incoming/"),
        rule_id="expire-abandoned-uploads",
        expiration=Expiration(days=7),
    )
    config = LifecycleConfig([operator, outdated])
    await anyio.to_thread.run_sync(client.set_bucket_lifecycle, store.bucket, config)
    await store.ensure_ready()
    await store.ensure_ready()
    assert await rules() == [
        ("expire-abandoned-uploads", "incoming/", 1),
        ("exports", "exports/", 30),
    ]


# --- no holes: a settled form takes no second file, PDFs that act are refused, downloads are
# served as what they are --------------------------------------------------------------------


async def _raw_exists(up: Uploader, ticket) -> bool:
    return await up.ctx.store.stat(ticket["fields"]["key"]) is not None


async def test_a_second_post_to_a_completed_form_leaves_no_raw_file(
    up: Uploader, backend: str, clock
):
    ticket, done = await up.upload("resident1", jpeg(1600, 1200, gps=True))
    assert done.status_code == 200
    again = await up.post_file(ticket, jpeg(1600, 1200, gps=True))
    if backend == "local":
        assert again.status_code == 409 and again.json()["code"] == "upload_settled"
        assert not await _raw_exists(up, ticket)
    else:
        # MinIO (here moto) takes any POST its signature allows while the form is valid.
        assert again.status_code in (200, 204)
        assert await _raw_exists(up, ticket)
        assert await clear_raw_files(up.ctx) == 0  # the form could still be used
    clock.advance(seconds=up.ctx.settings.storage.upload_url_ttl_seconds + 1)
    await clear_raw_files(up.ctx)
    assert not await _raw_exists(up, ticket)
    assert await clear_raw_files(up.ctx) == 0  # each upload once


async def test_a_refused_uploads_form_takes_no_second_file(up: Uploader, backend: str, clock):
    ticket, done = await up.upload("resident1", b"%PDF-1.4\n<html></html>\n%%EOF\n", "image/jpeg")
    assert done.status_code == 422
    again = await up.post_file(ticket, jpeg(800, 600))
    if backend == "local":
        assert again.status_code == 409
    clock.advance(seconds=up.ctx.settings.storage.upload_url_ttl_seconds + 1)
    await clear_raw_files(up.ctx)
    assert not await _raw_exists(up, ticket)


@pytest.mark.parametrize(
    "data, code",
    [
        (b"%PDF-1.7\n<html><script>alert(1)</script></html>\n%%EOF\n", "pdf_invalid"),
        (
            raw_pdf(
                b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
                *PAGES,
                b"<< /S /JavaScript /JS (app.alert(1)) >>",
            ),
            "pdf_active_content",
        ),
    ],
    ids=["html", "script"],
)
async def test_a_pdf_that_is_really_html_or_carries_a_script_is_refused(
    up: Uploader, data: bytes, code: str
):
    ticket, done = await up.upload("resident1", data, ctype="application/pdf")
    assert done.status_code == 422 and done.json()["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in done.json()["detail"])
    assert not await _raw_exists(up, ticket)


async def test_downloads_say_what_they_are_and_nothing_sniffs_or_runs_them(
    up: Uploader, backend: str
):
    headers = await up.headers("resident1")
    for data, ctype, disposition in (
        (jpeg(800, 600), "image/jpeg", "inline"),
        (pdf(), "application/pdf", "attachment"),
    ):
        ticket, done = await up.upload("resident1", data, ctype=ctype)
        assert done.status_code == 200, done.text
        links = await up.client.get(f"/mp/v1/uploads/{ticket['id']}/url", headers=headers)
        got = await up.get(links.json()["url"])
        assert got.status_code == 200
        assert got.headers["content-type"].startswith(ctype)
        assert got.headers["content-disposition"].startswith(f"{disposition}; filename=")
        if backend == "local":
            assert got.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in got.headers["content-security-policy"]
            assert "default-src 'none'" in got.headers["content-security-policy"]


async def test_a_7000_pixel_square_png_is_refused_quickly(up: Uploader):
    import io
    import time

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (7000, 7000), 200).save(out, "PNG")
    started = time.perf_counter()
    ticket, done = await up.upload("resident1", out.getvalue(), ctype="image/png")
    assert done.status_code == 422 and done.json()["code"] == "decompression_bomb"
    assert time.perf_counter() - started < 2.0
    assert not await _raw_exists(up, ticket)


def test_every_answer_carries_the_security_headers(settings):
    from litestar.testing import TestClient

    with TestClient(create_app(settings)) as client:
        for url in ("/healthz", "/mp/v1/catalogue/items", "/mp/v1/nowhere"):
            answer = client.get(url)
            assert answer.headers["x-content-type-options"] == "nosniff", url
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert "strict-transport-security" not in answer.headers


def test_hsts_once_the_service_is_reached_over_https(tmp_path, database_url):
    from litestar.testing import TestClient

    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path / "var", database_url, DAIBAN_STORAGE_PUBLIC_URL="https://daiban.example.gov.cn"
    )
    with TestClient(create_app(settings)) as client:
        answer = client.get("/healthz")
    assert answer.headers["strict-transport-security"].startswith("max-age=")
