"""`daiban serve` writes one JSON stream: granian's own lines (its start, its workers)
come out in the service's JSON format, on the same stream as the service's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from tests.conftest import free_port


def test_every_line_of_a_served_run_is_json(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAIBAN_")},
        "DAIBAN_VAR_DIR": str(tmp_path),
        "DAIBAN_SERVER_PORT": str(port),
        "DAIBAN_LOG_FORMAT": "json",
        "DAIBAN_SCHEDULER_MODE": "off",
        "DAIBAN_DEMO_DATA": "false",
    }
    served = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("the service did not come up")
        httpx.get(f"http://127.0.0.1:{port}/mp/v1/regions", timeout=5)
    finally:
        served.send_signal(signal.SIGTERM)
        _, err = served.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # each line is one JSON object
    loggers = {r["logger"] for r in records}
    assert "_granian" in loggers, loggers  # granian's own start and stop
    assert "daiban.access" in loggers
    assert all({"time", "level", "message"} <= r.keys() for r in records)
