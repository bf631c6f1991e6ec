"""The `daiban` command: serve, migrate, setup, seed-demo, worker, config, catalogue,
backup, restore, makemigration."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from datetime import datetime
from pathlib import Path

from app.settings import Settings, SettingsError, all_env_names, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="daiban", description="帮办代办 backend")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="migrate, seed demo data (dev), serve with granian")
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("seed-demo", help="insert the demo data unless data exists")
    commands.add_parser("worker", help="run the scheduled jobs alone")
    commands.add_parser("config", help="list every DAIBAN_* variable and its default")
    catalogue = commands.add_parser("catalogue", help="import or export the service catalogue")
    catalogue.add_argument("action", choices=["import", "export"])
    catalogue.add_argument("file", help="import: .yaml or .xlsx; export: .xlsx or .yaml")
    setup = commands.add_parser(
        "setup", help="first day: load the region tree, create the first admin"
    )
    setup.add_argument(
        "--regions", type=Path, help="the district's division codes (统计用区划代码): .csv or .xlsx"
    )
    setup.add_argument("--first-admin", metavar="NAME", help="create the first admin, print a code")
    setup.add_argument(
        "--district", metavar="CODE", help="the district's 12-digit code (default: the file's)"
    )
    backup = commands.add_parser("backup", help="write a dated backup folder under DEST")
    backup.add_argument("dest", type=Path)
    restore = commands.add_parser("restore", help="restore a backup folder into an empty setup")
    restore.add_argument("source", type=Path)
    rotate = commands.add_parser(
        "rotate-keys", help="re-encrypt personal data with the first of DAIBAN_SECURITY_PII_KEYS"
    )
    rotate.add_argument("--batch", type=int, default=500, help="accounts per transaction")
    make = commands.add_parser("makemigration", help="(developers) autogenerate a migration")
    make.add_argument("message")
    args = parser.parse_args(argv)

    if args.command == "config":
        for name, default in all_env_names():
            print(f"{name}={default}")
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"daiban: bad setting: {exc}", file=sys.stderr)
        return 2
    from app.logs import configure_logging

    configure_logging(settings.core.log_level, settings.core.log_format)
    from app.security.key_check import KeysMismatch

    try:
        return _run(args, settings)
    except KeysMismatch as exc:
        print(f"daiban: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "seed-demo":
        if not settings.is_dev:
            print("daiban seed-demo: production refuses demo data (its logins are dev: codes)")
            return 2
        asyncio.run(_migrate(settings))
        asyncio.run(_seed(settings, announce=True))
    elif args.command == "makemigration":
        asyncio.run(_makemigration(settings, args.message))
    elif args.command == "catalogue":
        return asyncio.run(_catalogue(settings, args.action, Path(args.file)))
    elif args.command == "setup":
        if args.regions is None and args.first_admin is None:
            print("daiban setup: give --regions FILE, --first-admin NAME, or both", file=sys.stderr)
            return 2
        return asyncio.run(_setup(settings, args.regions, args.first_admin, args.district))
    elif args.command == "worker":
        from jobs.__main__ import run_worker

        asyncio.run(run_worker(settings))
    elif args.command == "serve":
        return _serve(settings)
    elif args.command == "rotate-keys":
        return asyncio.run(_rotate_keys(settings, max(1, args.batch)))
    elif args.command in ("backup", "restore"):
        return asyncio.run(_backup(settings, args))
    return 0


async def _migrate(settings: Settings) -> None:
    """Migrate, then check the personal-data keys against the database (KeysMismatch)."""
    from app import migrate
    from app.clock import utcnow
    from app.db import Database
    from app.security.key_check import check_keys
    from app.security.pii import cipher_for

    db = Database(settings)
    cipher = cipher_for(settings)
    try:
        await migrate.upgrade(db, then=lambda session: check_keys(session, cipher, utcnow()))
    finally:
        await db.dispose()


async def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from app.backup import BackupError, backup, restore
    from app.clock import utcnow

    try:
        if args.command == "backup":
            started = utcnow()
            done = await backup(settings, args.dest, started)
            await _record_backup(settings, started, done.rows)
            what = (
                f"a base backup of {done.database_bytes / 2**20:,.0f} MiB"
                if done.method == "base"
                else f"{done.rows} rows"
            )
            print(f"backup written: {done.folder} ({what}, {done.files} files)")
        else:
            manifest = await restore(settings, args.source)
            rows = sum(manifest["counts"].values())
            print(f"restored {args.source} (made {manifest['createdAt']}): {rows} rows checked")
    except BackupError as exc:
        print(f"daiban {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _rotate_keys(settings: Settings, batch: int) -> int:
    """Batch after batch, each its own transaction, until nothing is left under an older
    key: stopped at any point, run again to go on. Audited."""
    from app import audit
    from app.clock import utcnow
    from app.db import Database
    from app.security.key_check import rotate_batch, stale_values
    from app.security.pii import cipher_for

    await _migrate(settings)  # also checks that these keys read the database
    db = Database(settings)
    cipher = cipher_for(settings)
    key, total = cipher.current_kid, 0
    try:
        while changed := await db.run_write(lambda s: rotate_batch(s, cipher, batch)):
            total += changed
            print(f"  {total} values re-encrypted with key {key}")
        left = await db.run_read(lambda s: stale_values(s, cipher))
        detail = {"key": key, "values": total, "rowsLeft": left}
        await db.run_write(
            lambda s: audit.record(s, None, "keys.rotate", f"key:{key}", utcnow(), detail)
        )
    finally:
        await db.dispose()
    if left:
        print(
            f"{left} rows (accounts, complaints, pre-reviews) still have values under older"
            " keys (written meanwhile by a"
            " service with another first key): give every service the new key first, then"
            " run again"
        )
        return 1
    older = ", ".join(kid for kid in settings.pii_key_ring() if kid != key)
    print(f"done: {total} values re-encrypted; every value is under key {key}.")
    if older:
        print(f"{older} may be removed from DAIBAN_SECURITY_PII_KEYS once no backup made")
        print("with it is kept (a restore needs the keys its backup was made with).")
    return 0


async def _record_backup(settings: Settings, started: datetime, rows: int) -> None:
    """A backup made by hand counts as the job's run (/admin/jobs, readiness)."""
    from app.clock import utcnow
    from app.db import Database
    from app.models import JobRun

    db = Database(settings)
    run = JobRun(
        job="backup", worker="daiban backup", started_at=started, finished_at=utcnow(), items=rows
    )
    try:
        await db.run_write(lambda session: session.add(run))
    finally:
        await db.dispose()


