"""Starts the real service (and a local S3 endpoint) in subprocesses for the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import msgspec

from app.settings import LimitSettings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def s3_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


# Every DAIBAN_LIMITS_* count (the Redis URL aside).
LIMITED = [f.name for f in msgspec.structs.fields(LimitSettings) if f.type is int]


@contextmanager
def service(var_dir: Path, **env: str) -> Iterator[tuple[str, int]]:
    """`daiban serve` with one granian worker; yields the base URL and the worker's pid."""
    port = free_port()
    full_env = {
        **os.environ,
        # This checkout's code, whichever checkout installed the virtualenv's `daiban`.
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
        "DAIBAN_VAR_DIR": str(var_dir),
        "DAIBAN_SERVER_PORT": str(port),
        "DAIBAN_LOG_LEVEL": "WARNING",
        "DAIBAN_SCHEDULER_MODE": "off",
        "DAIBAN_STORAGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # A benchmark sends far more than a person: it measures throughput, not the limits
        # (tests/api/test_limits.py holds those, and their cost per request: docs/benchmarks.md).
        **{f"DAIBAN_LIMITS_{kind.upper()}": "0" for kind in LIMITED},
        **env,
    }
    proc = subprocess.Popen(
        [str(BIN / "daiban"), "serve"],
        env=full_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", 60)
        yield base, worker_pid(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)


def worker_pid(parent: int) -> int:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return int(children[0]) if children else parent


def memory_kib(pid: int) -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def login(base: str, handle: str) -> dict[str, str]:
    r = httpx.post(f"{base}/mp/v1/auth/login", json={"code": f"dev:{handle}"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['accessToken']}"}
