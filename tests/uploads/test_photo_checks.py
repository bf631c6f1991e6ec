"""Photo checks on completion (issue 21): blur, light, framing and direction become warnings
in Chinese on the upload, never a refusal. The photos are drawn here: a sheet of paper with
lines of Chinese-style glyphs on a grid, on a brown table, with a camera's noise, as JPEG."""

from __future__ import annotations

import io
import random
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter

from app.uploads import quality
from tests.factories import guide
from tests.images import pdf

PAPER, TABLE, INK = (236, 233, 226), (120, 96, 72), (25, 25, 30)
SIZE = (1600, 1200)


def document(size: tuple[int, int] = SIZE, seed: int = 0) -> Image.Image:
    """A page filling most of the frame: a title and lines of square glyphs on a grid (as
    Chinese is set: characters line up in columns too, lines are further apart)."""
    width, height = size
    rnd = random.Random(seed)
    image = Image.new("RGB", size, TABLE)
    draw = ImageDraw.Draw(image)
    mx, my = int(width * 0.04), int(height * 0.04)
    draw.rectangle((mx, my, width - mx, height - my), fill=PAPER)
    cell = max(12, height // 40)
    for i in range(6):
        _glyph(draw, rnd, width // 2 - cell * 5 + i * cell * 2, my + cell // 2, cell * 7 // 4)
    y = my + cell * 3
    while y + cell < height - my - cell:
        x, end = mx + cell * 2, width - mx - cell * 2
        if rnd.random() < 0.2:  # a paragraph's last line
            end -= rnd.randrange(0, 15) * cell
        while x + cell < end:
            _glyph(draw, rnd, x, y, cell - cell // 6)
            x += cell
        y += int(cell * 1.7)
    return image


def _glyph(draw: ImageDraw.ImageDraw, rnd: random.Random, x: int, y: int, side: int) -> None:
    width = max(1, side // 9)
    for _ in range(rnd.randint(3, 6)):
        if rnd.random() < 0.5:
            at = y + rnd.randint(0, side)
            draw.line(
                (x + rnd.randint(0, side // 3), at, x + rnd.randint(2 * side // 3, side), at),
                INK,
                width,
            )
        else:
            at = x + rnd.randint(0, side)
            draw.line(
                (at, y + rnd.randint(0, side // 3), at, y + rnd.randint(2 * side // 3, side)),
                INK,
                width,
            )


def camera(image: Image.Image, fmt: str = "JPEG") -> bytes:
    """What a phone sends: the picture with sensor noise, compressed."""
    noise = Image.effect_noise(image.size, 5)
    noisy = Image.merge("RGB", [ImageChops.add(c, noise, 1, -128) for c in image.split()])
    out = io.BytesIO()
    noisy.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def blurred(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(4))


def darkened(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(0.3)


def washed_out(image: Image.Image) -> Image.Image:
    """Too much light: the paper burnt white, the ink faded to grey."""
    bright = ImageEnhance.Brightness(image).enhance(1.6)
    return Image.blend(bright, Image.new("RGB", image.size, "white"), 0.5)


def glaring(image: Image.Image) -> Image.Image:
    """A reflection on a laminated page: a white patch over part of the text."""
    width, height = image.size
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((width * 0.45, height * 0.3, width * 0.75, height * 0.6), 255)
    mask = mask.filter(ImageFilter.GaussianBlur(width / 60))
    return Image.composite(Image.new("RGB", image.size, "white"), image, mask)


def far_away(image: Image.Image) -> Image.Image:
    """The same page a third as wide and high, in the middle of the table."""
    width, height = image.size
    frame = Image.new("RGB", image.size, TABLE)
    frame.paste(
        image.resize((width // 3, height // 3), Image.Resampling.LANCZOS), (width // 3, height // 3)
    )
    return frame


def sideways(image: Image.Image) -> Image.Image:
    """Shot with the phone flat on the table: the page turned a quarter, lines running down."""
    return image.rotate(90, expand=True)


def scanned(image: Image.Image) -> Image.Image:
    """A scanner app's output: the page alone, its paper made pure white, the ink black."""
    width, height = image.size
    page = image.crop(
        (int(width * 0.04), int(height * 0.04), int(width * 0.96), int(height * 0.96))
    )
    return page.point(lambda v: 255 if v > 200 else v)


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    content_type: str = "image/jpeg",
) -> dict[str, Any]:
    """Through the real flow: a form, the POST as wx.uploadFile makes it, the complete call."""
    ticket = (
        await client.post(
            "/mp/v1/uploads",
            json={"purpose": "material", "contentType": content_type, "size": len(data)},
            headers=headers,
        )
    ).json()
    files = {ticket["fileField"]: ("photo", data, content_type)}
    posted = await client.post(ticket["url"], data=ticket["fields"], files=files)
    assert posted.status_code == 204, posted.text
    done = await client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    return dict(done.json())


def codes(view: dict[str, Any]) -> list[str]:
    return [w["code"] for w in view["warnings"]]


async def test_a_sharp_well_lit_document_gets_no_warnings(client, demo, login):
    headers = await login("resident1")
    view = await upload(client, headers, camera(document()))
    assert view["status"] == "ready"
    assert view["warnings"] == []
    again = await client.get(f"/mp/v1/uploads/{view['id']}", headers=headers)
    assert again.json()["warnings"] == []


@pytest.mark.parametrize(
    ("spoil", "code", "message"),
    [
        (blurred, "blurry", "照片模糊,请重拍"),
        (darkened, "too_dark", "照片太暗,请到光线好的地方重拍"),
        (washed_out, "too_bright", "照片过亮或反光,请避开强光重拍"),
        (glaring, "too_bright", "照片过亮或反光,请避开强光重拍"),
        (far_away, "not_filling", "证件没有占满画面,请靠近拍摄"),
        (sideways, "sideways", "照片方向不对,请摆正后重拍"),
    ],
    ids=["blurred", "dark", "washed-out", "glare", "far-away", "sideways"],
)
async def test_a_spoilt_photo_gets_its_warning_and_only_that_one(
    client, demo, login, spoil, code, message
):
    headers = await login("resident1")
    view = await upload(client, headers, camera(spoil(document())))
    assert view["status"] == "ready"  # kept: a warning is not a refusal
    assert view["warnings"] == [{"code": code, "message": message}]
    # Stored with the upload: the file's own read answers the same.
    again = await client.get(f"/mp/v1/uploads/{view['id']}", headers=headers)
    assert again.json()["warnings"] == view["warnings"]


async def test_a_phone_sized_sideways_shot_is_seen_as_sideways(client, demo, login):
    # wx.chooseMedia's compressed photo of a portrait page, held the wrong way.
    view = await upload(client, await login("resident1"), camera(sideways(document((1440, 1080)))))
    assert codes(view) == ["sideways"]


async def test_a_scanner_apps_white_page_is_not_called_too_bright(client, demo, login):
    view = await upload(client, await login("resident1"), camera(scanned(document())))
    assert view["warnings"] == []


async def test_png_and_pdf_files_are_not_checked_as_photos(client, demo, login):
    headers = await login("resident1")
    # The same spoilt page a JPEG would be warned about, as a PNG (a screenshot or a scan).
    png = await upload(client, headers, camera(darkened(blurred(document())), "PNG"), "image/png")
    assert png["contentType"] == "image/png"
    assert png["warnings"] == []
    kept = await upload(client, headers, pdf(), "application/pdf")
    assert kept["contentType"] == "application/pdf"
    assert kept["warnings"] == []


async def test_checks_that_fail_never_fail_the_upload(client, demo, login, monkeypatch):
    def broken(data: bytes) -> Any:
        raise RuntimeError("a bug in the checks")

    monkeypatch.setattr(quality, "measure", broken)
    view = await upload(client, await login("resident1"), camera(blurred(document())))
    assert view["status"] == "ready"
    assert view["warnings"] == []


async def test_an_order_is_submitted_with_warned_photos_and_counted_apart(client, demo, login):
    headers = await login("resident2")  # 西集镇 dispatches by itself: to 吴秀芳 (agent4a)
    required = [m["code"] for m in (await guide(client, "RS-0001"))["materials"] if m["required"]]

    async def order_with(photo: bytes) -> int:
        materials = {code: [(await upload(client, headers, photo))["id"]] for code in required}
        response = await client.post(
            "/mp/v1/orders",
            json={"itemCode": "RS-0001", "materials": materials},
            headers={**headers, "Idempotency-Key": f"tap-{uuid.uuid4().hex}"},
        )
        assert response.status_code == 201, response.text  # the warnings did not stop it
        return int(response.json()["id"])

    warned_photo = camera(blurred(document()))
    assert codes(await upload(client, headers, warned_photo)) == ["blurry"]
    warned = await order_with(warned_photo)
    clean = await order_with(camera(document(seed=1)))
    # The agent asks again for the blurred one: one supplement round.
    agent, url = await login("agent4a"), f"/mp/v1/agent/orders/{warned}"
    assert (await client.post(f"{url}/take", json={}, headers=agent)).status_code == 200
    notice = {"missing": [{"code": required[0], "reason": "照片模糊"}]}
    asked = await client.post(f"{url}/request-supplement", json=notice, headers=agent)
    assert asked.status_code == 200, asked.text

    # The agent sees the warning beside each photo, with the photo's links.
    for order_id, expected in ((warned, ["blurry"]), (clean, [])):
        detail = (await client.get(f"/mp/v1/agent/orders/{order_id}", headers=agent)).json()
        ids = [i for slot in detail["checklist"] for i in slot["uploadIds"]]
        assert ids
        for upload_id in ids:
            links = await client.get(f"/mp/v1/uploads/{upload_id}/url", headers=agent)
            assert links.status_code == 200, links.text
            assert [w["code"] for w in links.json()["warnings"]] == expected

    stats = await client.get(
        "/mp/v1/dispatch/stats?from=2026-11-23&to=2026-11-23", headers=await login("dispatcher2a")
    )
    split = stats.json()["photoWarnings"]
    assert (split["withWarnings"]["orders"], split["without"]["orders"]) == (1, 1)
    assert (split["withWarnings"]["rounds"], split["without"]["rounds"]) == (1, 0)
    assert split["withWarnings"]["supplementRate"] == 1.0
    assert split["without"]["supplementRate"] == 0.0
    assert split["withWarnings"]["meanRounds"] == 1.0
