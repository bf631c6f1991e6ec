"""Settings: one msgspec Struct per area, read from DAIBAN_* variables and validated at start."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import zoneinfo
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import msgspec

DEV_SECRETS_FILE = "dev-secrets.json"


class SettingsError(Exception):
    """A bad or missing setting; the message is one line naming the variable."""


class CoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    env: Literal["dev", "prod"] = "dev"
    timezone: str = "Asia/Shanghai"
    var_dir: str = "var"
    demo_data: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = msgspec.field(default=8000)
    workers: int = 1
    max_body_bytes: int = 1_048_576
    # The API description and its docs page at /schema: "auto" serves them in dev only.
    api_docs: Literal["auto", "on", "off"] = "auto"
    # Addresses of reverse proxies (nginx) whose X-Real-IP header names the client; from any
    # other peer the header is ignored. Comma-separated, e.g. "127.0.0.1,::1".
    trusted_proxies: str = ""
    # /metrics for Prometheus answers only a bearer of this token (at least 32 characters);
    # empty: no /metrics at all.
    metrics_token: str = ""


class LimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Requests per minute; over the limit the answer is 429 with Retry-After. 0: no limit."""

    login_per_address: int = 60  # many phones share a carrier's address: keep it generous
    login_per_account: int = 10
    refresh_per_address: int = 120
    orders_per_account: int = 20  # submissions and agent-entered orders
    complaints_per_account: int = 5
    uploads_per_account: int = 60  # upload forms: an order may need a dozen photos
    # Where counts are kept: empty keeps them in each process (one worker); with several
    # workers or servers, a Redis URL (redis://127.0.0.1:6379/0) shares them.
    redis_url: str = ""


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    # Empty means the embedded default: a SQLite file under the var directory.
    url: str = ""
    pool_size: int = 10
    echo: bool = False
    # PostgreSQL: a pooled connection idle this long is pinged before use (a restarted
    # server or a firewall that drops idle connections); busier ones are not.
    ping_idle_seconds: int = 10
    # How long a unit of work waits for a connection of a full pool (and, on PostgreSQL,
    # a long read for its turn) before the request is answered 503 `database_busy`.
    wait_seconds: int = 30
    # PostgreSQL: a read replica (hot standby) for the reads that may lag a moment behind
    # the primary: figures and satisfaction over a period, ledger exports. Empty: all
    # reads go to DAIBAN_DATABASE_URL.
    replica_url: str = ""


class SecuritySettings(msgspec.Struct, frozen=True, kw_only=True):
    # Empty values are generated in dev mode (and kept under var/); prod refuses them.
    secret_key: str = ""
    # "kid:base64key,kid2:base64key": the first key encrypts, all keys decrypt.
    pii_keys: str = ""
    pii_hash_key: str = ""
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_days: int = 30
    binding_code_ttl_hours: int = 72
    # Live logins (phones) per account; a new login ends the oldest beyond this.
    max_logins_per_account: int = 5


class WeChatSettings(msgspec.Struct, frozen=True, kw_only=True):
    mode: Literal["dev", "live"] = "dev"
    app_id: str = ""
    app_secret: str = ""
    base_url: str = "https://api.weixin.qq.com"
    timeout_seconds: float = 5.0
    # One-time subscription templates per notification kind, as JSON:
    # {"accepted": {"id": "<template id>", "fields": {"character_string1": "number",
    #  "thing2": "item", "time3": "dueAt"}}}; kinds without one go to the inbox only.
    templates: str = ""
    miniprogram_state: Literal["formal", "trial", "developer"] = "formal"
    order_page: str = "pages/order/detail"  # opened from a message, with ?id=<order>


