"""A province's backup (DAIBAN_BACKUP_METHOD=base): `daiban backup` takes pg_basebackup of a
PostgreSQL cluster, from the read replica when there is one, and records the run; the copy
restored into a new data directory as docs/operations.md says starts, holds what was
committed before the backup and not what came after, and its personal data reads with the
service's keys. `daiban restore` checks such a backup and writes nothing.

The cluster is the test's own (initdb into a temporary folder, as the `postgres` user when
run as root): replication connections are a server's setting, and the suite's database
need not allow them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select

from app import migrate
from app.context import Context
from app.demo import demo_id_number
from app.models import Account, JobRun, Order
from app.settings import SettingsError
from tests.conftest import Clock, demo_service, free_port, make_settings, settings_env
from tests.factories import submit

TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "tar", "zstd")
pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS)
    or (os.geteuid() == 0 and shutil.which("runuser") is None),
    reason="needs PostgreSQL's server programs (initdb, pg_ctl), pg_basebackup and zstd",
)
# Clusters may not be run by root: then they belong to the postgres user.
AS_OWNER = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _owned(*command: str) -> None:
    subprocess.run([*AS_OWNER, *command], check=True, capture_output=True)  # noqa: S603


class Cluster:
    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/daiban"

    def start(self) -> None:
        _owned("pg_ctl", "-D", str(self.data), "-l", f"{self.data}.log", "-w", "-t", "60", "start")

    def stop(self) -> None:
        subprocess.run(  # noqa: S603
            [*AS_OWNER, "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
        )


@pytest.fixture
def folder() -> Iterator[Path]:
    """Somewhere the postgres user may write (pytest's own folders are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="daiban-base-", dir="/var/tmp"))
    path.chmod(0o755)
    if AS_OWNER:
        shutil.chown(path, "postgres", "postgres")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def primary(folder: Path) -> Iterator[Cluster]:
    cluster = Cluster(folder / "primary", free_port())
    _owned("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync")
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {cluster.port}\nlisten_addresses = '127.0.0.1'\n")
        conf.write(f"unix_socket_directories = '{folder}'\nfsync = off\n")
    with (cluster.data / "pg_hba.conf").open("a") as hba:
        hba.write("host replication all 127.0.0.1/32 trust\n")
    cluster.start()
    _owned("createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "daiban")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def replica(primary: Cluster, folder: Path) -> Iterator[Cluster]:
    """A streaming replica of the primary (a hot standby)."""
    cluster = Cluster(folder / "replica", free_port())
    _owned(
        "pg_basebackup",
        *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
        *("-D", str(cluster.data), "-R", "-X", "stream", "-c", "fast"),
    )
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {cluster.port}\n")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _daiban(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


RESIDENT1 = demo_id_number("370406", "19480312", "022")


async def _contents(url: str, var: Path) -> tuple[int, set[str]]:
    """How many orders, and the ID numbers as the service reads them with its keys."""
    ctx = Context.build(make_settings(var, url))
    try:

        def read(session):
            stored = session.scalars(
                select(Account.id_number_enc).where(Account.id_number_enc.is_not(None))
            )
            numbers = {ctx.cipher.decrypt(value, context="id_number") for value in stored}
            return session.scalar(select(func.count(Order.id))), numbers

        return await ctx.db.run_read(read)
    finally:
        await ctx.aclose()


async def test_a_base_backup_restores_with_postgresqls_tools_to_the_moment_it_was_taken(
    primary: Cluster, replica: Cluster, folder: Path, tmp_path: Path, clock: Clock
) -> None:
    base = {"DAIBAN_BACKUP_METHOD": "base", "DAIBAN_DATABASE_REPLICA_URL": replica.url}
    env = settings_env(tmp_path / "var", primary.url, **base)
    settings = make_settings(tmp_path / "var", primary.url, **base)
    ctx = Context.build(settings)
    try:
        await migrate.upgrade(ctx.db)
    finally:
        await ctx.aclose()
    async with demo_service(settings, clock) as (service, client, _):
        login = await client.post("/mp/v1/auth/login", json={"code": "dev:resident1"})
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        for _ in range(2):
            assert (await submit(client, headers)).status_code == 201
        before = await _contents(primary.url, tmp_path / "var")
        assert before[0] == 2 and RESIDENT1 in before[1]

        await _caught_up(replica, primary)
        made = _daiban(env, "backup", str(folder / "backups"))
        assert made.returncode == 0, made.stderr
        assert "a base backup of" in made.stdout
        assert (await submit(client, headers)).status_code == 201  # after: not in the copy
        runs = await service.db.run_read(
            lambda s: s.execute(
                select(JobRun.worker, JobRun.error).where(JobRun.job == "backup")
            ).all()
        )
        assert [tuple(run) for run in runs] == [("daiban backup", None)]  # readiness counts it
    (backup,) = (folder / "backups").iterdir()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["method"] == "base" and manifest["database"] == "postgresql"
    assert {"base/base.tar.zst", "base/pg_wal.tar", "base/backup_manifest"} <= set(
        manifest["files"]
    )
    assert manifest["keys"]["pii"] and manifest["counts"] == {}

    refused = _daiban(env, "restore", str(backup))
    assert refused.returncode == 1
    assert "a base backup: its files and the keys check out" in refused.stderr

    # the restore as docs/operations.md gives it: the data directory from base.tar.zst, the
    # write-ahead log from pg_wal.tar; taken on the replica, it would start as a replica
    # (standby.signal, primary_conninfo): without them it starts as a primary of its own
    restored = Cluster(folder / "restored", free_port())
    restored.data.mkdir(mode=0o700)
    _unpack(backup / "base" / "base.tar.zst", restored.data, "--zstd")
    _unpack(backup / "base" / "pg_wal.tar", restored.data / "pg_wal")
    assert "BACKUP FROM: standby" in (restored.data / "backup_label").read_text()
    (restored.data / "standby.signal").unlink()
    (restored.data / "postgresql.auto.conf").write_text("")
    with (restored.data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {restored.port}\n")
    _hand_over(restored.data)
    restored.start()
    try:
        checked = _daiban(settings_env(tmp_path / "var", restored.url), "migrate")
        assert checked.returncode == 0, checked.stderr  # the keys read its personal data
        assert await _contents(restored.url, tmp_path / "var") == before
    finally:
        restored.stop()


async def _caught_up(replica: Cluster, primary: Cluster) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    first = await asyncpg.connect(primary.url.replace("+asyncpg", ""))
    second = await asyncpg.connect(replica.url.replace("+asyncpg", ""))
    try:
        written = await first.fetchval("SELECT pg_current_wal_lsn()")
        for _ in range(300):
            if await second.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", written):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the replica did not catch up in 15 s")
    finally:
        await first.close()
        await second.close()


def _hand_over(data: Path) -> None:
    """The data directory to the user the server runs as."""
    if AS_OWNER:
        for path in [data, *data.rglob("*")]:
            shutil.chown(path, "postgres", "postgres")


def _unpack(archive: Path, into: Path, *options: str) -> None:
    into.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(["tar", *options, "-xf", str(archive), "-C", str(into)], check=True)  # noqa: S603, S607


def test_a_base_backup_is_refused_on_sqlite(tmp_path: Path) -> None:
    sqlite = f"sqlite+aiosqlite:///{tmp_path}/daiban.sqlite3"
    with pytest.raises(SettingsError, match="DAIBAN_BACKUP_METHOD"):
        make_settings(tmp_path, sqlite, DAIBAN_BACKUP_METHOD="base")
