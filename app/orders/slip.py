"""The 受理单 on paper, and the 回执 once the result is handed back (回交): a PDF in two
layouts, A4 for the office printer and an 80 mm roll for a receipt printer.

The facts come from the order's detail as the caller sees it (`queries.order_detail` and
its `AcceptanceSlip`), with the resident's name masked (李**) and never their ID number or
phone. The QR code opens the public progress page (app/orders/progress_page.py); its link
is printed under it, so it can be typed too.

Chinese is drawn in the standard CID font STSong-Light (Adobe's Song for simplified
Chinese): a PDF reader supplies it, so no font file is shipped or downloaded, and the text
stays text (copyable, searchable). The PDF is built in a worker thread, outside any
transaction (reportlab and the QR code are CPU work)."""

from __future__ import annotations

import functools
import io
from datetime import datetime
from typing import Literal
from xml.sax.saxutils import escape

import anyio.to_thread
import msgspec
import segno
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Image, Paragraph, SimpleDocTemplate, Spacer, Table
from reportlab.platypus.tables import TableStyle
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models.tables import ACCOUNTS
from app.notifications.messages import DELIVERY_NAMES, OUTCOME_NAMES, full_day
from app.orders import notices, progress_page, queries
from app.orders.records import order_in_scope, own_order
from app.security.pii import mask_name
from app.security.tokens import Principal
from app.workdays import last_day

Layout = Literal["a4", "receipt"]
PDF = "application/pdf"
FONT = "STSong-Light"
RECEIPT_WIDTH = 80 * mm  # the common thermal roll; 72 mm of it printable

SlipNotIssued = errors.error("slip_not_issued", 409, "办件尚未受理,还没有受理单")


class SlipFacts(msgspec.Struct, kw_only=True):
    """What the paper says, as text ready to print."""

    receipt: bool  # 回执: the result has been handed back
    number: str
    item_name: str
    kind_name: str
    status_name: str
    resident: str  # masked
    submitted: str
    accepted: str
    due: str
    fees: str
    handler: str
    station: str
    materials_to_follow: list[str]
    rights_and_duties: str
    outcome: str | None = None
    completed: str | None = None
    delivery: str | None = None
    url: str | None = None
    printed: str


def _day(moment: datetime, ctx: Context) -> str:
    return full_day(moment.astimezone(ctx.settings.zone).date())


def _minute(moment: datetime, ctx: Context) -> str:
    return f"{_day(moment, ctx)} {moment.astimezone(ctx.settings.zone):%H:%M}"


