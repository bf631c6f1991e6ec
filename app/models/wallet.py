"""The material wallet (材料夹): identity documents a resident keeps, once an agent verified
them in an order, to attach to later orders in one tap (app/uploads/wallet.py)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base, BigId, UTCDateTime


class WalletItem(Base):
    """One kept document: its files are the wallet's own copies (uploads kept_for
    "wallet:<id>"); each reuse copies them again for the new order (uploads.wallet_item_id)."""

    __tablename__ = "wallet_items"
    __table_args__ = (
        Index("ix_wallet_items_owner", "owner_id", "id"),
        # The retention job finds the items past their expiry that are still kept.
        Index(
            "ix_wallet_items_expiry",
            "expires_at",
            postgresql_where=text("removed_at IS NULL"),
            sqlite_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    material_code: Mapped[str] = mapped_column(String(40))  # id_card, hukou_book, …
    name: Mapped[str] = mapped_column(String(100))  # 居民身份证, as the guide named it
    # Where it was verified: the order whose agent accepted it (受理), who and when.
    source_order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    verified_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the resident's explicit yes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The setting's days from now, and never after the document's own validity when known.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[date | None] = mapped_column(Date)
    uses: Mapped[int] = mapped_column(default=0)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_reason: Mapped[str | None] = mapped_column(String(10))  # resident, expired, closed
