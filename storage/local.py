"""Local-disk object store for `make run`: the service takes the multipart POST itself at a
signed, expiring URL, streams it to disk with bounded memory, and serves signed downloads."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

import anyio
import multipart

from storage.base import ObjectInfo, ObjectTooLarge, UploadForm

SAFE_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9/_.-]{0,300}$")
FIELDS_MAX_BYTES = 8192
# Bytes of an upload held in memory before they go to disk in one thread hop: enough to keep
# hops few (about 20 for a 5 MB photo), small enough that many phones at once cost little.
WRITE_BATCH_BYTES = 256 * 1024


class LocalUploadRefused(Exception):
    """A POST to the upload URL that must not be stored; `code` and `status` for the answer."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


class LocalStore:
    def __init__(self, root: Path, public_url: str, secret: str) -> None:
        self.root = root
        self.public_url = public_url.rstrip("/")
        self._key = hashlib.sha256(b"local-store:" + secret.encode()).digest()

    # --- the interface --------------------------------------------------------------

    async def ensure_ready(self) -> None:
        await anyio.to_thread.run_sync(lambda: self.root.mkdir(parents=True, exist_ok=True))

    def presign_upload(
        self, key: str, content_type: str, max_bytes: int, expires_in: timedelta, now: datetime
    ) -> UploadForm:
        expires_at = now + expires_in
        fields = {
            "key": key,
            "Content-Type": content_type,
            "max": str(max_bytes),
            "expires": str(int(expires_at.timestamp())),
        }
        fields["signature"] = self._sign(
            "upload", fields["key"], content_type, fields["max"], fields["expires"]
        )
        return UploadForm(
            url=f"{self.public_url}/storage/upload", fields=fields, expires_at=expires_at
        )

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)

        def stat() -> ObjectInfo | None:
            try:
                st = path.stat()
            except FileNotFoundError:
                return None
            return ObjectInfo(size=st.st_size, modified_at=datetime.fromtimestamp(st.st_mtime, UTC))

        return await anyio.to_thread.run_sync(stat)

    async def read(self, key: str, max_bytes: int) -> bytes:
        path = self._path(key)

        def read() -> bytes:
            try:
                with path.open("rb") as f:
                    data = f.read(max_bytes + 1)
            except FileNotFoundError:
                raise KeyError(key) from None
            if len(data) > max_bytes:
                raise ObjectTooLarge(path.stat().st_size)
            return data

        return await anyio.to_thread.run_sync(read)

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

        await anyio.to_thread.run_sync(write)

    async def delete(self, *keys: str) -> None:
        paths = [self._path(k) for k in keys]

        def delete() -> None:
            for p in paths:
                p.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(delete)

    def presign_download(self, key: str, expires_in: timedelta, now: datetime) -> str:
        self._path(key)
        expires = str(int((now + expires_in).timestamp()))
        query = {"expires": expires, "signature": self._sign("download", key, expires)}
        return f"{self.public_url}/storage/objects/{quote(key)}?{urlencode(query)}"

    # --- the service's own side of the signed URLs ------------------------------------

    def download_path(self, key: str, expires: str, signature: str, now: datetime) -> Path:
        """The file behind a signed download URL; LocalUploadRefused if the URL is not good."""
        if not SAFE_KEY.match(key) or ".." in key:
            raise LocalUploadRefused("not_found", 404, "文件不存在")
        if not hmac.compare_digest(signature, self._sign("download", key, expires)):
            raise LocalUploadRefused("not_found", 404, "文件不存在")
        if not expires.isdigit() or int(expires) < now.timestamp():
            raise LocalUploadRefused("link_expired", 403, "下载链接已过期,请重新打开")
        path = self._path(key)
        if not path.is_file():
            raise LocalUploadRefused("not_found", 404, "文件不存在")
        return path

    async def accept_upload(
        self,
        content_type: str,
        chunks: AsyncIterator[bytes],
        now: datetime,
        is_open: Callable[[str], Awaitable[bool]] | None = None,
    ) -> str:
        """Take a browser-style POST: form fields first, then the file, as S3 expects.

        The signature, expiry and size limit are checked before a byte of the file is kept;
        the file goes to disk in bounded pieces from a worker thread, so memory stays flat
        whatever its size and the event loop never waits on the disk. Fields after the file
        are parsed and ignored (S3 ignores them too); a second file is refused. On any
        failure, the client going away included, the partial file is removed. `is_open(key)`,
        asked once the signed fields are read, refuses a form whose upload is already settled:
        a second POST must not put a raw photo (GPS and all) back after verification.
        """
        boundary = multipart.parse_options_header(content_type)[1].get("boundary")
        if not content_type.startswith("multipart/form-data") or not boundary:
            raise LocalUploadRefused("bad_upload", 400, "上传格式不正确")
        form = _Form(self, now, is_open)
        parser = multipart.PushMultipartParser(boundary, max_segment_count=16)
        try:
            try:
                async for chunk in chunks:
                    for event in parser.parse(chunk):
                        await form.take(event)
                parser.close()
            except multipart.MultipartError:
                raise LocalUploadRefused("bad_upload", 400, "上传格式不正确") from None
            if form.file is None:
                raise LocalUploadRefused("bad_upload", 400, "没有收到文件")
            if form.file.size == 0:
                raise LocalUploadRefused("file_empty", 400, "文件是空的")
            # Stamp the receipt time on the service's own clock, the one the form's expiry was
            # judged by, so complete() compares like with like.
            await form.file.keep(now)
        except BaseException:
            if form.file is not None:
                with anyio.CancelScope(shield=True):
                    await form.file.discard()
            raise
        return form.key

    def check_fields(self, fields: dict[str, str], now: datetime) -> tuple[str, Path, int]:
        """The key, path and size limit a signed form allows; LocalUploadRefused if it is bad."""
        try:
            key, content_type = fields["key"], fields["Content-Type"]
            max_bytes, expires, signature = fields["max"], fields["expires"], fields["signature"]
        except KeyError:
            raise LocalUploadRefused("bad_upload", 400, "上传表单不完整") from None
        expected = self._sign("upload", key, content_type, max_bytes, expires)
        if not hmac.compare_digest(signature, expected):
            raise LocalUploadRefused("upload_forbidden", 403, "上传凭证无效")
        if int(expires) < now.timestamp():
            raise LocalUploadRefused("upload_expired", 403, "上传凭证已过期,请重新上传")
        return key, self._path(key), int(max_bytes)

    def _path(self, key: str) -> Path:
        if not SAFE_KEY.match(key) or ".." in key:
            raise ValueError(f"unsafe object key {key!r}")
        return self.root / key

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()