class StorageSettings(msgspec.Struct, frozen=True, kw_only=True):
    backend: Literal["local", "minio"] = "local"
    # Local backend: files live here (empty: <var dir>/objects); phones reach the service at
    # public_url to post files and fetch signed downloads.
    local_dir: str = ""
    public_url: str = "http://127.0.0.1:8000"
    minio_endpoint: str = "127.0.0.1:9000"
    minio_public_endpoint: str = ""  # empty: same as minio_endpoint
    minio_secure: bool = False
    minio_public_secure: bool = False
    minio_access_key: str = ""
    minio_secret_key: str = ""
    minio_bucket: str = "daiban"
    minio_region: str = "us-east-1"
    max_upload_bytes: int = 10_485_760
    upload_url_ttl_seconds: int = 600
    download_url_ttl_seconds: int = 300
    pending_uploads_per_person: int = 30
    upload_bytes_per_person_per_day: int = 209_715_200
    unattached_upload_ttl_hours: int = 24


class UploadSettings(msgspec.Struct, frozen=True, kw_only=True):
    # 语音留言: a voice note is at most this big and this long (the mini-program's recorder
    # stops at 60 seconds unless told otherwise; 60 s of its MP3 at 48 kbit/s is 360 kB).
    max_voice_bytes: int = 2_097_152
    max_voice_seconds: int = 60
    # 材料夹: a kept document expires this many days after it was kept (and never after its
    # own validity when the resident gives it).
    wallet_days: int = 365


class PrereviewSettings(msgspec.Struct, frozen=True, kw_only=True):
    """智能预审 (app/uploads/prereviews.py): photos declared as identity documents are read by a
    job on the server itself."""

    enabled: bool = True  # false: nothing is read, every such photo says 未预审
    seconds: int = 3  # how often the job looks for photos to read
    # At most this many photos wait to be read; one completed while the queue is full says
    # 未预审 (排队预审的照片太多) and is looked at by the agent as before.
    max_backlog: int = 200


class SchedulerSettings(msgspec.Struct, frozen=True, kw_only=True):
    # "in-process" runs jobs inside the API process; "off" leaves them to `daiban worker`.
    mode: Literal["in-process", "off"] = "in-process"
    tick_seconds: int = 60  # how often due reminders are looked for
    delivery_seconds: int = 10  # how often queued WeChat messages are sent
    delivery_batch: int = 50
    # Messages one worker has in flight to WeChat at once; each waits ~50-100 ms for its
    # answer, so this bounds a worker's rate (at most 20 × this a second at 50 ms), and a
    # worker killed mid-send leaves up to this many uncertain (never sent twice).
    delivery_concurrency: int = 64
    delivery_max_attempts: int = 6  # transient failures, with growing back-off
    # Working hours: reminders to staff are sent inside them, never on rest days.
    workday_start: str = "09:00"
    workday_end: str = "17:00"
    take_remind_working_hours: int = 2  # assigned, not taken: remind the agent
    take_escalate_working_days: int = 1  # still not taken: tell the dispatcher, pass to B
    due_soon_working_days: int = 1  # 催办 this long before the due time
    supplement_remind_days: int = 3  # nothing supplemented: remind the resident
    supplement_expire_days: int = 30  # still nothing: cancel the order with a notice
    cleanup_at: str = "03:10"  # daily clean-up of abandoned uploads (business time)


class RatingSettings(msgspec.Struct, frozen=True, kw_only=True):
    window_days: int = 7  # natural days after hand-back; then the default rating is recorded
    remind_days: int = 3  # a reminder to rate after this many days
    default_grade: int = 3  # 基本满意 (Guangdong's rule)
    rectify_working_days: int = 15  # a bad rating's case must answer the resident within this
    rectify_remind_working_days: int = 2  # remind the dispatchers this long before
    # A complaint is answered 当日或次日 (seed 002): by the end of the next natural day, or of
    # the next working day ("working": a Friday complaint on Monday).
    complaint_next_day: Literal["natural", "working"] = "natural"


