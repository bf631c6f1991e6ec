"""Uploads without holes, on both backends: a settled upload's form takes no second file (or
its raw file is cleared once the form expires, where the store cannot refuse it), active or
disguised PDFs are refused, downloads are served as exactly what they are."""

from __future__ import annotations

import pytest

from app.uploads.service import clear_raw_files
from tests.images import jpeg, pdf
from tests.test_storage_verify import PAGES, raw_pdf
from tests.test_uploads import (  # noqa: F401 - fixtures
    Uploader,
    backend,
    clock,
    s3_endpoint,
    up,
    up_env,
)


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

    from app.asgi import create_app

    with TestClient(create_app(settings)) as client:
        for url in ("/healthz", "/mp/v1/catalogue/items", "/mp/v1/nowhere"):
            answer = client.get(url)
            assert answer.headers["x-content-type-options"] == "nosniff", url
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert "strict-transport-security" not in answer.headers


def test_hsts_once_the_service_is_reached_over_https(tmp_path, database_url):
    from litestar.testing import TestClient

    from app.asgi import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path / "var", database_url, DAIBAN_STORAGE_PUBLIC_URL="https://daiban.example.gov.cn"
    )
    with TestClient(create_app(settings)) as client:
        answer = client.get("/healthz")
    assert answer.headers["strict-transport-security"].startswith("max-age=")