class _Form:
    """One POST as it is parsed: the fields so far, the part being read, and the file."""

    def __init__(
        self, store: LocalStore, now: datetime, is_open: Callable[[str], Awaitable[bool]] | None
    ) -> None:
        self._store, self._now, self._is_open = store, now, is_open
        self._fields: dict[str, str] = {}
        self._field_name: str | None = None  # the field being read; None inside the file
        self._field_value = bytearray()
        self.key = ""
        self.file: _ReceivedFile | None = None

    async def take(self, event: multipart.MultipartSegment | bytes | None) -> None:
        if isinstance(event, multipart.MultipartSegment):
            if event.name != "file":
                self._field_name, self._field_value = event.name or "", bytearray()
                return
            if self.file is not None:
                raise LocalUploadRefused("too_many_files", 400, "一次只能上传一个文件")
            # Only fields sent before the file count: they are what the signature covers.
            self.key, target, limit = self._store.check_fields(self._fields, self._now)
            if self._is_open is not None and not await self._is_open(self.key):
                raise LocalUploadRefused("upload_settled", 409, "这个文件已经上传过了")
            self.file = await _ReceivedFile.open(target, limit)
            self._field_name = None
        elif event is None:  # the end of a part
            if self._field_name is not None:
                value = self._field_value.decode("utf-8", "replace")
                self._fields.setdefault(self._field_name, value)
            self._field_name = None
        elif self._field_name is None:
            assert self.file is not None
            await self.file.write(event)
        else:
            self._field_value += event
            if len(self._field_value) > FIELDS_MAX_BYTES:
                raise LocalUploadRefused("bad_upload", 400, "上传格式不正确")


class _ReceivedFile:
    """The file part of one POST, written next to its final place under a temporary name.

    Every disk call runs in a worker thread; bytes wait in memory only up to
    WRITE_BATCH_BYTES, and the next chunk is not read while a batch is being written.
    """

    def __init__(self, target: Path, tmp: Path, out: BinaryIO, limit: int) -> None:
        self.target, self.tmp, self._out, self.limit = target, tmp, out, limit
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    @classmethod
    async def open(cls, target: Path, limit: int) -> _ReceivedFile:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")

        def open_tmp() -> BinaryIO:
            target.parent.mkdir(parents=True, exist_ok=True)
            return tmp.open("xb")

        return cls(target, tmp, await anyio.to_thread.run_sync(open_tmp), limit)

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise LocalUploadRefused("file_too_large", 413, "文件太大")
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= WRITE_BATCH_BYTES:
            await anyio.to_thread.run_sync(self._out.writelines, self._take_pending())

    async def keep(self, received_at: datetime) -> None:
        """Write what is left and move the file to its key, stamped with the receipt time."""
        pending = self._take_pending()
        stamp = received_at.timestamp()

        def finish() -> None:
            with self._out:
                self._out.writelines(pending)
            os.utime(self.tmp, (stamp, stamp))
            os.replace(self.tmp, self.target)

        await anyio.to_thread.run_sync(finish)

    async def discard(self) -> None:
        self._take_pending()

        def remove() -> None:
            self._out.close()
            self.tmp.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(remove)

    def _take_pending(self) -> list[bytes]:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        return pending