class BackupSettings(msgspec.Struct, frozen=True, kw_only=True):
    # Where the nightly backup job writes (empty: no scheduled backups; `daiban backup`
    # still works); the folder must not be inside the var directory it backs up.
    dir: str = ""
    at: str = "02:30"  # business time
    keep_daily: int = 7  # the newest backup of each of the last N days with one
    keep_monthly: int = 12  # and the newest of each of the last M months with one
    max_age_hours: int = 36  # readiness fails when the newest backup is older
    # dump: pg_dump (PostgreSQL) or SQLite's copy, restored by `daiban restore`. base:
    # pg_basebackup of the whole PostgreSQL cluster, from the replica when there is one,
    # restored with PostgreSQL's own tools (a province's tens of gigabytes).
    method: Literal["dump", "base"] = "dump"


class RetentionSettings(msgspec.Struct, frozen=True, kw_only=True):
    # How long personal data is kept (docs/operations.md, "Personal data and retention").
    order_files_days: int = 180  # an order's photos and files, from when it ended
    audit_years: int = 3  # the audit log (at least 1: the database refuses younger removals)
    idle_account_days: int = 1095  # a resident unseen this long, with nothing open, is closed
    at: str = "03:40"  # the daily retention run (business time)


class ConsoleSettings(msgspec.Struct, frozen=True, kw_only=True):
    # The town-centre console at /console (docs/console.md): its browser sessions.
    session_idle_minutes: int = 30  # signed out after this long without a page or action
    session_hours: int = 12  # and after this long in any case (a working day and more)
    sign_in_seconds: int = 120  # how long a sign-in QR code can be confirmed on a phone


class OrderSettings(msgspec.Struct, frozen=True, kw_only=True):
    # 绿色通道 (老弱病残孕): a resident this old or older by the birth date in the ID number
    # on their profile is flagged at submission (0: only as declared or set by the agent).
    green_channel_age: int = 70
    # 提出异议: the working days a disputed order's reopened work is due in, counted like a
    # promised limit from the day of the dispute (the day itself not counted).
    dispute_days: int = 5


AREAS: dict[str, type[msgspec.Struct]] = {
    "": CoreSettings,
    "server": ServerSettings,
    "database": DatabaseSettings,
    "security": SecuritySettings,
    "wechat": WeChatSettings,
    "storage": StorageSettings,
    "uploads": UploadSettings,
    "prereview": PrereviewSettings,
    "scheduler": SchedulerSettings,
    "ratings": RatingSettings,
    "limits": LimitSettings,
    "backup": BackupSettings,
    "retention": RetentionSettings,
    "console": ConsoleSettings,
    "orders": OrderSettings,
}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    core: CoreSettings = msgspec.field(default_factory=CoreSettings)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    security: SecuritySettings = msgspec.field(default_factory=SecuritySettings)
    wechat: WeChatSettings = msgspec.field(default_factory=WeChatSettings)
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    uploads: UploadSettings = msgspec.field(default_factory=UploadSettings)
    prereview: PrereviewSettings = msgspec.field(default_factory=PrereviewSettings)
    scheduler: SchedulerSettings = msgspec.field(default_factory=SchedulerSettings)
    ratings: RatingSettings = msgspec.field(default_factory=RatingSettings)
    limits: LimitSettings = msgspec.field(default_factory=LimitSettings)
    backup: BackupSettings = msgspec.field(default_factory=BackupSettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    orders: OrderSettings = msgspec.field(default_factory=OrderSettings)

    @property
    def is_dev(self) -> bool:
        return self.core.env == "dev"

    @property
    def serves_api_docs(self) -> bool:
        return self.server.api_docs == "on" or (self.server.api_docs == "auto" and self.is_dev)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{Path(self.core.var_dir) / 'daiban.sqlite3'}"

    @property
    def local_storage_dir(self) -> Path:
        return Path(self.storage.local_dir or Path(self.core.var_dir) / "objects")

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.core.timezone)

    def pii_key_ring(self) -> dict[str, bytes]:
        return parse_pii_keys(self.security.pii_keys)

    def templates(self) -> dict[str, Template]:
        return parse_templates(self.wechat.templates)

    @property
    def working_hours(self) -> tuple[time, time]:
        return (
            time.fromisoformat(self.scheduler.workday_start),
            time.fromisoformat(self.scheduler.workday_end),
        )


