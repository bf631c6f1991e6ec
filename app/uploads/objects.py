"""Removing stored objects on a failure path, for every module of the uploads package."""

from __future__ import annotations

import logging

import anyio

from app.context import Context
from storage.base import StorageError

log = logging.getLogger("daiban.uploads")


async def discard(ctx: Context, *keys: str) -> None:
    """Best-effort removal on a failure path: a second failure is logged, not raised."""
    if not keys:
        return
    with anyio.CancelScope(shield=True):
        try:
            await ctx.store.delete(*keys)
        except StorageError:
            log.exception("could not remove objects", extra={"keys": keys})
