"""MinIO (S3) object store: a private bucket, presigned POST uploads straight from the phone,
short presigned downloads. The minio client blocks, so every call runs in a worker thread."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import anyio
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.datatypes import PostPolicy
from minio.error import MinioException, S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from storage.base import (
    DOCUMENT_TYPES,
    INCOMING,
    TYPES_BY_EXTENSION,
    ObjectInfo,
    ObjectTooLarge,
    StorageError,
    UploadForm,
    content_disposition,
)

T = TypeVar("T")
ABANDONED_AFTER_DAYS = 1
LIFECYCLE_RULE_ID = "expire-abandoned-uploads"
MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}


class MinioStore:
    def __init__(
        self,
        *,
        endpoint: str,
        public_endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool,
        public_secure: bool,
        region: str,
    ) -> None:
        # Talk to MinIO on the internal endpoint; sign URLs for phones with the public one.
        # Giving the region keeps presigning offline (no bucket-location request).
        self._client = Minio(endpoint, access_key, secret_key, secure=secure, region=region)
        self._public = Minio(
            public_endpoint, access_key, secret_key, secure=public_secure, region=region
        )
        self.bucket = bucket
        self._public_base = f"{'https' if public_secure else 'http'}://{public_endpoint}"

    async def _run(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(partial(func, *args, **kwargs))
        except S3Error:
            raise
        except (MinioException, OSError) as exc:
            raise StorageError(str(exc)) from exc

    async def ensure_ready(self) -> None:
        """Create the bucket if missing, and add our lifecycle rule to whatever rules the
        bucket already has: the operator's own rules stay as they are."""
        if not await self._run(self._client.bucket_exists, self.bucket):
            await self._run(self._client.make_bucket, self.bucket)
        ours = Rule(
            ENABLED,
            rule_filter=Filter(prefix=INCOMING),
            rule_id=LIFECYCLE_RULE_ID,
            expiration=Expiration(days=ABANDONED_AFTER_DAYS),
        )
        current: LifecycleConfig | None = await self._run(
            self._client.get_bucket_lifecycle, self.bucket
        )
        rules = list(current.rules) if current else []
        if ours in rules:
            return
        others = [rule for rule in rules if rule.rule_id != LIFECYCLE_RULE_ID]
        config = LifecycleConfig([*others, ours])
        await self._run(self._client.set_bucket_lifecycle, self.bucket, config)

    def presign_upload(
        self, key: str, content_type: str, max_bytes: int, expires_in: timedelta, now: datetime
    ) -> UploadForm:
        expires_at = now + expires_in
        policy = PostPolicy(self.bucket, expires_at)
        policy.add_equals_condition("key", key)
        policy.add_equals_condition("Content-Type", content_type)
        policy.add_content_length_range_condition(1, max_bytes)
        signed = self._public.presigned_post_policy(policy)
        fields = {"key": key, "Content-Type": content_type, **signed}
        return UploadForm(
            url=f"{self._public_base}/{self.bucket}", fields=fields, expires_at=expires_at
        )

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            result = await self._run(self._client.stat_object, self.bucket, key)
        except S3Error as exc:
            if exc.code in MISSING:
                return None
            raise StorageError(str(exc)) from exc
        return ObjectInfo(size=int(result.size or 0), modified_at=result.last_modified)

    async def read(self, key: str, max_bytes: int) -> bytes:
        def read() -> bytes:
            response = self._client.get_object(self.bucket, key)
            try:
                data: bytes = response.read(max_bytes + 1)
            finally:
                response.close()
                response.release_conn()
            return data

        try:
            data: bytes = await self._run(read)
        except S3Error as exc:
            if exc.code in MISSING:
                raise KeyError(key) from None
            raise StorageError(str(exc)) from exc
        if len(data) > max_bytes:
            info = await self.stat(key)
            raise ObjectTooLarge(info.size if info else len(data))
        return data

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await self._run(
                self._client.put_object,
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
            )
        except S3Error as exc:
            raise StorageError(str(exc)) from exc

    async def delete(self, *keys: str) -> None:
        for key in keys:
            try:
                await self._run(self._client.remove_object, self.bucket, key)
            except S3Error as exc:
                if exc.code not in MISSING:
                    raise StorageError(str(exc)) from exc

    def presign_download(self, key: str, expires_in: timedelta, now: datetime) -> str:
        # S3 lets a signed link set the answer's type and disposition, nothing more: nosniff
        # and the sandboxing CSP (storage.base.DOWNLOAD_HEADERS) must come from the reverse
        # proxy in front of MinIO's public endpoint.
        extension = key.rsplit(".", 1)[-1]
        headers: dict[str, str | list[str] | tuple[str]] = {
            "response-content-disposition": content_disposition(key)
        }
        content_type = (TYPES_BY_EXTENSION | DOCUMENT_TYPES).get(extension)
        if content_type:
            headers["response-content-type"] = content_type
        url: str = self._public.presigned_get_object(
            self.bucket, key, expires=expires_in, request_date=now, response_headers=headers
        )
        return url
