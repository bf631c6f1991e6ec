"""Who sees an order and what hangs on it (its rating, a complaint, a rectification case):
one rule for every kind of record, checked by `in_scope` (tests/orders/test_scope.py holds the
table). What a caller may not see is answered 404, as if it did not exist."""

from __future__ import annotations

from typing import Any

from app.security.tokens import Principal

# Who may see each kind of record at all; each then only within their own place.
ORDER = frozenset({"resident", "agent", "dispatcher", "admin"})
COMPLAINT = frozenset({"resident", "dispatcher", "admin"})  # not the agents complained of
# A rating and its rectification case are the town's business (the resident sees their
# own rating through their order, an agent the ratings of their own work in a list).
RATING = frozenset({"dispatcher", "admin"})
CASE = frozenset({"dispatcher", "admin"})


def in_scope(principal: Principal, record: Any, roles: frozenset[str]) -> bool:
    """Residents: their own; agents: the orders assigned to them or of their village;
    dispatchers: their town's; admins: their district's; and only roles of `roles`.

    `record` carries resident_id, town_id and district_id (and agent_id and village_id
    when agents may see it)."""
    role = principal.role
    if role not in roles:
        return False
    if role == "resident":
        return bool(record.resident_id == principal.account_id)
    if role == "agent":
        return bool(
            principal.account_id == record.agent_id or principal.region_id == record.village_id
        )
    if role == "dispatcher":
        return bool(record.town_id == principal.region_id)
    return role == "admin" and bool(record.district_id == principal.region_id)