def facts(session: Session, ctx: Context, principal: Principal, order_id: int) -> SlipFacts:
    """The slip's facts: the caller's own order (an agent: the one they handle, 403 for
    another of their village), 404 out of scope, 409 before 受理. `url` is None until the
    first slip has made the progress page's link (`progress_page.ensure_token`)."""
    if principal.role == "agent":
        order = own_order(session, principal, order_id)
    else:
        order = order_in_scope(session, principal, order_id)
    detail = queries.order_detail(session, ctx, principal, order_id)
    slip = detail.acceptance_slip
    if slip is None or detail.accepted_at is None:
        raise SlipNotIssued()
    name = session.execute(
        select(ACCOUNTS.c.name).where(ACCOUNTS.c.id == order.resident_id)
    ).scalar_one_or_none()
    village = notices.village_name(session, ctx, order.village_id)
    if slip.due_at is None:
        due = "—"
    else:
        last = full_day(last_day(slip.due_at, ctx.settings.zone))
        due = (
            f"即办件,{last}前办结"
            if slip.promised_days == 0
            else f"{slip.promised_days}个工作日内办结,最迟{last}"
        )
        if slip.due_provisional:
            due += "(节假日安排未公布,暂定)"
        if detail.status == "on_hold":
            due += "(中止期间暂停计时)"
    fees = "免费代办"
    if slip.fees_fen:
        fees = f"依法应缴 {slip.fees_fen / 100:.2f} 元" + (
            f"(依据:{slip.fee_basis})" if slip.fee_basis else ""
        )
        fees += ";代办服务免费"
    if detail.completed_at and detail.fees_collected_fen:
        fees += f";实收 {detail.fees_collected_fen / 100:.2f} 元,另附票据"
    handler = slip.handler_name or "—"
    if slip.handler_phone:
        handler += f"(值班电话 {slip.handler_phone})"
    outcome = None
    if detail.outcome:
        outcome = OUTCOME_NAMES[detail.outcome] + (
            f":{detail.outcome_note}" if detail.outcome_note else ""
        )
    seed = order.progress_page_seed  # the first slip makes it (progress_page.ensure_token)
    token = progress_page.token_of(ctx, seed) if seed else None
    return SlipFacts(
        receipt=detail.delivered_at is not None,
        number=detail.number,
        item_name=detail.item_name,
        kind_name=detail.kind_name,
        status_name=detail.status_name,
        resident=mask_name(name) or "—",
        submitted=_minute(detail.submitted_at, ctx),
        accepted=_minute(detail.accepted_at, ctx),
        due=due,
        fees=fees,
        handler=handler,
        station=f"{village}便民服务站" if village else "—",
        materials_to_follow=list(slip.materials_to_follow),
        rights_and_duties=slip.rights_and_duties,
        outcome=outcome,
        completed=_day(detail.completed_at, ctx) if detail.completed_at else None,
        delivery=(
            f"{DELIVERY_NAMES.get(detail.delivery_method or '', '—')},"
            f"{_day(detail.delivered_at, ctx)}"
            if detail.delivered_at
            else None
        ),
        url=progress_page.page_url(ctx.settings, token) if token else None,
        printed=_minute(ctx.now(), ctx),
    )


async def slip_pdf(
    ctx: Context, principal: Principal, order_id: int, layout: Layout
) -> tuple[bytes, str]:
    """The PDF and its file name (the order number, ASCII). The first slip of an order makes
    its progress page's link (one short write); every later one reads it."""
    found = await ctx.db.run_read(lambda s: facts(s, ctx, principal, order_id))
    if found.url is None:
        token = await ctx.db.run_write(lambda s: progress_page.ensure_token(s, ctx, order_id))
        found = msgspec.structs.replace(found, url=progress_page.page_url(ctx.settings, token))
    data = await anyio.to_thread.run_sync(render, found, layout)
    return data, f"{found.number}.pdf"