def env_name(area: str, field: str) -> str:
    return "DAIBAN_" + (f"{area}_{field}" if area else field).upper()


def all_env_names() -> list[tuple[str, Any]]:
    """Every variable with its default, for docs/operations.md and `daiban config`."""
    names = []
    for area, cls in AREAS.items():
        defaults = cls()
        for field in msgspec.structs.fields(cls):
            names.append((env_name(area, field.name), getattr(defaults, field.name)))
    return names


def _area_from_env(area: str, cls: type[msgspec.Struct], environ: Mapping[str, str]) -> Any:
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = env_name(area, field.name)
        if name in environ:
            raw = environ[name]
            values[field.name] = _coerce_bool(raw) if field.type is bool else raw
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec says "... - at `$.port`"; turn the path back into the variable name.
        message = str(exc)
        field_name = message.rsplit("$.", 1)[-1].rstrip("`") if "$." in message else ""
        variable = env_name(area, field_name) if field_name else f"DAIBAN_{area.upper()}_*"
        reason = message.split(" - at ")[0]
        raise SettingsError(f"{variable}: {reason} (got {values.get(field_name)!r})") from None


def _coerce_bool(raw: str) -> bool | str:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    return raw  # msgspec reports it as not a bool, naming the variable


def parse_pii_keys(spec: str) -> dict[str, bytes]:
    ring: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, b64 = part.partition(":")
        if not sep or not kid:
            raise SettingsError("DAIBAN_SECURITY_PII_KEYS: each key must be written kid:base64key")
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError:
            raise SettingsError(f"DAIBAN_SECURITY_PII_KEYS: key {kid!r} is not base64") from None
        if len(key) != 32:
            raise SettingsError(f"DAIBAN_SECURITY_PII_KEYS: key {kid!r} must be 32 bytes (AES-256)")
        ring[kid] = key
    return ring


