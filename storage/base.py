"""The one small interface every object store offers, and the keys it stores things under."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

# Raw uploads land under INCOMING and are deleted once verified; a lifecycle rule (MinIO) or
# the clean-up job (both) removes whatever is abandoned there.
INCOMING = "incoming/"
OBJECTS = "objects/"
THUMBNAILS = "thumbs/"

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "application/pdf": "pdf",
    # Voice notes: served as what they are, so a phone plays them (storage/audio.py).
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
}
TYPES_BY_EXTENSION = {ext: content_type for content_type, ext in EXTENSIONS.items()}
# Files the service itself writes (ledgers): served for download, never accepted as uploads.
DOCUMENT_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


# Every download is served as what it is and nothing else: no type sniffing, no scripts, no
# plugins, and documents as files to save, never pages to render (local store and nginx).
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
    ),
}


def content_disposition(key: str) -> str:
    """Photos and voice notes open in place; PDFs and spreadsheets are saved (a PDF viewer
    runs scripts)."""
    name = key.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1]
    media = TYPES_BY_EXTENSION.get(extension, "").startswith(("image/", "audio/"))
    kind = "inline" if media else "attachment"
    return f'{kind}; filename="{name}"'


class StorageError(Exception):
    """The store could not be reached or refused an operation."""


class ObjectTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


@dataclass(frozen=True)
class UploadForm:
    """What the phone needs for `wx.uploadFile`: the URL, the form fields, the file field."""

    url: str
    fields: dict[str, str]
    expires_at: datetime
    file_field: str = "file"


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    modified_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    """Every async method may block on the network or disk in its backend, never on the event
    loop. Signing (`presign_*`) is computation only: both backends sign offline."""

    async def ensure_ready(self) -> None:
        """Create the bucket (and its lifecycle rule) if missing."""

    def presign_upload(
        self, key: str, content_type: str, max_bytes: int, expires_in: timedelta, now: datetime
    ) -> UploadForm: ...

    async def stat(self, key: str) -> ObjectInfo | None: ...

    async def read(self, key: str, max_bytes: int) -> bytes:
        """The whole object; raises ObjectTooLarge past max_bytes, KeyError if missing."""
        ...

    async def write(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, *keys: str) -> None: ...

    def presign_download(self, key: str, expires_in: timedelta, now: datetime) -> str: ...


def incoming_key(content_type: str, now: datetime) -> str:
    """Chosen by the server: a date folder and a random name; the client never picks a path."""
    return f"{INCOMING}{now:%Y/%m/%d}/{secrets.token_urlsafe(18)}.{EXTENSIONS[content_type]}"


def stored_key(prefix: str, content_type: str, now: datetime) -> str:
    return f"{prefix}{now:%Y/%m}/{secrets.token_urlsafe(18)}.{EXTENSIONS[content_type]}"
