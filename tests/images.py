"""Test files made in code: photos with GPS, a decompression bomb, a PDF."""

from __future__ import annotations

import io
import os
from functools import cache

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg(width: int = 1200, height: int = 900, *, gps: bool = False, noise: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (200, 120, 40))
    if noise:  # incompressible content, for files of a realistic size
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    exif = Image.Exif()
    exif[0x010F] = "FakePhone"  # Make
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


@cache
def bomb_png(side: int = 9_000) -> bytes:
    """A few kilobytes on disk that would take `side`² pixels of memory to decode."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG", optimize=True)
    return out.getvalue()


def pdf() -> bytes:
    """A real one-page PDF (a scanned page, as Pillow writes one)."""
    out = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(out, "PDF")
    return out.getvalue()


def padded_jpeg(size: int) -> bytes:
    """A small photo followed by a trailer, `size` bytes in all: like the video a phone's
    "motion photo" appends after the JPEG. Big to read, cheap to decode, tiny once cleaned,
    so what it costs in memory is the file itself (the pixels take a moment to decode, so
    a queue forms behind the verification slots)."""
    photo = jpeg(2400, 1800)
    return photo + bytes(max(0, size - len(photo)))


def signature_png(width: int = 600, height: int = 240, *, blank: bool = False) -> bytes:
    """A name written by hand on the mini-program's canvas: dark strokes on a see-through
    background, as canvasToTempFilePath writes a PNG (`blank`: nothing written)."""
    from PIL import ImageDraw

    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if not blank:
        pen = ImageDraw.Draw(image)
        for i in range(6):  # a few strokes across the box, like a signature
            x = 40 + i * 85
            pen.line(
                [(x, 60), (x + 50, 180), (x + 70, 90), (x + 110, 170)],
                fill=(20, 20, 20, 255),
                width=7,
            )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
