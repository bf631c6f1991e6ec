"""Uploads: a presigned form for wx.uploadFile, verification on complete, short download links;
and, for the local-disk backend, the signed upload and download endpoints themselves."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import File

from app.uploads import prereviews, service
from app.uploads.prereviews import PrereviewView
from app.uploads.service import DownloadLinks, UploadTicket, UploadView
from mini_program_api.deps import Caller, Ctx, require_login
from mini_program_api.problems import problem
from mini_program_api.schemas import UploadInput
from storage.base import (
    DOCUMENT_TYPES,
    DOWNLOAD_HEADERS,
    TYPES_BY_EXTENSION,
    content_disposition,
)
from storage.local import LocalStore, LocalUploadRefused


class UploadController(Controller):
    path = "/uploads"
    tags = ["uploads 材料上传"]
    guards = [require_login]

    @post(
        summary="申请上传: 返回 wx.uploadFile 所需的地址和表单字段",
        opt={"limits": ("uploads_account",)},
    )
    async def create(
        self, data: JSONBody[UploadInput], ctx: Ctx, principal: Caller
    ) -> UploadTicket:
        return await ctx.db.run_write(
            lambda s: service.create_upload(
                s,
                ctx,
                principal,
                purpose=data.purpose,
                content_type=data.content_type,
                size=data.size,
                document=data.document,
            )
        )

    @post(
        "/{upload_id:int}/complete",
        opt={"errors": (409, 410, 422)},
        status_code=200,
        summary="上传完成: 服务器检查文件并去除位置信息",
    )
    async def complete(self, upload_id: FromPath[int], ctx: Ctx, principal: Caller) -> UploadView:
        return await service.complete_upload(ctx, principal, upload_id)

    @get("/{upload_id:int}", summary="文件信息")
    async def detail(self, upload_id: FromPath[int], ctx: Ctx, principal: Caller) -> UploadView:
        return await ctx.db.run_read(lambda s: service.get_upload(s, ctx, principal, upload_id))

    @get("/{upload_id:int}/url", summary="短时有效的下载地址 (原图和缩略图)")
    async def url(self, upload_id: FromPath[int], ctx: Ctx, principal: Caller) -> DownloadLinks:
        return await ctx.db.run_read(lambda s: service.download_links(s, ctx, principal, upload_id))

    @get(
        "/{upload_id:int}/prereview",
        summary="预审识别出的证件信息 (完整): 仅限该办件的代办员, 每次查看都记入审计",
    )
    async def prereview(
        self, upload_id: FromPath[int], ctx: Ctx, principal: Caller
    ) -> PrereviewView:
        # A write: the look is audited in the same transaction.
        return await ctx.db.run_write(lambda s: prereviews.whole_view(s, ctx, principal, upload_id))


def _local_store(ctx: Any) -> LocalStore | None:
    return ctx.store if isinstance(ctx.store, LocalStore) else None


@post(
    "/storage/upload",
    request_max_body_size=None,  # the signed form carries its own limit, checked while streaming
    include_in_schema=False,
)
async def local_upload(request: Request[Any, Any, Any], ctx: Ctx) -> Response[Any]:
    store = _local_store(ctx)
    if store is None:
        return problem(404, "not_found", "没有找到")
    try:
        key = await store.accept_upload(
            request.headers.get("content-type", ""),
            request.stream(),
            ctx.now(),
            is_open=lambda key: service.upload_is_open(ctx, key),
        )
    except LocalUploadRefused as exc:
        return problem(exc.status, exc.code, exc.message)
    if not await service.upload_is_open(ctx, key):
        # Settled while this POST streamed in: its raw file must not stay.
        await store.delete(key)
        return problem(409, "upload_settled", "这个文件已经上传过了")
    return Response(None, status_code=204)  # what S3 answers to a browser-style POST


@get("/storage/objects/{key:path}", include_in_schema=False)
async def local_download(
    key: FromPath[str], expires: FromQuery[str], signature: FromQuery[str], ctx: Ctx
) -> Response[Any] | File:
    store = _local_store(ctx)
    if store is None:
        return problem(404, "not_found", "没有找到")
    key, now = key.lstrip("/"), ctx.now()
    try:
        path = store.download_path(key, expires, signature, now)
    except LocalUploadRefused as exc:
        return problem(exc.status, exc.code, exc.message)
    extension = path.suffix.lstrip(".")
    media_type = (TYPES_BY_EXTENSION | DOCUMENT_TYPES).get(extension, "application/octet-stream")
    return File(
        path=path,
        media_type=media_type,
        headers={
            **DOWNLOAD_HEADERS,
            "Content-Disposition": content_disposition(key),
            # Photos of ID cards: never in a shared cache, and not past the link's own expiry.
            "Cache-Control": f"private, max-age={max(0, int(expires) - int(now.timestamp()))}",
        },
    )
