"""Photo uploads through each backend: throughput, and the service's peak memory against file
size and against phones completing at once.

    .venv/bin/python bench/uploads.py [--count 8]

For each backend (local disk; MinIO's protocol on moto's S3 server) the real service runs
with one granian worker, importing this checkout's code, a fresh one for each batch. Every
photo has the same pixel count (12 MP, 4032x3024, what most phone cameras take), so only
the file size changes. "1 at once": `count` photos of about 2, 3.5 and 5 MB, each asked
for, posted as multipart exactly as wx.uploadFile does, and completed (verified,
re-encoded) in turn. "N at once": N photos of 5 MB are posted, then all N completed
together (photos/s there is completions alone). Printed per batch: photos/s, MB/s and the
worker's peak resident memory during the batch (reset after warm-up), so growth with file
size or with concurrency shows directly.

The pixel-cost table also completes a 12 MP photo of a document (drawn: lines of glyphs on
paper on a table) and prints, beside each 12 MP completion, what the photo checks alone
(app/uploads/quality.py: blur, light, framing, direction) took on its clean copy in this
process (the median of five), so their share of the endpoint shows.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _service import ROOT, login, memory_kib, s3_server, service

from app.uploads.quality import check_photo
from app.uploads.service import MAX_DECODED_PIXELS, MAX_PIXELS
from storage.verify import verify

WIDTH, HEIGHT = 4032, 3024
SIZES_MB = (2.0, 3.5, 5.0)
CROWDS = (2, 6, 12)  # phones completing at once; verification has two slots
QUALITY = 88


def photo(noise: float, seed: int) -> bytes:
    """A camera-like 12 MP JPEG: a gradient with noise; more noise, bigger file, same pixels."""
    grain = Image.frombytes("L", (WIDTH, HEIGHT), random.Random(seed).randbytes(WIDTH * HEIGHT))
    base = Image.linear_gradient("L").resize((WIDTH, HEIGHT)).convert("RGB")
    mixed = Image.merge("RGB", [Image.blend(c, grain, noise) for c in base.split()])
    out = io.BytesIO()
    mixed.save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def document_photo(seed: int = 0) -> bytes:
    """A camera-like 12 MP JPEG of a page: lines of glyph strokes on paper on a table."""
    rnd = random.Random(seed)
    image = Image.new("RGB", (WIDTH, HEIGHT), (120, 96, 72))
    draw = ImageDraw.Draw(image)
    margin, cell = WIDTH // 25, HEIGHT // 40
    draw.rectangle((margin, margin, WIDTH - margin, HEIGHT - margin), fill=(236, 233, 226))
    for y in range(margin + 2 * cell, HEIGHT - margin - 2 * cell, cell * 17 // 10):
        for x in range(2 * margin, WIDTH - 2 * margin, cell):
            for _ in range(rnd.randint(3, 6)):
                a, b = rnd.randint(0, cell * 3 // 4), rnd.randint(0, cell * 3 // 4)
                line = (x + a, y, x + a, y + b) if rnd.random() < 0.5 else (x, y + a, x + b, y + a)
                draw.line(line, fill=(25, 25, 30), width=max(1, cell // 9))
    grain = Image.effect_noise((WIDTH, HEIGHT), 5)
    noisy = Image.merge("RGB", [Image.blend(c, grain, 0.04) for c in image.split()])
    out = io.BytesIO()
    noisy.save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def check_seconds(data: bytes, runs: int = 5) -> float:
    """The photo checks alone on the clean copy the service would keep: the median of runs."""
    clean = verify(
        data,
        "image/jpeg",
        max_bytes=len(data),
        max_pixels=MAX_PIXELS,
        max_decoded_pixels=MAX_DECODED_PIXELS,
    )
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        check_photo(clean.data, "image/jpeg", clean.content_type, "material")
        times.append(time.perf_counter() - started)
    return sorted(times)[runs // 2]


def photos_of_about(megabytes: float, count: int) -> list[bytes]:
    """`count` photos of about `megabytes` each: the noise level is found by bisection."""
    low, high = 0.0, 0.6
    for _ in range(8):
        middle = (low + high) / 2
        if len(photo(middle, 0)) < megabytes * 1e6:
            low = middle
        else:
            high = middle
    distinct = [photo(low, seed) for seed in range(min(count, 3))]
    return [distinct[i % len(distinct)] for i in range(count)]


@dataclass
class Row:
    label: str
    mb_per_photo: float
    photos_per_s: float
    mb_per_s: float
    peak_kib: int


class Phone:
    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.headers = base, headers

    def post(self, data: bytes, content_type: str = "image/jpeg") -> int:
        """Ask for a form and post the file as wx.uploadFile does; the upload's id."""
        with httpx.Client(timeout=120) as client:
            ticket = client.post(
                f"{self.base}/mp/v1/uploads",
                json={"purpose": "material", "contentType": content_type, "size": len(data)},
                headers=self.headers,
            ).json()
            files = {ticket["fileField"]: ("photo", data, content_type)}
            posted = client.post(ticket["url"], data=ticket["fields"], files=files)
            assert posted.status_code in (200, 204), posted.text
        return int(ticket["id"])

    def complete(self, upload_id: int, expect: int = 200) -> None:
        url = f"{self.base}/mp/v1/uploads/{upload_id}/complete"
        done = httpx.post(url, headers=self.headers, timeout=300)
        assert done.status_code == expect, done.text

    def upload(self, data: bytes) -> None:
        self.complete(self.post(data))


