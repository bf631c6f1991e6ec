"""Each model's Core table, named once: for the statements that skip the ORM (hot paths,
bulk updates, reports), which read and write rows without building objects."""

from __future__ import annotations

from sqlalchemy import Table

from app.models import (
    Account,
    AuditEntry,
    CatalogueItem,
    Complaint,
    ItemEnablement,
    ItemVersion,
    Notification,
    Order,
    OrderEvent,
    Rating,
    Rectification,
    Region,
    Reminder,
    SubscriptionCredit,
    Upload,
)
from app.models.base import Base


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table), model
    return table


ACCOUNTS = table_of(Account)
AUDIT = table_of(AuditEntry)
CASES = table_of(Rectification)
COMPLAINTS = table_of(Complaint)
CREDITS = table_of(SubscriptionCredit)
ENABLED = table_of(ItemEnablement)
EVENTS = table_of(OrderEvent)
ITEMS = table_of(CatalogueItem)
NOTIFICATIONS = table_of(Notification)
ORDERS = table_of(Order)
RATINGS = table_of(Rating)
REGIONS = table_of(Region)
REMINDERS = table_of(Reminder)
UPLOADS = table_of(Upload)
VERSIONS = table_of(ItemVersion)
