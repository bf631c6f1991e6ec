"""Photo uploads through each backend: throughput, and the service's memory against file size.

    .venv/bin/python bench/uploads.py [--count 12]

For each backend (local disk; MinIO's protocol on moto's S3 server) the real service runs
with one granian worker. A batch of small photos (~0.3 MB) goes first, then a batch of
realistic ones (2-5 MB): each is requested, posted as multipart exactly as wx.uploadFile
does, and completed (verified, re-encoded). Printed: photos/s and MB/s per batch, and the
worker's peak resident memory after each batch, so growth with file size shows directly.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import login, memory_kib, s3_server, service


def photo(width: int, height: int, seed: int) -> bytes:
    """A camera-like JPEG: a gradient with noise, so it compresses like a real photo."""
    noise = Image.frombytes("L", (width, height), os.urandom(width * height))
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    mixed = Image.merge(
        "RGB", [Image.blend(c, noise, 0.35 + 0.05 * (seed % 3)) for c in base.split()]
    )
    out = io.BytesIO()
    mixed.save(out, "JPEG", quality=92)
    return out.getvalue()


def run_batch(
    client: httpx.Client, base: str, headers: dict[str, str], photos: list[bytes]
) -> float:
    started = time.perf_counter()
    for data in photos:
        ticket = client.post(
            f"{base}/mp/v1/uploads",
            json={"purpose": "material", "contentType": "image/jpeg", "size": len(data)},
            headers=headers,
        ).json()
        files = {ticket["fileField"]: ("photo.jpg", data, "image/jpeg")}
        posted = client.post(ticket["url"], data=ticket["fields"], files=files)
        assert posted.status_code in (200, 204), posted.text
        done = client.post(f"{base}/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
        assert done.status_code == 200, done.text
    return time.perf_counter() - started


def bench(name: str, env: dict[str, str], count: int) -> None:
    small = [photo(640, 480, i) for i in range(count)]
    large = [photo(3264, 2448, i) for i in range(count)]  # 8 MP, about 4.8 MB
    with tempfile.TemporaryDirectory() as tmp, service(Path(tmp), **env) as (base, pid):
        headers = login(base, "resident1")
        with httpx.Client(timeout=60) as client:
            idle = memory_kib(pid)["VmRSS"]
            rows: list[tuple[str, float, float, float, int]] = []
            for label, photos in (("small", small), ("large", large)):
                seconds = run_batch(client, base, headers, photos)
                mb = sum(map(len, photos)) / 1e6
                rows.append(
                    (
                        label,
                        mb / len(photos),
                        len(photos) / seconds,
                        mb / seconds,
                        memory_kib(pid)["VmHWM"],
                    )
                )
    print(f"\n{name}: worker idle RSS {idle / 1024:.0f} MiB")
    print(f"  {'batch':<6} {'MB/photo':>9} {'photos/s':>9} {'MB/s':>7} {'peak RSS MiB':>13}")
    for label, size, rate, mbs, peak in rows:
        print(f"  {label:<6} {size:>9.2f} {rate:>9.1f} {mbs:>7.1f} {peak / 1024:>13.0f}")
    growth = (rows[1][4] - rows[0][4]) / 1024
    ratio = rows[1][1] / rows[0][1]
    print(f"  files {ratio:.0f}x larger -> peak memory +{growth:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=12)
    count = parser.parse_args().count
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
