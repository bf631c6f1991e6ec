"""The entrustment (委托书) signed on the phone: its text made from the order, and the
resident's hand-drawn signature turned into a signed PDF kept with the order's files.

The text names the resident (ID number masked), the agent and their station, the item and
the order, the standard wording and the date; the mini-program shows it before signing
(`GET .../entrustment`). Signing (`POST .../entrustment/sign {signatureUploadId}`) takes
the signature the mini-program drew on a canvas and uploaded as a PNG (purpose
`entrustment`), draws the PDF with it and the SHA-256 of the text in the footer, keeps the
PDF as an upload of the order (so downloads, retention and backups treat it like the
photos) and records it as the order's entrustment: `orders.entrustment_upload_ids`, the
guide's `entrustment` material when it has one, and a timeline event.

When: from the moment an agent has the order until 受理 (assigned, reviewing, waiting for a
supplement): the text names that agent, and after 受理 the entrustment is what the agent
accepted on. Once per order (409 `already_signed`). A photo of a paper form stays accepted
as before; a resident who will sign on the phone says so at submission
(`signEntrustment`), and the entrustment material may then be empty until they do.

Nothing here runs inside a transaction longer than its statements: the signature is read
from storage and the PDF drawn (in a worker thread) and written between a read and the
final write, which checks again that nothing moved meanwhile."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import anyio.to_thread
import msgspec
from PIL import Image as PILImage
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Image, Paragraph, Spacer, Table
from reportlab.platypus.tables import TableStyle
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models import Upload
from app.models.tables import ACCOUNTS, ORDERS, REGIONS
from app.notifications.messages import full_day
from app.orders import moves
from app.orders.outputs import SIGN_ENTRUSTMENT
from app.orders.records import (
    OrderRow,
    attach_uploads,
    guide_version,
    order_in_scope,
    own_order,
    record_event,
)
from app.orders.slip import PDF, Styles, a4_document, cjk_font
from app.security.pii import mask_id_number
from app.security.tokens import Principal
from app.uploads import service as uploads
from storage.base import StorageError

TITLE = "帮办代办委托书"
SIGNED_NOTE = "委托人已在手机上签署委托书"
MATERIAL = "entrustment"  # the guide's material it fills, when the guide has one
# Until 受理, and only once an agent has the order (the text names them).
SIGNABLE = frozenset({"assigned", "reviewing", "supplement_required"})
PNG = "image/png"
# A signature drawn on a phone's canvas: a few hundred pixels at 2-3× the screen's density.
MAX_SIGNATURE_BYTES = 1_048_576
MAX_SIGNATURE_SIDE = 3000
MAX_SIGNATURE_RATIO = 8  # longer side over shorter: a line, not a signature
SIGNATURE_BOX = (60 * mm, 24 * mm)
INK_LEVEL = 160  # grey below this, once laid on white paper, is ink

AlreadySigned = errors.error("already_signed", 409, "委托书已经签署过了,不能重复签署")
EntrustmentClosed = errors.error(
    "entrustment_closed", 409, "办件已受理或已结束,不能再在手机上签署委托书"
)
NoAgentYet = errors.error("entrustment_no_agent", 409, "办件还没有派给代办员,派单后才能签署委托书")
SignatureInvalid = errors.error("signature_invalid", 422, "签名图片不能使用,请重新签名")
SignatureBlank = errors.error("signature_blank", 422, "没有看到签名,请在框内手写签名后再提交")
AGENT_AND_STATION = (
    select(ACCOUNTS.c.name, REGIONS.c.name.label("region"), REGIONS.c.level)
    .select_from(ACCOUNTS.outerjoin(REGIONS, REGIONS.c.id == ACCOUNTS.c.region_id))
    .where(ACCOUNTS.c.id == bindparam("id"))
)
RESIDENT = select(ACCOUNTS.c.name, ACCOUNTS.c.id_number_enc).where(ACCOUNTS.c.id == bindparam("id"))


class EntrustmentView(msgspec.Struct, rename="camel", kw_only=True):
    """The entrustment as the mini-program shows it: the text to sign (with today's date),
    or the text as signed."""

    title: str
    lines: list[str]
    sha256: str  # of the title and lines, one per line (UTF-8): printed on the signed PDF
    signed: bool
    signed_at: datetime | None
    upload_id: int | None  # the signed PDF (GET /mp/v1/uploads/{id}/url)
    can_sign: bool  # the caller may sign it now
    why_not: str | None  # why not, when the order's resident cannot sign it now


def text_hash(title: str, lines: list[str]) -> str:
    return hashlib.sha256("\n".join([title, *lines]).encode("utf-8")).hexdigest()


def _lines(session: Session, ctx: Context, order: OrderRow, day: datetime) -> list[str]:
    resident = session.execute(RESIDENT, {"id": order.resident_id}).one()
    id_number = (
        ctx.cipher.decrypt(resident.id_number_enc, context="id_number")
        if resident.id_number_enc
        else None
    )
    agent = (
        session.execute(AGENT_AND_STATION, {"id": order.agent_id}).one_or_none()
        if order.agent_id
        else None
    )
    if agent is None:
        trustee = "受托人:(派单后确定)"
    else:
        station = "便民服务中心" if agent.level == "town" else "便民服务站"
        trustee = f"受托人:{agent.name},{agent.region or ''}{station}代办员"
    item = guide_version(session, ctx, order.item_version_id).name
    return [
        f"委托人:{resident.name or '—'},身份证号:{mask_id_number(id_number) or '—'}",
        trustee,
        f"委托事项:委托人自愿委托受托人代为办理“{item}”事项(办件编号 {order.number}),"
        "包括代为提交和补正申请材料、查询办理进度、领取并回交办理结果。",
        "委托期限:自本委托书签署之日起,至本办件办结回交或终止办理之日止。",
        "委托人承诺所提供的材料真实、有效,并对受托人在委托范围内依法办理的事项承担相应责任。"
        "受托人免费代办,不收取任何费用。",
        f"签署日期:{full_day(day.astimezone(ctx.settings.zone).date())}",
    ]


def _why_not(order: OrderRow) -> str | None:
    if order.entrustment_signature:
        return AlreadySigned.title
    if order.status not in SIGNABLE:
        return NoAgentYet.title if order.status == "submitted" else EntrustmentClosed.title
    return None


def _check_open(order: OrderRow) -> None:
    if order.entrustment_signature:
        raise AlreadySigned()
    if order.status == "submitted":
        raise NoAgentYet()
    if order.status not in SIGNABLE:
        raise EntrustmentClosed()


def _order(session: Session, principal: Principal, order_id: int) -> OrderRow:
    """The resident's own order, or the agent's who handles it (403 for another agent of
    the village, as for the slip); anyone else 404."""
    if principal.role == "agent":
        return own_order(session, principal, order_id)
    order = order_in_scope(session, principal, order_id)
    if principal.role != "resident":
        raise errors.Forbidden("委托书由委托人本人和承办的代办员查看")
    return order


def view(session: Session, ctx: Context, principal: Principal, order_id: int) -> EntrustmentView:
    order = _order(session, principal, order_id)
    signed = order.entrustment_signature
    if signed:
        return EntrustmentView(
            title=TITLE,
            lines=list(signed["lines"]),
            sha256=signed["sha256"],
            signed=True,
            signed_at=datetime.fromisoformat(signed["signedAt"]),
            upload_id=signed["uploadId"],
            can_sign=False,
            why_not=None,
        )
    lines = _lines(session, ctx, order, ctx.now())
    why = _why_not(order)
    return EntrustmentView(
        title=TITLE,
        lines=lines,
        sha256=text_hash(TITLE, lines),
        signed=False,
        signed_at=None,
        upload_id=None,
        can_sign=principal.role == "resident" and why is None,
        why_not=why,
    )


@dataclass(frozen=True)
class _Signing:
    """What the read before signing found: the order as it stood, the text, the signature."""

    status: str
    agent_id: int
    number: str
    lines: list[str]
    signature_key: str
    at: datetime


def _signature(session: Session, principal: Principal, upload_id: int) -> Upload:
    upload = session.get(Upload, upload_id)

    def refused(message: str) -> errors.DomainError:
        return SignatureInvalid(
            message, errors=[{"field": "signatureUploadId", "message": message}]
        )

    if upload is None or upload.owner_id != principal.account_id:
        raise refused("没有找到签名图片,请重新签名")
    if upload.status != "ready" or upload.key is None:
        raise refused("签名图片还没有上传完成")
    if upload.purpose != MATERIAL or upload.content_type != PNG:
        raise refused("签名须是在手机上手写后上传的 PNG 图片(用途 entrustment)")
    if upload.order_id is not None or upload.kept_for is not None:
        raise refused("这张签名图片已经用过了,请重新签名")
    width, height = upload.width or 0, upload.height or 0
    if (
        (upload.size or 0) > MAX_SIGNATURE_BYTES
        or not 0 < max(width, height) <= MAX_SIGNATURE_SIDE
        or max(width, height) > MAX_SIGNATURE_RATIO * min(width, height)
    ):
        raise refused("签名图片的大小不合适,请在签名框内重新签名")
    return upload


def _prepare(
    session: Session, ctx: Context, principal: Principal, order_id: int, signature_id: int
) -> _Signing:
    order = order_in_scope(session, principal, order_id)
    _check_open(order)
    assert order.agent_id is not None  # SIGNABLE orders have one
    upload = _signature(session, principal, signature_id)
    assert upload.key is not None
    now = ctx.now()
    return _Signing(
        status=order.status,
        agent_id=order.agent_id,
        number=order.number,
        lines=_lines(session, ctx, order, now),
        signature_key=upload.key,
        at=now,
    )


async def sign(
    ctx: Context, principal: Principal, order_id: int, signature_id: int
) -> EntrustmentView:
    """The resident signs: the PDF is drawn, kept and recorded as the order's entrustment."""
    signing = await ctx.db.run_read(lambda s: _prepare(s, ctx, principal, order_id, signature_id))
    try:
        drawn = await ctx.store.read(signing.signature_key, MAX_SIGNATURE_BYTES)
    except (KeyError, StorageError):
        raise SignatureInvalid("签名图片读取失败,请重新签名") from None
    sha = text_hash(TITLE, signing.lines)
    signed_at = _minute(ctx, signing.at)
    pdf = await anyio.to_thread.run_sync(_draw, signing, drawn, sha, signed_at)
    key = await uploads.store_made_file(ctx, pdf, PDF)
    try:
        await ctx.db.run_write(
            lambda s: _record(s, ctx, principal, order_id, signature_id, signing, key, pdf, sha)
        )
    except BaseException:
        await uploads.discard_made_file(ctx, key)
        raise
    return await ctx.db.run_read(lambda s: view(s, ctx, principal, order_id))


def _minute(ctx: Context, moment: datetime) -> str:
    local = moment.astimezone(ctx.settings.zone)
    return f"{full_day(local.date())} {local:%H:%M}"


def _record(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    signature_id: int,
    signing: _Signing,
    key: str,
    pdf: bytes,
    sha: str,
) -> None:
    order = order_in_scope(session, principal, order_id)
    _check_open(order)
    if order.agent_id != signing.agent_id:  # the text names the agent it was read with
        raise errors.Conflict("办件刚刚换了代办员,请重新查看委托书后再签署")
    attach_uploads(session, principal, order.id, [signature_id])
    pdf_id = uploads.made_upload(
        session,
        ctx,
        owner_id=principal.account_id,
        purpose="entrustment",
        order_id=order.id,
        key=key,
        data=pdf,
        content_type=PDF,
    )
    now = ctx.now()
    signature = {
        "signedAt": signing.at.isoformat(),
        "lines": signing.lines,
        "sha256": sha,
        "uploadId": pdf_id,
        "signatureUploadId": signature_id,
    }
    values: dict[str, Any] = {
        "entrustment_signature": signature,
        "entrustment_upload_ids": [*(order.entrustment_upload_ids or []), pdf_id],
        "updated_at": now,
    }
    version = guide_version(session, ctx, order.item_version_id)
    if any(m["code"] == MATERIAL for m in version.materials):
        values["materials"] = _with_material(order.materials, pdf_id)
    changed = session.execute(
        update(ORDERS)
        .where(
            ORDERS.c.id == order.id,
            ORDERS.c.status == order.status,
            ORDERS.c.agent_id == order.agent_id,
            ORDERS.c.entrustment_signature.is_(None),
        )
        .values(**values)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict()
    record_event(
        session,
        order.id,
        principal,
        now,
        SIGN_ENTRUSTMENT,
        order.status,
        order.status,
        SIGNED_NOTE,
        {"uploadId": pdf_id, "sha256": sha},
    )
    owed = [
        c
        for c, s in values.get("materials", order.materials).items()
        if s.get("state") in ("missing", "rejected")
    ]
    if order.status == "supplement_required" and not owed:
        # The entrustment was all the notice asked for: signing it is the supplement (补正),
        # and the order goes back to the agent's review as any supplement does.
        moves.act(
            session, ctx, principal, order.id, "supplement", moves.ActionInput(reason=SIGNED_NOTE)
        )


def _with_material(materials: dict[str, Any], pdf_id: int) -> dict[str, Any]:
    """The entrustment material with the signed PDF: beside a paper form's photo still
    standing, in place of one the agent asked again for (or of none)."""
    slot = materials.get(MATERIAL) or {"uploads": [], "state": "empty", "reason": None}
    if slot.get("state") == "submitted" and slot.get("uploads"):
        kept = [*slot["uploads"], pdf_id]
        return {**materials, MATERIAL: {**slot, "uploads": kept}}
    filled = {"uploads": [pdf_id], "state": "submitted", "reason": None, "since_notice": True}
    return {**materials, MATERIAL: filled}


# --- the PDF --------------------------------------------------------------------------


def _ink(drawn: bytes) -> tuple[bytes, int, int]:
    """The signature laid on white paper, as a PNG; SignatureBlank when there is no ink,
    SignatureInvalid when it is not a drawing of lines (a photo, a filled box)."""
    try:
        with PILImage.open(io.BytesIO(drawn), formats=["PNG"]) as image:
            image.load()
            rgba = image.convert("RGBA")
    except (OSError, ValueError, SyntaxError) as exc:
        raise SignatureInvalid("签名图片无法打开,请重新签名") from exc
    paper = PILImage.new("RGB", rgba.size, "white")
    paper.paste(rgba, mask=rgba.getchannel("A"))
    grey = paper.convert("L")
    ink = sum(grey.histogram()[:INK_LEVEL])
    total = grey.width * grey.height
    if ink < max(20, total // 5000):
        raise SignatureBlank()
    if ink > total * 0.6:
        raise SignatureInvalid("签名图片无法识别,请在白色的签名框内手写签名")
    out = io.BytesIO()
    paper.save(out, "PNG", optimize=True)
    return out.getvalue(), paper.width, paper.height


def _draw(signing: _Signing, drawn: bytes, sha: str, signed_at: str) -> bytes:
    signature, width, height = _ink(drawn)
    scale = min(SIGNATURE_BOX[0] / width, SIGNATURE_BOX[1] / height)
    s = Styles("a4")
    story: list[Flowable] = [Paragraph(TITLE, s.title), Spacer(1, 8 * mm)]
    for line in signing.lines[:-1]:
        story += [Paragraph(escape(line), s.body), Spacer(1, 3 * mm)]
    block = Table(
        [
            [
                Paragraph("委托人(签名):", s.body),
                Image(io.BytesIO(signature), width=width * scale, height=height * scale),
            ],
            ["", Paragraph(escape(signing.lines[-1]), s.body)],
        ],
        colWidths=[40 * mm, SIGNATURE_BOX[0] + 10 * mm],
        hAlign="RIGHT",
    )
    block.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM")]))
    story += [Spacer(1, 10 * mm), block]

    def footer(canvas: Canvas, _doc: Any) -> None:
        canvas.saveState()
        label = "文本校验码(SHA-256):"
        canvas.setFont(cjk_font(), 8)
        canvas.drawString(18 * mm, 16 * mm, label)
        canvas.setFont("Helvetica", 8)
        canvas.drawString(18 * mm + canvas.stringWidth(label, cjk_font(), 8), 16 * mm, sha)
        canvas.setFont(cjk_font(), 8)
        canvas.drawString(
            18 * mm,
            11 * mm,
            f"办件编号 {signing.number}    委托人于 {signed_at} 在帮办代办小程序上手写签署",
        )
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = a4_document(buffer, f"{TITLE} {signing.number}", bottom=24 * mm)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