@functools.cache
def cjk_font() -> str:
    """The CID font's name, registered with reportlab once (the signed entrustment's PDF,
    app/orders/entrustment.py, draws with it too)."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


class Styles:
    """The paragraph styles of the service's papers, in a layout's sizes."""

    def __init__(self, layout: Layout) -> None:
        receipt = layout == "receipt"
        size = 8.5 if receipt else 11
        font = cjk_font()
        self.body = ParagraphStyle(
            "body", fontName=font, fontSize=size, leading=size * 1.45, wordWrap="CJK"
        )
        self.label = ParagraphStyle("label", parent=self.body, textColor=colors.HexColor("#444"))
        self.small = ParagraphStyle(
            "small", parent=self.body, fontSize=size - 1.5, leading=(size - 1.5) * 1.4
        )
        self.title = ParagraphStyle(
            "title",
            parent=self.body,
            fontSize=13 if receipt else 18,
            leading=(13 if receipt else 18) * 1.4,
            alignment=TA_CENTER,
        )
        self.center = ParagraphStyle("center", parent=self.small, alignment=TA_CENTER)
        self.url = ParagraphStyle(
            "url", parent=self.center, fontName="Helvetica", fontSize=size - 2.5
        )


def _rows(f: SlipFacts) -> list[tuple[str, str]]:
    rows = [
        ("办件编号", f.number),
        ("办理事项", f"{f.item_name}({f.kind_name})"),
        ("委托人", f.resident),
        ("委托时间", f.submitted),
        ("受理时间", f.accepted),
        ("办结时限", f.due),
        ("收费", f.fees),
        ("受理人", f.handler),
        ("服务站", f.station),
    ]
    if f.materials_to_follow:
        rows.append(("容缺后补", "、".join(f.materials_to_follow) + "(请尽快补交)"))
    rows.append(("当前状态", f.status_name))
    if f.outcome:
        rows.append(("办理结果", f.outcome))
    if f.completed:
        rows.append(("办结日期", f.completed))
    if f.delivery:
        rows.append(("回交方式", f.delivery))
    return rows


def _story(f: SlipFacts, layout: Layout) -> list[Flowable]:
    s = Styles(layout)
    receipt = layout == "receipt"
    width = RECEIPT_WIDTH - 8 * mm if receipt else A4[0] - 36 * mm
    label_width = 15 * mm if receipt else 26 * mm
    title = "帮办代办回执" if f.receipt else "帮办代办受理单"
    table = Table(
        [
            [Paragraph(escape(label), s.label), Paragraph(escape(value), s.body)]
            for label, value in _rows(f)
        ],
        colWidths=[label_width, width - label_width],
    )
    lines: list[tuple[object, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 1 if receipt else 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 1 if receipt else 4),
    ]
    if not receipt:
        lines.append(("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888")))
    table.setStyle(TableStyle(lines))
    qr_side = 30 * mm if receipt else 34 * mm
    qr = Image(_qr_png(f.url or ""), width=qr_side, height=qr_side)
    scan = Paragraph("扫码查看办理进度(需输入身份证号或手机号后四位)", s.center)
    link = Paragraph(escape(f.url or ""), s.url)
    story: list[Flowable] = [
        Paragraph(title, s.title),
        Spacer(1, 2 * mm if receipt else 5 * mm),
        table,
        Spacer(1, 3 * mm),
    ]
    if receipt:
        story += [qr, scan, link]
    else:
        block = Table(
            [[qr, [Spacer(1, 8 * mm), scan, Spacer(1, 2 * mm), link]]],
            colWidths=[qr_side + 6 * mm, width - qr_side - 6 * mm],
        )
        block.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
        story.append(block)
    story += [
        Spacer(1, 3 * mm),
        Paragraph("您的权利和义务", s.label),
        Paragraph(escape(f.rights_and_duties), s.small),
        Spacer(1, 3 * mm),
    ]
    if not receipt:
        story += [
            Spacer(1, 6 * mm),
            Paragraph("受理人(签字):____________　　委托人(签字):____________", s.body),
            Spacer(1, 4 * mm),
        ]
    story.append(Paragraph(f"打印时间 {escape(f.printed)}", s.small))
    return story


def _qr_png(url: str) -> io.BytesIO:
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=8, border=2)
    buffer.seek(0)
    return buffer


def render(f: SlipFacts, layout: Layout) -> bytes:
    """The PDF. A receipt is one page exactly as long as its content (a roll has no pages)."""
    buffer = io.BytesIO()
    info = {"title": f"{'回执' if f.receipt else '受理单'} {f.number}", "author": "帮办代办"}
    if layout == "receipt":
        margin = 4 * mm
        width = RECEIPT_WIDTH - 2 * margin
        height = sum(flowable.wrap(width, 10_000 * mm)[1] for flowable in _story(f, layout))
        doc = SimpleDocTemplate(
            buffer,
            pagesize=(RECEIPT_WIDTH, height + 2 * margin + 6 * mm),
            leftMargin=margin,
            rightMargin=margin,
            topMargin=margin,
            bottomMargin=margin,
            **info,
        )
    else:
        doc = a4_document(buffer, info["title"])
    doc.build(_story(f, layout))
    return buffer.getvalue()


def a4_document(buffer: io.BytesIO, title: str, bottom: float = 18 * mm) -> SimpleDocTemplate:
    """An A4 page with the service's margins (the slip's; the signed entrustment's, whose
    footer wants a taller bottom margin)."""
    return SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=bottom,
        title=title,
        author="帮办代办",
    )
