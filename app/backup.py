"""Backups that restore: `daiban backup DEST` and `daiban restore SRC`.

A backup is one dated folder: the database (SQLite through its online backup API, so the
service keeps running; PostgreSQL through `pg_dump` in the custom format, taken from the
same snapshot as the row counts), the local object store's files under `objects/`, and
`manifest.json` with the schema revision, the rows of every table, the size and SHA-256 of
every file, and fingerprints of the personal-data keys the data needs. Keys are never
written into a backup: a fingerprint is a keyed hash that tells whether a key is the same,
and nothing of the key itself.

Order: the database first, then the files. A photo deleted between the two (an upload
never attached to an order, a replaced staff photo) may be missing from the copy; a file
written after the database copy is copied without a row that refers to it. With MinIO the
files stay in the bucket (its versioning or replication keeps them); the manifest says so.

A restore goes only into an empty database and an empty object folder: it checks every
file against the manifest and the configured keys against the fingerprints before writing
anything, then restores, counts every table against the manifest, and reads the keys'
check value back (app/security/key_check.py).

A province's database is tens of gigabytes: with DAIBAN_BACKUP_METHOD=base the database
part is `pg_basebackup` of the whole cluster instead (from the read replica when there is
one), with its write-ahead log, compressed; no rows are counted (minutes at that size).
`daiban restore` checks such a backup's files and keys and stops there: it is restored with
PostgreSQL's own tools into a stopped server's data directory, as docs/operations.md shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from sqlalchemy import make_url

from app import migrate
from app.clock import utcnow
from app.db import Database
from app.models import Base
from app.security.key_check import check_keys
from app.security.pii import cipher_for
from app.settings import Settings

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE, PG_DUMP, OBJECTS = "daiban.sqlite3", "daiban.pgdump", "objects"
BASE = "base"  # pg_basebackup's files: base.tar.zst, pg_wal.tar, backup_manifest
FINGERPRINT_MESSAGE = b"daiban key fingerprint"
COUNT = 'SELECT count(*) FROM "{table}"'  # our own table names, from the metadata
REVISION = "SELECT version_num FROM alembic_version"
FOLDER = re.compile(r"daiban-\d{8}-\d{6}")


class BackupError(Exception):
    """One line for the operator: what is wrong, and that nothing was written."""


@dataclass(frozen=True)
class BackupDone:
    folder: Path
    rows: int  # in every table together (not counted in a base backup)
    files: int  # of the object store
    method: str  # dump or base
    database_bytes: int  # the database's files in the backup


def key_fingerprints(settings: Settings) -> dict[str, Any]:
    """Keyed hashes that tell whether a configured key is the one a backup needs."""
    ring = settings.pii_key_ring()
    return {
        "pii": {kid: _fingerprint(key) for kid, key in ring.items()},
        "hash": _fingerprint(settings.security.pii_hash_key.encode()),
    }


def _fingerprint(key: bytes) -> str:
    return hmac.new(key, FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:32]


# --- backup ------------------------------------------------------------------------------


async def backup(settings: Settings, dest: Path, now: datetime) -> BackupDone:
    """Write a backup into a new folder under `dest`. The file work runs in worker threads,
    so a service's event loop may run it too."""
    folder = dest / f"daiban-{now.astimezone(settings.zone):%Y%m%d-%H%M%S}"
    await anyio.to_thread.run_sync(_new_folder, folder)
    url = make_url(settings.database_url)
    kind = url.get_backend_name()
    method = settings.backup.method  # base only on PostgreSQL (settings check it)
    try:
        if kind == "sqlite":
            counts, revision = await anyio.to_thread.run_sync(
                _sqlite_backup, Path(url.database or ""), folder / SQLITE_FILE
            )
            database_files = [SQLITE_FILE]
        elif method == "base":
            source = settings.database.replica_url or settings.database_url
            counts, revision = {}, await _pg_revision(_libpq(settings.database_url))
            database_files = await _pg_base_backup(_libpq(source), folder, now)
        else:
            counts, revision = await _pg_backup(_libpq(settings.database_url), folder / PG_DUMP)
            database_files = [PG_DUMP]
        files = (
            await anyio.to_thread.run_sync(_copy_objects, settings, folder)
            if settings.storage.backend == "local"
            else {}
        )
        database = {
            name: await anyio.to_thread.run_sync(_describe, folder / name)
            for name in database_files
        }
        manifest = {
            "format": FORMAT,
            "createdAt": now.isoformat(),
            "database": kind,
            "method": method,
            "revision": revision,
            "counts": counts,
            "storage": settings.storage.backend,
            "bucket": settings.storage.minio_bucket
            if settings.storage.backend == "minio"
            else None,
            "keys": key_fingerprints(settings),
            "files": database | files,
        }
        text = json.dumps(manifest, ensure_ascii=False, indent=1)
        await anyio.to_thread.run_sync((folder / MANIFEST).write_text, text)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return BackupDone(
        folder=folder,
        rows=sum(counts.values()),
        files=len(files),
        method=method,
        database_bytes=sum(d["size"] for d in database.values()),
    )


