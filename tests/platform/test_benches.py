"""The benchmarks still run: each at a tiny size, to its end, as `make bench` and the
PostgreSQL scale-out work run them at full size. They use the service's own code (its
statements, its fill of the database, its numbering), so a change there can break a
benchmark that nothing else runs; its figures are not checked here.

Left out for their time: bench/uploads.py (12-megapixel photos through both stores, about
two and a half minutes at its smallest), the 智能预审 benchmarks (their own test folder
reads the same photos) and bench/submissions_ab.py (two checkouts of the code)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ON_POSTGRES, empty_database

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, *args: str, timeout: float = 240) -> str:
    done = subprocess.run(  # noqa: S603 - this checkout's own script
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{script} {args}: exit {done.returncode}\n{done.stderr[-3000:]}"
    return done.stdout


TINY = {  # each script at its smallest useful size
    "orders.py": ("--sizes", "1000", "--rounds", "1", "--seconds", "0.3", "--submissions", "100"),
    "dispatch.py": ("--open", "200", "--history", "1000", "--runs", "10"),
    "console.py": ("--open", "200", "--history", "1000", "--runs", "10"),
    "jobs.py": ("--sizes", "1000", "--due", "20", "--messages", "50"),
    "retention.py": ("--sizes", "1000", "--due", "10"),
}


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's benchmarks: run once, in the SQLite pass")
@pytest.mark.parametrize("script", sorted(TINY))
def test_a_benchmark_of_make_bench_runs_to_its_end(script):
    printed = _run(script, *TINY[script])
    assert printed.strip()


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL")
async def test_the_submissions_benchmark_runs_on_postgresql(tmp_path):
    async with empty_database(tmp_path, "bench_orders") as url:
        printed = _run(
            "orders.py",
            *TINY["orders.py"],
            "--database-url",
            url,
            "--workers",
            "2",
        )
    assert "PostgreSQL" in printed


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL")
async def test_the_province_generates_at_one_districts_size(tmp_path):
    """At --scale 0.01 (200,000 orders): every unique index made again after the load
    (today's numbers after the one the service gave the template order, among others)."""
    async with empty_database(tmp_path, "bench_province") as url:
        printed = _run(
            "province.py",
            "--database-url",
            url,
            "--scale",
            "0.01",
            "--no-measure",
            "--var-dir",
            str(tmp_path / "var"),
        )
    assert "indexes (all)" in printed