def _clock_time(name: str, value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise SettingsError(f"{name}: write a time of day as HH:MM (got {value!r})") from None


class Template(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A one-time subscription template: its id and which message value fills each field."""

    id: str
    fields: dict[str, str]


def http_address(url: str) -> SplitResult | None:
    """`url` split into its parts when it is an http:// or https:// address with a host
    (DAIBAN_WECHAT_BASE_URL's rule, checked here and by the WeChat client); else None."""
    parts = urlsplit(url)
    return parts if parts.scheme in ("http", "https") and parts.hostname else None


def parse_templates(spec: str) -> dict[str, Template]:
    if not spec.strip():
        return {}
    try:
        return msgspec.json.decode(spec, type=dict[str, Template])
    except msgspec.DecodeError as exc:
        raise SettingsError(f"DAIBAN_WECHAT_TEMPLATES: {exc}") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every area; fill dev secrets; refuse dev defaults in production."""
    environ = os.environ if environ is None else environ
    unknown = sorted(
        k
        for k in environ
        if k.startswith("DAIBAN_") and k not in {name for name, _ in all_env_names()}
    )
    if unknown:
        raise SettingsError(f"{unknown[0]}: unknown setting")
    areas = {area or "core": _area_from_env(area, cls, environ) for area, cls in AREAS.items()}
    settings = Settings(**areas)
    return validate(settings)


def validate(settings: Settings) -> Settings:
    try:
        zoneinfo.ZoneInfo(settings.core.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"DAIBAN_TIMEZONE: unknown time zone {settings.core.timezone!r}"
        ) from None
    if not 1 <= settings.server.port <= 65535:
        raise SettingsError(f"DAIBAN_SERVER_PORT: must be 1-65535 (got {settings.server.port})")
    for name, value in (
        ("DAIBAN_SERVER_WORKERS", settings.server.workers),
        ("DAIBAN_SERVER_MAX_BODY_BYTES", settings.server.max_body_bytes),
        ("DAIBAN_SECURITY_ACCESS_TOKEN_TTL_SECONDS", settings.security.access_token_ttl_seconds),
        ("DAIBAN_SECURITY_REFRESH_TOKEN_TTL_DAYS", settings.security.refresh_token_ttl_days),
        ("DAIBAN_SECURITY_BINDING_CODE_TTL_HOURS", settings.security.binding_code_ttl_hours),
        ("DAIBAN_SECURITY_MAX_LOGINS_PER_ACCOUNT", settings.security.max_logins_per_account),
        ("DAIBAN_DATABASE_POOL_SIZE", settings.database.pool_size),
        ("DAIBAN_DATABASE_WAIT_SECONDS", settings.database.wait_seconds),
        ("DAIBAN_STORAGE_MAX_UPLOAD_BYTES", settings.storage.max_upload_bytes),
        ("DAIBAN_STORAGE_UPLOAD_URL_TTL_SECONDS", settings.storage.upload_url_ttl_seconds),
        ("DAIBAN_STORAGE_DOWNLOAD_URL_TTL_SECONDS", settings.storage.download_url_ttl_seconds),
        ("DAIBAN_STORAGE_PENDING_UPLOADS_PER_PERSON", settings.storage.pending_uploads_per_person),
        (
            "DAIBAN_STORAGE_UPLOAD_BYTES_PER_PERSON_PER_DAY",
            settings.storage.upload_bytes_per_person_per_day,
        ),
        (
            "DAIBAN_STORAGE_UNATTACHED_UPLOAD_TTL_HOURS",
            settings.storage.unattached_upload_ttl_hours,
        ),
        ("DAIBAN_UPLOADS_MAX_VOICE_BYTES", settings.uploads.max_voice_bytes),
        ("DAIBAN_UPLOADS_MAX_VOICE_SECONDS", settings.uploads.max_voice_seconds),
        ("DAIBAN_PREREVIEW_SECONDS", settings.prereview.seconds),
        ("DAIBAN_PREREVIEW_MAX_BACKLOG", settings.prereview.max_backlog),
    ):
        if value < 1:
            raise SettingsError(f"{name}: must be a positive number (got {value})")
    for name, value in (
        ("DAIBAN_SCHEDULER_TICK_SECONDS", settings.scheduler.tick_seconds),
        ("DAIBAN_SCHEDULER_DELIVERY_SECONDS", settings.scheduler.delivery_seconds),
        ("DAIBAN_SCHEDULER_DELIVERY_BATCH", settings.scheduler.delivery_batch),
        ("DAIBAN_SCHEDULER_DELIVERY_CONCURRENCY", settings.scheduler.delivery_concurrency),
        ("DAIBAN_SCHEDULER_DELIVERY_MAX_ATTEMPTS", settings.scheduler.delivery_max_attempts),
        (
            "DAIBAN_SCHEDULER_TAKE_REMIND_WORKING_HOURS",
            settings.scheduler.take_remind_working_hours,
        ),
        (
            "DAIBAN_SCHEDULER_TAKE_ESCALATE_WORKING_DAYS",
            settings.scheduler.take_escalate_working_days,
        ),
        ("DAIBAN_SCHEDULER_DUE_SOON_WORKING_DAYS", settings.scheduler.due_soon_working_days),
        ("DAIBAN_SCHEDULER_SUPPLEMENT_REMIND_DAYS", settings.scheduler.supplement_remind_days),
        ("DAIBAN_SCHEDULER_SUPPLEMENT_EXPIRE_DAYS", settings.scheduler.supplement_expire_days),
        ("DAIBAN_RATINGS_WINDOW_DAYS", settings.ratings.window_days),
        ("DAIBAN_RATINGS_REMIND_DAYS", settings.ratings.remind_days),
        ("DAIBAN_RATINGS_RECTIFY_WORKING_DAYS", settings.ratings.rectify_working_days),
        (
            "DAIBAN_RATINGS_RECTIFY_REMIND_WORKING_DAYS",
            settings.ratings.rectify_remind_working_days,
        ),
    ):
        if value < 1:
            raise SettingsError(f"{name}: must be a positive number (got {value})")
    if settings.database.ping_idle_seconds < 0:
        raise SettingsError(
            "DAIBAN_DATABASE_PING_IDLE_SECONDS: seconds, 0 to ping on every use"
            f" (got {settings.database.ping_idle_seconds})"
        )
    for field in msgspec.structs.fields(LimitSettings):
        value = getattr(settings.limits, field.name)
        if isinstance(value, int) and value < 0:
            raise SettingsError(
                f"{env_name('limits', field.name)}: a number of requests, 0 for none (got {value})"
            )
    if http_address(settings.wechat.base_url) is None:
        raise SettingsError("DAIBAN_WECHAT_BASE_URL: an http:// or https:// address")
    if settings.limits.redis_url and not settings.limits.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise SettingsError("DAIBAN_LIMITS_REDIS_URL: a redis:// or rediss:// URL")
    for address in filter(None, (a.strip() for a in settings.server.trusted_proxies.split(","))):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise SettingsError(
                f"DAIBAN_SERVER_TRUSTED_PROXIES: {address!r} is not an IP address"
            ) from None
    if not 1 <= settings.ratings.default_grade <= 5:
        raise SettingsError("DAIBAN_RATINGS_DEFAULT_GRADE: a grade from 1 to 5")
    if settings.ratings.remind_days >= settings.ratings.window_days:
        raise SettingsError("DAIBAN_RATINGS_REMIND_DAYS: must be less than the window")
    start, end = (
        _clock_time("DAIBAN_SCHEDULER_WORKDAY_START", settings.scheduler.workday_start),
        _clock_time("DAIBAN_SCHEDULER_WORKDAY_END", settings.scheduler.workday_end),
    )
    if not start < end:
        raise SettingsError("DAIBAN_SCHEDULER_WORKDAY_END: must be after the workday start")
    _clock_time("DAIBAN_SCHEDULER_CLEANUP_AT", settings.scheduler.cleanup_at)
    _clock_time("DAIBAN_BACKUP_AT", settings.backup.at)
    _clock_time("DAIBAN_RETENTION_AT", settings.retention.at)
    for name, value, least in (
        ("DAIBAN_RETENTION_ORDER_FILES_DAYS", settings.retention.order_files_days, 30),
        ("DAIBAN_RETENTION_AUDIT_YEARS", settings.retention.audit_years, 1),
        ("DAIBAN_RETENTION_IDLE_ACCOUNT_DAYS", settings.retention.idle_account_days, 180),
        ("DAIBAN_CONSOLE_SESSION_IDLE_MINUTES", settings.console.session_idle_minutes, 5),
        ("DAIBAN_CONSOLE_SESSION_HOURS", settings.console.session_hours, 1),
        ("DAIBAN_CONSOLE_SIGN_IN_SECONDS", settings.console.sign_in_seconds, 30),
    ):
        if value < least:
            raise SettingsError(f"{name}: must be at least {least} (got {value})")
    if not 0 <= settings.orders.green_channel_age <= 150:
        raise SettingsError(
            "DAIBAN_ORDERS_GREEN_CHANNEL_AGE: must be 0 (off) to 150"
            f" (got {settings.orders.green_channel_age})"
        )
    if not 1 <= settings.orders.dispute_days <= 60:
        raise SettingsError(
            "DAIBAN_ORDERS_DISPUTE_DAYS: working days, from 1 to 60"
            f" (got {settings.orders.dispute_days})"
        )
    if settings.server.metrics_token and len(settings.server.metrics_token) < 32:
        raise SettingsError("DAIBAN_SERVER_METRICS_TOKEN: must be at least 32 characters")
    for name, value in (
        ("DAIBAN_BACKUP_KEEP_DAILY", settings.backup.keep_daily),
        ("DAIBAN_BACKUP_KEEP_MONTHLY", settings.backup.keep_monthly),
        ("DAIBAN_BACKUP_MAX_AGE_HOURS", settings.backup.max_age_hours),
    ):
        if value < 1:
            raise SettingsError(f"{name}: must be a positive number (got {value})")
    parse_templates(settings.wechat.templates)
    url = settings.database_url
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            "DAIBAN_DATABASE_URL: use sqlite+aiosqlite:///path or postgresql+asyncpg://..."
        )
    replica = settings.database.replica_url
    if replica and not (
        replica.startswith("postgresql+asyncpg://") and url.startswith("postgresql+asyncpg://")
    ):
        raise SettingsError(
            "DAIBAN_DATABASE_REPLICA_URL: a postgresql+asyncpg://... replica of a PostgreSQL"
            " DAIBAN_DATABASE_URL"
        )
    if settings.backup.method == "base" and not url.startswith("postgresql+asyncpg://"):
        raise SettingsError(
            "DAIBAN_BACKUP_METHOD: base backs up a PostgreSQL cluster; SQLite uses dump"
        )
    if settings.wechat.mode == "live" and not (
        settings.wechat.app_id and settings.wechat.app_secret
    ):
        raise SettingsError("DAIBAN_WECHAT_APP_ID: live WeChat mode needs app id and app secret")
    if settings.storage.backend == "minio" and not (
        settings.storage.minio_access_key and settings.storage.minio_secret_key
    ):
        raise SettingsError("DAIBAN_STORAGE_MINIO_ACCESS_KEY: the minio backend needs its keys")
    if settings.security.pii_keys:
        parse_pii_keys(settings.security.pii_keys)
    if settings.is_dev:
        return _with_dev_secrets(settings)
    if settings.wechat.mode == "dev":
        raise SettingsError("DAIBAN_WECHAT_MODE: production refuses dev WeChat mode")
    if settings.core.demo_data:
        raise SettingsError("DAIBAN_DEMO_DATA: production refuses demo data")
    # Phones post photos of ID cards to this address and fetch them back: in production only
    # over HTTPS (a mini-program also reaches only HTTPS domains).
    storage = settings.storage
    if storage.backend == "local" and not storage.public_url.startswith("https://"):
        raise SettingsError("DAIBAN_STORAGE_PUBLIC_URL: production needs an https:// address")
    if storage.backend == "minio" and not storage.minio_public_secure:
        raise SettingsError(
            "DAIBAN_STORAGE_MINIO_PUBLIC_SECURE: production needs phones to reach MinIO over HTTPS"
        )
    for secret_name, secret in (
        ("DAIBAN_SECURITY_SECRET_KEY", settings.security.secret_key),
        ("DAIBAN_SECURITY_PII_KEYS", settings.security.pii_keys),
        ("DAIBAN_SECURITY_PII_HASH_KEY", settings.security.pii_hash_key),
    ):
        if not secret:
            raise SettingsError(f"{secret_name}: production needs it set (dev secrets are refused)")
    # A short hash key would let anyone with the database guess ID numbers and phones back
    # from their keyed hashes (both come from small spaces), so it is held to the same rule.
    for secret_name, secret in (
        ("DAIBAN_SECURITY_SECRET_KEY", settings.security.secret_key),
        ("DAIBAN_SECURITY_PII_HASH_KEY", settings.security.pii_hash_key),
    ):
        if len(secret) < 32:
            raise SettingsError(f"{secret_name}: must be at least 32 characters")
    return settings


def _with_dev_secrets(settings: Settings) -> Settings:
    """Dev mode: generate missing secrets once and keep them under var/ across restarts."""
    sec = settings.security
    if sec.secret_key and sec.pii_keys and sec.pii_hash_key:
        return settings
    path = Path(settings.core.var_dir) / DEV_SECRETS_FILE
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        stored = {
            "secret_key": secrets.token_urlsafe(48),
            "pii_keys": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "pii_hash_key": secrets.token_urlsafe(48),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored))
        tmp.chmod(0o600)
        tmp.replace(path)
    security = msgspec.structs.replace(
        sec,
        secret_key=sec.secret_key or stored["secret_key"],
        pii_keys=sec.pii_keys or stored["pii_keys"],
        pii_hash_key=sec.pii_hash_key or stored["pii_hash_key"],
    )
    return msgspec.structs.replace(settings, security=security)