def _new_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        raise BackupError(f"{folder} already exists; nothing was written") from None


def _sqlite_backup(source: Path, target: Path) -> tuple[dict[str, int], str | None]:
    """SQLite's online backup: a consistent copy while the service writes; the copy's
    rows per table and schema revision."""
    src, out = sqlite3.connect(source, timeout=30), sqlite3.connect(target)
    try:
        src.backup(out)
        counts = {t: out.execute(COUNT.format(table=t)).fetchone()[0] for t in _tables()}
        return counts, out.execute(REVISION).fetchone()[0]
    finally:
        src.close()
        out.close()


async def _pg_backup(dsn: str, target: Path) -> tuple[dict[str, int], str | None]:
    """pg_dump from the snapshot the row counts and the revision are read from too."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            counts = {t: await conn.fetchval(COUNT.format(table=t)) for t in _tables()}
            revision = await conn.fetchval(REVISION)
            done = await _run(
                "pg_dump",
                "--format=custom",
                "--no-owner",
                f"--snapshot={snapshot}",
                f"--file={target}",
                f"--dbname={dsn}",
            )
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip()[-300:]}")
    finally:
        await conn.close()
    return counts, revision


async def _pg_revision(dsn: str) -> str | None:
    conn = await asyncpg.connect(dsn)
    try:
        revision: str | None = await conn.fetchval(REVISION)
    finally:
        await conn.close()
    return revision


async def _pg_base_backup(dsn: str, folder: Path, now: datetime) -> list[str]:
    """pg_basebackup of the cluster at `dsn` into folder/base (tar, zstd-compressed on this
    machine, the write-ahead log streamed alongside so the copy is consistent on its own);
    the names of its files, relative to `folder`. The role needs the REPLICATION attribute
    and pg_hba.conf a replication line for this machine."""
    target = folder / BASE
    done = await _run(
        "pg_basebackup",
        f"--dbname={dsn}",
        f"--pgdata={target}",
        "--format=tar",
        "--wal-method=stream",
        "--compress=client-zstd:1",
        "--checkpoint=fast",
        f"--label=daiban-{now:%Y%m%d-%H%M%S}",
        "--no-password",
    )
    if done.returncode != 0:
        raise BackupError(f"pg_basebackup failed: {done.stderr.strip()[-300:]}")
    return sorted(f"{BASE}/{path.name}" for path in target.iterdir())


def _copy_objects(settings: Settings, folder: Path) -> dict[str, dict[str, Any]]:
    root, files = settings.local_storage_dir, {}
    if not root.exists():
        return {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):  # half-written files are .*.tmp
            continue
        name = f"{OBJECTS}/{path.relative_to(root).as_posix()}"
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, target)
        except FileNotFoundError:
            continue  # removed since it was listed
        files[name] = _describe(target)
    return files


def prune(dest: Path, keep_daily: int, keep_monthly: int) -> list[Path]:
    """Keep the newest backup of each of the last `keep_daily` days that have one and of
    each of the last `keep_monthly` months; remove the other backup folders (only folders
    named as this module names them, with a manifest). The folders removed, newest first."""
    found = sorted(
        (
            path
            for path in dest.iterdir()
            if path.is_dir() and FOLDER.fullmatch(path.name) and (path / MANIFEST).is_file()
        ),
        key=lambda path: path.name,
        reverse=True,
    )
    days: set[str] = set()
    months: set[str] = set()
    keep = set()
    for path in found:  # newest first: the first seen of a day or a month is its newest
        day = path.name.split("-")[1]
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(path)
        if day[:6] not in months and len(months) < keep_monthly:
            months.add(day[:6])
            keep.add(path)
    removed = [path for path in found if path not in keep]
    for path in removed:
        shutil.rmtree(path)
    return removed


# --- restore -----------------------------------------------------------------------------


async def restore(settings: Settings, source: Path) -> dict[str, Any]:
    """Restore `source` into the configured, empty database and object folder; the
    manifest. Raises BackupError, having written nothing, when anything does not fit."""
    manifest = await anyio.to_thread.run_sync(_read_manifest, source)
    await anyio.to_thread.run_sync(_check_files, source, manifest)
    _check_keys(settings, manifest)
    if manifest.get("method") == "base":
        raise BackupError(
            "a base backup: its files and the keys check out, and it is restored with"
            " PostgreSQL's own tools into a stopped server (docs/operations.md, Backups);"
            " nothing was written"
        )
    url = make_url(settings.database_url)
    if url.get_backend_name() != manifest["database"]:
        raise BackupError(
            f"the backup is of {manifest['database']}, DAIBAN_DATABASE_URL is"
            f" {url.get_backend_name()}; nothing was written"
        )
    objects = settings.local_storage_dir
    if manifest["storage"] == "local":
        await anyio.to_thread.run_sync(_require_empty_folder, objects)
    if url.get_backend_name() == "sqlite":
        await anyio.to_thread.run_sync(
            _restore_sqlite_file, source / SQLITE_FILE, Path(url.database or "")
        )
    else:
        dsn = _libpq(settings.database_url)
        conn = await asyncpg.connect(dsn)
        try:
            tables = await conn.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            )
        finally:
            await conn.close()
        if tables:
            raise BackupError("the database has tables; restore into an empty database")
        done = await _run(
            "pg_restore",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={dsn}",
            str(source / PG_DUMP),
        )
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip()[-300:]}")
    await anyio.to_thread.run_sync(_restore_objects, source, manifest, objects)
    await _verify(settings, manifest)
    return manifest


def _require_empty_folder(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty; restore into an empty folder")


def _restore_sqlite_file(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size > 0:
        raise BackupError(f"{target} exists; restore into an empty var directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _restore_objects(source: Path, manifest: dict[str, Any], objects: Path) -> None:
    for name in manifest["files"]:
        if name.startswith(f"{OBJECTS}/"):
            target = objects / name.removeprefix(f"{OBJECTS}/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target)


def _read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(
            f"{source / MANIFEST} is missing or unreadable; nothing was written"
        ) from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}; nothing was written")
    return manifest


def _check_files(source: Path, manifest: dict[str, Any]) -> None:
    for name, expected in manifest["files"].items():
        path = source / name
        if not path.is_file() or _describe(path) != expected:
            raise BackupError(f"{name} is missing or damaged (checksum); nothing was written")


def _check_keys(settings: Settings, manifest: dict[str, Any]) -> None:
    configured, needed = key_fingerprints(settings), manifest["keys"]
    missing = [kid for kid, print_ in needed["pii"].items() if configured["pii"].get(kid) != print_]
    if missing:
        raise BackupError(
            f"DAIBAN_SECURITY_PII_KEYS: the backup needs the key(s) {', '.join(missing)}"
            " it was made with; nothing was written"
        )
    if configured["hash"] != needed["hash"]:
        raise BackupError(
            "DAIBAN_SECURITY_PII_HASH_KEY: not the key the backup was made with;"
            " nothing was written"
        )


async def _verify(settings: Settings, manifest: dict[str, Any]) -> None:
    """Every table holds the rows the manifest counted; the keys read the data back; the
    schema is brought to this release's revision."""
    db = Database(settings)
    cipher = cipher_for(settings)
    try:
        counts = await db.run_read(
            lambda s: {
                t: s.connection().exec_driver_sql(COUNT.format(table=t)).scalar()
                for t in manifest["counts"]  # the tables as they were backed up
            }
        )
        wrong = [t for t, n in manifest["counts"].items() if counts.get(t) != n]
        if wrong:
            raise BackupError(
                f"restored, but the rows of {', '.join(wrong)} differ from the manifest"
            )
        await migrate.upgrade(db, then=lambda session: check_keys(session, cipher, utcnow()))
    finally:
        await db.dispose()


# --- helpers -----------------------------------------------------------------------------


def _tables() -> list[str]:
    return [table.name for table in Base.metadata.sorted_tables]


def _describe(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def _libpq(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _run(*command: str) -> subprocess.CompletedProcess[str]:
    """A PostgreSQL client program (pg_dump, pg_restore, pg_basebackup) in a worker thread."""
    return await anyio.to_thread.run_sync(
        lambda: subprocess.run(  # noqa: S603 - fixed programs, arguments we build
            list(command), capture_output=True, text=True, env=os.environ.copy(), check=False
        )
    )
