"""Each model's Core table, named once: for the statements that skip the ORM (hot paths,
bulk updates, reports), which read and write rows without building objects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Table, select

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


def looked_up(column: Any, key: ColumnElement[Any]) -> ScalarSelect[Any]:
    """`column` of the row whose id is `key` (NULL when there is none), looked up for each
    row a statement returns instead of joined: for the pages of lists, whose plan must come
    from the list's index whatever the statistics say. With a join PostgreSQL plans the
    whole list by them, and when they lag behind a burst of new rows it joined and sorted
    every match to keep a page of 20 (tests/orders/test_query_plans.py)."""
    return select(column).where(column.table.c.id == key).scalar_subquery()


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