def reset_peak(pid: int) -> bool:
    """Start the peak resident memory (VmHWM) afresh, so each batch shows its own."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_batch(env: dict[str, str], label: str, photos: list[bytes], at_once: int) -> Row:
    """One batch in a service of its own, so memory a previous batch left behind (freed but
    kept by the allocator) does not count here.

    One at a time, each photo is posted and completed in turn. At once, every photo is
    posted first, then all are completed together: the moment that used to hold every file
    in memory while they queued for verification."""
    with tempfile.TemporaryDirectory() as tmp, service(Path(tmp), **env) as (base, pid):
        phone = Phone(base, login(base, "resident1"))
        phone.upload(photos[0])  # warm up: first imports, first decode
        ids = [phone.post(data) for data in photos] if at_once > 1 else []
        if not reset_peak(pid):
            label += " (peak since start)"
        started = time.perf_counter()
        if ids:
            with ThreadPoolExecutor(at_once) as pool:
                list(pool.map(phone.complete, ids))
        else:
            for data in photos:
                phone.upload(data)
        seconds = time.perf_counter() - started
        peak = memory_kib(pid)["VmHWM"]
    mb = sum(map(len, photos)) / 1e6
    return Row(label, mb / len(photos), len(photos) / seconds, mb / seconds, peak)


def bench(name: str, env: dict[str, str], count: int) -> None:
    by_size = {mb: photos_of_about(mb, count) for mb in SIZES_MB}
    biggest = SIZES_MB[-1]
    batches = [(f"{mb:g} MB, 1 at once", by_size[mb], 1) for mb in SIZES_MB]
    batches += [(f"{biggest:g} MB, {n} at once", by_size[biggest][:1] * n, n) for n in CROWDS]
    env = {
        # The service imports this checkout, whatever the venv's editable install points to.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DAIBAN_STORAGE_PENDING_UPLOADS_PER_PERSON": "1000",
        "DAIBAN_STORAGE_UPLOAD_BYTES_PER_PERSON_PER_DAY": str(10**12),
        **env,
    }
    rows = [run_batch(env, *batch) for batch in batches]
    print(f"\n{name}: {count} photos per batch, each {WIDTH}x{HEIGHT}")
    print(f"  {'batch':<17} {'MB/photo':>9} {'photos/s':>9} {'MB/s':>7} {'peak RSS MiB':>13}")
    for r in rows:
        print(
            f"  {r.label:<17} {r.mb_per_photo:>9.2f} {r.photos_per_s:>9.2f} {r.mb_per_s:>7.1f}"
            f" {r.peak_kib / 1024:>13.0f}"
        )
    alone, crowds = rows[: len(SIZES_MB)], rows[len(SIZES_MB) :]
    growth = (alone[-1].peak_kib - alone[0].peak_kib) / 1024
    ratio = alone[-1].mb_per_photo / alone[0].mb_per_photo
    crowd = (crowds[-1].peak_kib - crowds[0].peak_kib) / 1024
    print(f"  files {ratio:.1f}x larger -> peak {growth:+.0f} MiB")
    print(f"  {CROWDS[-1]} phones at once instead of {CROWDS[0]} -> peak {crowd:+.0f} MiB")


def pixel_cost() -> None:
    """What a file's pixels cost, whatever its size on the wire: a 7000x7000 PNG (143 KB,
    49 MP; it took 4 s and +315 MB before pixels were bounded) is refused before decoding; a
    48 MP JPEG is decoded at half size; a 12 MP photo is decoded whole."""

    def encoded(image: Image.Image, fmt: str) -> bytes:
        out = io.BytesIO()
        image.save(out, fmt)
        return out.getvalue()

    big = Image.new("RGB", (8064, 6048), (90, 120, 150))
    cases = [
        ("7000x7000 PNG", encoded(Image.new("L", (7000, 7000), 200), "PNG"), "image/png", 422),
        ("48 MP JPEG", encoded(big, "JPEG"), "image/jpeg", 200),
        ("12 MP JPEG", photo(0.1, 0), "image/jpeg", 200),
        ("12 MP document", document_photo(), "image/jpeg", 200),
    ]
    print("\npixel cost (local disk, one completion each, after a warm-up)")
    print(
        f"  {'file':<15} {'KB':>7} {'seconds':>8} {'answer':>7} {'peak RSS MiB':>13}"
        f" {'checks s':>9}"
    )
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for label, data, content_type, expect in cases:
        with tempfile.TemporaryDirectory() as tmp, service(Path(tmp), **env) as (base, pid):
            phone = Phone(base, login(base, "resident1"))
            phone.upload(photo(0.1, 1))  # warm up: first imports, first decode
            upload_id = phone.post(data, content_type)
            reset_peak(pid)
            started = time.perf_counter()
            phone.complete(upload_id, expect)
            seconds = time.perf_counter() - started
            peak = memory_kib(pid)["VmHWM"] / 1024
        checks = f"{check_seconds(data):>9.3f}" if expect == 200 else f"{'-':>9}"
        print(
            f"  {label:<15} {len(data) / 1000:>7.0f} {seconds:>8.2f} {expect:>7} {peak:>13.0f}"
            f" {checks}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=8, help="photos per batch")
    count = parser.parse_args().count
    pixel_cost()
    bench("local disk", {"DAIBAN_STORAGE_BACKEND": "local"}, count)
    with s3_server() as endpoint:
        bench(
            "minio (moto S3)",
            {
                "DAIBAN_STORAGE_BACKEND": "minio",
                "DAIBAN_STORAGE_MINIO_ENDPOINT": endpoint,
                "DAIBAN_STORAGE_MINIO_ACCESS_KEY": "bench",
                "DAIBAN_STORAGE_MINIO_SECRET_KEY": "bench-secret",
            },
            count,
        )


if __name__ == "__main__":
    main()
