"""Every model, imported here so Alembic and the app see one metadata."""

from app.models.accounts import Account, ConsoleSession, ConsoleSignIn, RefreshToken
from app.models.base import Base
from app.models.catalogue import CatalogueItem, Department, ItemEnablement, ItemVersion
from app.models.keys import KeyCheck
from app.models.ledger import AuditEntry, Ledger
from app.models.notifications import JobRun, Notification, Reminder, SubscriptionCredit
from app.models.orders import (
    CalendarOverride,
    CalendarYear,
    Order,
    OrderEvent,
    OrderNumberCounter,
    OrderNumberDay,
)
from app.models.prereviews import Prereview
from app.models.ratings import Complaint, Rating, RatingAppeal, Rectification
from app.models.regions import Region
from app.models.uploads import Upload
from app.models.wallet import WalletItem

__all__ = [
    "Account",
    "AuditEntry",
    "Base",
    "CalendarOverride",
    "CalendarYear",
    "CatalogueItem",
    "Complaint",
    "ConsoleSession",
    "ConsoleSignIn",
    "Department",
    "ItemEnablement",
    "ItemVersion",
    "JobRun",
    "KeyCheck",
    "Ledger",
    "Notification",
    "Order",
    "OrderEvent",
    "OrderNumberCounter",
    "OrderNumberDay",
    "Prereview",
    "Rating",
    "RatingAppeal",
    "Rectification",
    "RefreshToken",
    "Region",
    "Reminder",
    "SubscriptionCredit",
    "Upload",
    "WalletItem",
]
