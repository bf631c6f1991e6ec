"""What the personal-data keys of a database were: a value only those keys read back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base, UTCDateTime


class KeyCheck(Base):
    """Written at the first start with the keys in use, read at every start after: keys
    that cannot read it are not the ones the personal data was written with."""

    __tablename__ = "key_checks"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)  # "pii"
    sealed: Mapped[str] = mapped_column(Text)  # a known text, encrypted (key id first)
    lookup_hash: Mapped[str] = mapped_column(String(64))  # a known text's keyed hash
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
