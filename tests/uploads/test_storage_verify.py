"""Upload verification: magic bytes, size limits, metadata stripping and bomb refusal."""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
import random
import re
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, ImageFile

from storage.verify import (
    ALLOWED_TYPES,
    THUMBNAIL_MAX_SIDE,
    VerificationError,
    Verified,
    sniff,
    verify,
)

MB = 1024 * 1024
CHINESE = re.compile(r"[\u4e00-\u9fff]")


# --- fixture builders: every test file is made here, nothing binary is committed ---------------


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def photo(size: tuple[int, int] = (800, 600), mode: str = "RGB") -> Image.Image:
    """A blue picture with a red top-left corner, so rotations can be told apart."""
    image = Image.new(mode, size, "blue")
    image.paste(Image.new(mode, (60, 60), "red"), (0, 0))
    return image


def noisy(size: tuple[int, int] = (600, 400)) -> Image.Image:
    # Noise does not compress, so cutting the file short really cuts into the pixel data.
    return Image.effect_noise(size, 64).convert("RGB")


@functools.cache
def png_header_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of a blank page, built chunk by chunk so the test never holds it in RAM."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def webp_header_bomb(width: int, height: int) -> bytes:
    """Only a VP8X header claiming a huge canvas: it must be refused before libwebp sees it."""
    body = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    body += (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def pdf() -> bytes:
    return encode(Image.new("RGB", (300, 300), "white"), "PDF")


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def refused(data: bytes, declared: str, code: str, **limits: Any) -> VerificationError:
    limits.setdefault("max_bytes", 10 * MB)
    with pytest.raises(VerificationError) as caught:
        verify(data, declared, **limits)
    error = caught.value
    assert error.code == code, error
    # The resident sees the message: it must be a Chinese sentence, not a code.
    assert CHINESE.search(error.message), error.message
    return error


def is_red(pixel: Any) -> bool:
    red, green, blue = pixel[:3]
    return red > 200 and green < 60 and blue < 60


def is_blue(pixel: Any) -> bool:
    red, green, blue = pixel[:3]
    return blue > 200 and red < 60 and green < 60


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail loudly if anything decodes pixels (that is where a bomb would allocate)."""

    def refuse(self: ImageFile.ImageFile) -> Any:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    yield


# --- sniffing ----------------------------------------------------------------------------------


def test_sniff_knows_every_allowed_type() -> None:
    heic = encode_heic_or_none()
    samples = {
        "image/jpeg": encode(photo(), "JPEG"),
        "image/png": encode(photo(), "PNG"),
        "image/webp": encode(photo(), "WEBP"),
        "application/pdf": pdf(),
    }
    if heic is not None:
        samples["image/heic"] = heic
    for content_type, data in samples.items():
        assert content_type in ALLOWED_TYPES
        assert sniff(data[:64]) == content_type


def test_sniff_heic_brands_and_refuses_avif() -> None:
    def ftyp(major: bytes, *compatible: bytes) -> bytes:
        body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
        return struct.pack(">I", 8 + len(body)) + b"ftyp" + body

    for brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        assert sniff(ftyp(brand, b"mif1")) == "image/heic"
    assert sniff(ftyp(b"mif1", b"mif1", b"heic")) == "image/heic"
    assert sniff(ftyp(b"avif", b"mif1")) is None
    assert sniff(ftyp(b"mif1", b"mif1", b"avif")) is None
    assert sniff(ftyp(b"isom", b"mp41")) is None  # an MP4 video


def test_sniff_unknown_and_short_input() -> None:
    assert sniff(b"") is None
    assert sniff(b"\xff\xd8") is None
    assert sniff(b"GIF89a" + b"\x00" * 20) is None
    assert sniff(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert sniff(b"hello world, not a picture") is None


# --- images that pass --------------------------------------------------------------------------


def test_jpeg_round_trip_keeps_dimensions() -> None:
    result = verify(encode(photo((800, 600)), "JPEG", quality=95), "image/jpeg", max_bytes=MB)
    assert isinstance(result, Verified)
    assert result.content_type == "image/jpeg"
    assert (result.width, result.height) == (800, 600)
    stored = opened(result.data)
    assert stored.format == "JPEG"
    assert stored.size == (800, 600)
    assert is_red(stored.getpixel((10, 10)))
    assert is_blue(stored.getpixel((700, 500)))


def test_declared_type_is_case_insensitive_and_ignores_parameters() -> None:
    data = encode(photo(), "JPEG")
    assert verify(data, "IMAGE/JPEG; charset=binary", max_bytes=MB).content_type == "image/jpeg"


def test_exif_gps_xmp_and_comment_are_stripped() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel X"  # Model
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (31.0, 14.0, 2.5), 3: "E", 4: (121.0, 28.0, 7.25), 6: 12.0})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>31,14N</exif:GPSLatitude>'
    xmp += b"</x:xmpmeta>"
    source = encode(photo(), "JPEG", exif=exif, xmp=xmp, comment=b"home address")
    # The fixture really carries what we expect to be removed.
    assert opened(source).getexif().get_ifd(0x8825)
    assert b"Exif" in source and b"GPS" in source and b"home address" in source

    result = verify(source, "image/jpeg", max_bytes=MB)

    assert len(opened(result.data).getexif()) == 0
    for secret in (b"Exif", b"GPS", b"PhoneMaker", b"xmpmeta", b"home address"):
        assert secret not in result.data
        assert result.thumbnail is not None and secret not in result.thumbnail


def test_exif_orientation_6_is_stored_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display needs a 90° clockwise turn
    source = encode(photo((400, 300)), "JPEG", exif=exif, quality=95)

    result = verify(source, "image/jpeg", max_bytes=MB)

    assert (result.width, result.height) == (300, 400)
    stored = opened(result.data)
    assert stored.size == (300, 400)
    assert len(stored.getexif()) == 0  # no orientation left for a viewer to apply twice
    # Turned clockwise, the red top-left corner ends up top-right.
    assert is_red(stored.getpixel((290, 10)))
    assert is_blue(stored.getpixel((10, 10)))
    assert is_blue(stored.getpixel((290, 390)))


def test_png_with_alpha_stays_png() -> None:
    image = Image.new("RGBA", (400, 300), (0, 128, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 200, 300))
    result = verify(encode(image, "PNG"), "image/png", max_bytes=MB)

    assert result.content_type == "image/png"
    stored = opened(result.data)
    assert stored.format == "PNG" and stored.mode == "RGBA"
    assert stored.getpixel((10, 10))[3] == 0
    assert stored.getpixel((300, 10)) == (0, 128, 0, 255)
    assert result.thumbnail_type == "image/jpeg"
    assert result.thumbnail is not None
    assert opened(result.thumbnail).format == "JPEG"


def test_palette_png_with_transparency_keeps_it() -> None:
    image = Image.new("P", (300, 300), 1)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.paste(0, (0, 0, 100, 100))
    source = encode(image, "PNG", transparency=0)
    assert opened(source).mode == "P"
    stored = opened(verify(source, "image/png", max_bytes=MB).data)
    assert stored.convert("RGBA").getpixel((10, 10))[3] == 0
    assert is_red(stored.convert("RGBA").getpixel((200, 200)))


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    source = encode(Image.new("I;16", (300, 300), 32768), "PNG")
    stored = opened(verify(source, "image/png", max_bytes=MB).data)
    assert stored.mode == "L"
    assert 120 <= stored.getpixel((5, 5)) <= 135  # half grey, not white


def test_webp_becomes_jpeg() -> None:
    result = verify(encode(photo(), "WEBP", quality=90), "image/webp", max_bytes=MB)
    assert result.content_type == "image/jpeg"
    stored = opened(result.data)
    assert stored.format == "JPEG"
    assert stored.size == (800, 600)
    assert is_red(stored.getpixel((10, 10)))


def test_webp_with_opaque_alpha_becomes_jpeg() -> None:
    result = verify(encode(photo(mode="RGBA"), "WEBP"), "image/webp", max_bytes=MB)
    assert result.content_type == "image/jpeg"


def test_webp_with_real_transparency_becomes_png() -> None:
    image = photo(mode="RGBA")
    image.paste((0, 0, 0, 0), (400, 0, 800, 600))
    result = verify(encode(image, "WEBP", lossless=True), "image/webp", max_bytes=MB)
    assert result.content_type == "image/png"
    assert opened(result.data).getpixel((700, 10))[3] == 0


def test_animated_webp_and_png_keep_only_the_first_frame() -> None:
    frames = [Image.new("RGB", (300, 300), colour) for colour in ("red", "blue", "green")]
    for fmt, declared in (("WEBP", "image/webp"), ("PNG", "image/png")):
        source = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
        assert getattr(opened(source), "n_frames", 1) == 3
        stored = opened(verify(source, declared, max_bytes=MB).data)
        assert getattr(stored, "n_frames", 1) == 1
        assert is_red(stored.convert("RGB").getpixel((150, 150)))


def test_cmyk_jpeg_becomes_rgb() -> None:
    source = encode(Image.new("CMYK", (300, 300), (0, 255, 255, 0)), "JPEG")
    stored = opened(verify(source, "image/jpeg", max_bytes=MB).data)
    assert stored.mode == "RGB"
    assert is_red(stored.getpixel((150, 150)))


def test_icc_profile_of_an_rgb_photo_is_kept() -> None:
    image_cms = pytest.importorskip("PIL.ImageCms")
    profile = image_cms.ImageCmsProfile(image_cms.createProfile("sRGB")).tobytes()
    source = encode(photo(), "JPEG", icc_profile=profile)
    result = verify(source, "image/jpeg", max_bytes=MB)
    assert opened(result.data).info.get("icc_profile") == profile


def encode_heic_or_none(image: Image.Image | None = None, **params: Any) -> bytes | None:
    try:
        import pillow_heif
    except ImportError:
        return None
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image or photo()).save(buffer, quality=90, **params)
    return buffer.getvalue()


def test_heic_becomes_upright_jpeg() -> None:
    pytest.importorskip("pillow_heif")
    exif = Image.Exif()
    exif[0x0112] = 6
    source = encode_heic_or_none(photo((400, 300)), exif=exif.tobytes())
    assert source is not None
    assert sniff(source[:64]) == "image/heic"

    result = verify(source, "image/heic", max_bytes=MB)

    assert result.content_type == "image/jpeg"
    stored = opened(result.data)
    assert stored.format == "JPEG"
    assert stored.size == (300, 400)
    assert is_red(stored.getpixel((290, 10)))
    assert len(stored.getexif()) == 0


def test_thumbnail_is_a_small_jpeg_with_the_same_shape() -> None:
    result = verify(encode(photo((1000, 500)), "JPEG"), "image/jpeg", max_bytes=MB)
    assert result.thumbnail is not None
    assert result.thumbnail_type == "image/jpeg"
    thumbnail = opened(result.thumbnail)
    assert thumbnail.format == "JPEG"
    assert max(thumbnail.size) <= THUMBNAIL_MAX_SIDE
    assert thumbnail.size == (320, 160)


def test_thumbnail_does_not_enlarge_small_pictures() -> None:
    result = verify(encode(photo((250, 200)), "PNG"), "image/png", max_bytes=MB)
    assert result.thumbnail is not None
    assert opened(result.thumbnail).size == (250, 200)


def test_size_and_sha256_describe_the_stored_bytes() -> None:
    result = verify(encode(photo(), "JPEG"), "image/jpeg", max_bytes=MB)
    assert result.size == len(result.data)
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()


# --- PDF ---------------------------------------------------------------------------------------


def test_valid_pdf_is_kept_byte_identical() -> None:
    data = pdf()
    result = verify(data, "application/pdf", max_bytes=MB)
    assert result.content_type == "application/pdf"
    assert result.data == data
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (result.width, result.height, result.thumbnail, result.thumbnail_type) == (
        None,
        None,
        None,
        None,
    )


def test_pdf_without_end_marker_is_invalid() -> None:
    data = pdf()
    truncated = data[: data.rindex(b"%%EOF")]
    refused(truncated, "application/pdf", "pdf_invalid")
    refused(data + b"\n" * 2000, "application/pdf", "pdf_invalid")


# --- refusals ----------------------------------------------------------------------------------


def test_empty_file() -> None:
    refused(b"", "image/jpeg", "file_empty")


def test_oversize_file_names_the_limit_in_mb() -> None:
    error = refused(
        b"\xff\xd8\xff" + b"\x00" * (5 * MB), "image/jpeg", "file_too_large", max_bytes=5 * MB
    )
    assert "5 MB" in error.message


def test_type_mismatch() -> None:
    png = encode(photo(), "PNG")
    jpeg = encode(photo(), "JPEG")
    refused(png, "image/jpeg", "file_type_mismatch")
    refused(pdf(), "image/png", "file_type_mismatch")
    refused(jpeg, "image/heic", "file_type_mismatch")
    refused(jpeg, "image/gif", "file_type_mismatch")
    refused(random.Random(7).randbytes(4096), "image/jpeg", "file_type_mismatch")
    refused(encode(photo(), "GIF"), "image/gif", "file_type_mismatch")


def test_heic_declared_as_jpeg_is_a_mismatch() -> None:
    heic = encode_heic_or_none()
    if heic is None:
        pytest.skip("pillow-heif is not installed")
    refused(heic, "image/jpeg", "file_type_mismatch")


def test_truncated_jpeg_is_corrupt() -> None:
    data = encode(noisy(), "JPEG", quality=95)
    refused(data[: len(data) // 2], "image/jpeg", "file_corrupt")


def test_garbage_after_a_valid_signature_is_corrupt() -> None:
    refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "image/png", "file_corrupt")
    refused(b"\xff\xd8\xff\xe0" + b"\x00" * 200, "image/jpeg", "file_corrupt")
    refused(b"RIFF\x00\x01\x00\x00WEBPVP8 " + b"\x00" * 40, "image/webp", "file_corrupt")


def test_png_decompression_bomb_is_refused_from_the_header(no_decoding: None) -> None:
    bomb = png_header_bomb(30_000, 30_000)
    assert len(bomb) < 200_000  # a few hundred KB on the wire, 900 million pixels in memory
    started = time.perf_counter()
    refused(bomb, "image/png", "decompression_bomb")
    assert time.perf_counter() - started < 1.0


def test_bomb_is_refused_even_if_pillows_global_guard_is_off(
    monkeypatch: pytest.MonkeyPatch, no_decoding: None
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    refused(png_header_bomb(30_000, 30_000), "image/png", "decompression_bomb")


def test_webp_bomb_is_refused_before_pillow_opens_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Image.open was called")

    monkeypatch.setattr(Image, "open", never)
    refused(webp_header_bomb(16_000, 16_000), "image/webp", "decompression_bomb")


def test_caller_pixel_limit_is_a_bomb_below_pillows_own_limit(no_decoding: None) -> None:
    source = encode(photo((2000, 2000)), "JPEG")
    refused(source, "image/jpeg", "decompression_bomb", max_pixels=1_000_000)


def test_tiny_image_is_too_small() -> None:
    refused(encode(photo((50, 50)), "JPEG"), "image/jpeg", "image_too_small")
    refused(encode(photo((1000, 150)), "PNG"), "image/png", "image_too_small")


def test_very_long_image_is_too_large() -> None:
    source = encode(Image.new("L", (10_050, 300), 200), "PNG")
    refused(source, "image/png", "image_too_large")


def test_verification_error_is_readable_and_picklable() -> None:
    error = refused(b"", "image/png", "file_empty")
    assert str(error).startswith("file_empty: ")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object, round-tripped
    assert (copy.code, copy.message) == (error.code, error.message)


# --- PDF: parsed, and refused when broken or active ---------------------------------------------


def raw_pdf(*objects: bytes, trailer_extra: bytes = b"") -> bytes:
    """A PDF written by hand with a correct cross-reference table, so that a test can put in
    exactly the names it means (pypdf would write them its own way)."""
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer_extra,
        xref,
    )
    return out


PAGES = (
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
)


def test_a_hand_written_clean_pdf_passes() -> None:
    data = raw_pdf(b"<< /Type /Catalog /Pages 2 0 R >>", *PAGES)
    assert verify(data, "application/pdf", max_bytes=MB).data == data


@pytest.mark.parametrize(
    "catalogue, extra",
    [
        (b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", b"<< /S /JavaScript /JS (x) >>"),
        (b"<< /Type /Catalog /Pages 2 0 R /Names << /J#61vaScript 4 0 R >> >>", b"<< >>"),
        (b"<< /Type /Catalog /Pages 2 0 R /AA << /O 4 0 R >> >>", b"<< /S /Launch /F (c.exe) >>"),
        (b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 4 0 R >> >>", b"<< >>"),
        (b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /XFA 4 0 R >> >>", b"<< >>"),
        (b"<< /Type /Catalog /Pages 2 0 R /X 4 0 R >>", b"<< /S /SubmitForm /F (http://x) >>"),
        (b"<< /Type /Catalog /Pages 2 0 R /X [4 0 R] >>", b"<< /S /J#61vaScript >>"),
        (  # a file attachment whose file specification leaves out /Type /Filespec
            b"<< /Type /Catalog /Pages 2 0 R /X 4 0 R >>",
            b"<< /F (a.exe) /EF << /F 5 0 R >> >>",
        ),
        (b"<< /Type /Catalog /Pages 2 0 R /X 4 0 R >>", b"<< /Subtype /FileAttachment >>"),
    ],
    ids=[
        "open-action-js",
        "escaped-name",
        "launch",
        "embedded",
        "xfa",
        "submit",
        "in-array",
        "untyped-filespec",
        "attachment-annotation",
    ],
)
def test_a_pdf_with_active_content_is_refused(catalogue: bytes, extra: bytes) -> None:
    refused(raw_pdf(catalogue, *PAGES, extra), "application/pdf", "pdf_active_content")


def test_html_or_a_zip_dressed_as_a_pdf_is_refused() -> None:
    html = b"%PDF-1.4\n<html><body><script>alert(document.cookie)</script></body></html>\n%%EOF\n"
    refused(html, "application/pdf", "pdf_invalid")
    polyglot = pdf() + b"PK\x03\x04" + b"\x00" * 200
    refused(polyglot, "application/pdf", "pdf_invalid")


def test_an_encrypted_or_endless_pdf_is_refused() -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    refused(out.getvalue(), "application/pdf", "pdf_encrypted")
    writer = PdfWriter()
    for _ in range(201):
        writer.add_blank_page(200, 200)
    out = io.BytesIO()
    writer.write(out)
    refused(out.getvalue(), "application/pdf", "pdf_too_many_pages")


# --- pixels: what is decoded is bounded ---------------------------------------------------------


def test_a_png_with_more_pixels_than_a_phone_photo_is_refused_before_decoding(
    no_decoding: None,
) -> None:
    source = encode(Image.new("L", (7000, 7000), 200), "PNG")
    assert len(source) < 200_000  # small on the wire: the cost is all in the pixels
    refused(source, "image/png", "decompression_bomb", max_pixels=50_000_000)


def test_an_odd_sized_jpeg_is_still_decoded_within_the_bound() -> None:
    """Pillow rounds its reduction down: asking for half of an odd width kept full size."""
    source = encode(Image.new("RGB", (2001, 1001), (1, 2, 3)), "JPEG")
    result = verify(
        source, "image/jpeg", max_bytes=MB, max_pixels=10_000_000, max_decoded_pixels=1_000_000
    )
    assert result.width is not None and result.height is not None
    assert result.width * result.height <= 1_000_000


def test_a_48_megapixel_jpeg_is_decoded_at_half_size_in_little_memory() -> None:
    import tracemalloc

    source = encode(Image.new("RGB", (8064, 6048), (120, 130, 140)), "JPEG")
    tracemalloc.start()
    try:
        result = verify(source, "image/jpeg", max_bytes=50 * MB, max_pixels=50_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (result.width, result.height) == (4032, 3024)
    assert peak < 80_000_000, f"{peak / 1e6:.0f} MB"
