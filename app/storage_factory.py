"""Builds the object store the settings ask for (storage/ itself knows nothing of settings)."""

from __future__ import annotations

from app.settings import Settings
from storage.base import ObjectStore
from storage.local import LocalStore
from storage.minio_store import MinioStore


def build_store(settings: Settings) -> ObjectStore:
    s = settings.storage
    if s.backend == "minio":
        return MinioStore(
            endpoint=s.minio_endpoint,
            public_endpoint=s.minio_public_endpoint or s.minio_endpoint,
            access_key=s.minio_access_key,
            secret_key=s.minio_secret_key,
            bucket=s.minio_bucket,
            secure=s.minio_secure,
            public_secure=s.minio_public_secure,
            region=s.minio_region,
        )
    return LocalStore(settings.local_storage_dir, s.public_url, settings.security.secret_key)