async def _makemigration(settings: Settings, message: str) -> None:
    from app import migrate
    from app.db import Database

    db = Database(settings)
    try:
        await migrate.upgrade(db)
        await migrate.autogenerate(db, message)
    finally:
        await db.dispose()


async def _seed(settings: Settings, *, announce: bool) -> None:
    from app.context import Context
    from app.demo import demo_people, seed_demo

    ctx = Context.build(settings)
    try:
        created = await ctx.db.run_write(lambda session: seed_demo(session, ctx))
        if announce or created is not None:
            print("demo data created" if created is not None else "demo data already present")
        people = await ctx.db.run_read(demo_people)
    finally:
        await ctx.aclose()
    if people:
        print('demo logins (POST /mp/v1/auth/login {"code": "dev:<handle>"}):')
        for p in people:
            print(f"  dev:{p.handle:<13} {p.role:<10} {p.name} · {p.where}")


async def _catalogue(settings: Settings, action: str, path: Path) -> int:
    from app.catalogue import document as doc
    from app.catalogue.service import export_document, import_document, read_file
    from app.db import Database

    db = Database(settings)
    try:
        if action == "export":
            exported = await db.run_long_read(export_document)
            data = (
                doc.dump_yaml(exported)
                if path.suffix in (".yaml", ".yml")
                else doc.write_xlsx(exported)
            )
            path.write_bytes(data)  # noqa: ASYNC240 - a one-shot command, nothing else runs
            print(f"exported {len(exported.items)} items to {path}")
            return 0
        try:
            raw = path.read_bytes()  # noqa: ASYNC240 - a one-shot command, nothing else runs
            document = await read_file(db, raw, path.name)
            counts = await db.run_write(
                lambda session: import_document(
                    session, document, actor_id=None, enable_within=None
                )
            )
        except doc.DocumentInvalid as exc:
            print(f"nothing imported: {len(exc.problems)} problems", file=sys.stderr)
            for p in exc.problems:
                print(f"  {p.row}  {p.field}: {p.message}", file=sys.stderr)
            return 1
        print("imported: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    finally:
        await db.dispose()


async def _setup(
    settings: Settings, regions: Path | None, admin_name: str | None, district: str | None
) -> int:
    """Migrate, then load the region file and/or create the first admin; every problem of
    the file is printed with its row, and nothing is written then."""
    from app import errors
    from app.accounts.staff import first_admin
    from app.context import Context
    from app.regions.division_codes import RegionsInvalid, load_regions, read_regions

    await _migrate(settings)
    ctx = Context.build(settings)
    try:
        if regions is not None:
            try:
                rows = read_regions(regions.read_bytes(), regions.name)  # noqa: ASYNC240
                loaded = await ctx.db.run_write(lambda s: load_regions(s, rows, ctx.now()))
            except RegionsInvalid as exc:
                print(f"nothing loaded: {len(exc.problems)} problems", file=sys.stderr)
                for p in exc.problems:
                    print(f"  row {p.row}  {p.field}: {p.message}", file=sys.stderr)
                return 1
            district = district or rows[0].code
            print(
                f"regions of {loaded.district}: {loaded.added} added, {loaded.renamed} renamed,"
                f" {loaded.restored} brought back, {loaded.unchanged} unchanged"
            )
            for title, listed in (
                ("removed, not in the file", loaded.removed),
                (
                    "retired, not in the file but in use (orders, staff or residents)",
                    loaded.retired,
                ),
            ):
                if listed:
                    print(f"{title} ({len(listed)}):")
                    for region in listed:
                        print(f"  {region}")
        if admin_name is not None:
            if district is None:
                print("daiban setup: --first-admin needs --district CODE or --regions FILE")
                return 2
            code = district
            try:
                created = await ctx.db.run_write(lambda s: first_admin(s, ctx, code, admin_name))
            except errors.DomainError as exc:
                print(f"daiban setup: {exc.detail}", file=sys.stderr)
                for problem in exc.extra.get("errors", []):
                    print(f"  {problem['field']}: {problem['message']}", file=sys.stderr)
                return 1
            hours = settings.security.binding_code_ttl_hours
            print(f"first admin {created.staff.name}: binding code {created.binding_code}")
            print(
                f"  valid {hours} h, once: log in to the mini-program with WeChat, then enter"
                " it (绑定工作人员账号; POST /mp/v1/auth/bind-staff)"
            )
    finally:
        await ctx.aclose()
    return 0


def port_taken(host: str, port: int) -> str | None:
    """Why the address cannot be served, or None. granian binds with SO_REUSEPORT, so a second
    service on a busy port would start and the kernel would split the traffic between the two;
    a plain bind (no SO_REUSEPORT) fails instead while anything listens there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR passes a port left in TIME_WAIT by a stopped service, not a listener.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"cannot serve on {host}:{port}: {exc.strerror} (is daiban already running?)"
    return None


WORKERS_KILL_SECONDS = 40


def _serve(settings: Settings) -> int:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import Server

    from app.logs import granian_log_config

    problem = port_taken(settings.server.host, settings.server.port)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    Path(settings.core.var_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(_migrate(settings))
    if settings.core.demo_data:
        asyncio.run(_seed(settings, announce=False))
    base = f"http://{settings.server.host}:{settings.server.port}"
    print(f"daiban serving on {base}  (API under {base}/mp/v1)")
    print(f"OpenAPI docs: {base}/schema   JSON: {base}/schema/openapi.json")
    print(f"Town-centre console: {base}/console")
    Server(
        "app.asgi:app_from_env",
        address=settings.server.host,
        port=settings.server.port,
        interface=Interfaces.ASGI,
        workers=settings.server.workers,
        factory=True,
        log_access=False,
        log_level=LogLevels(settings.core.log_level.lower()),
        log_dictconfig=granian_log_config(settings.core.log_level, settings.core.log_format),
        # A worker still running this long after SIGTERM is killed, so that the server
        # always ends: now and then granian's own stop handler never runs in a worker sent
        # SIGTERM, and it goes on serving (granian 2.8.9; docs/deployment.md). Past the
        # jobs' stop grace (jobs/scheduler.py: 30 s, then 5 s for the cancelled), short of
        # the systemd units' TimeoutStopSec=45.
        workers_kill_timeout=WORKERS_KILL_SECONDS,
    ).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
