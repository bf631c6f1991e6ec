"""Who sees what (app/scope.py): one rule for an order, a complaint, a rating and a
rectification case, for each role against its own village, another village of the same
town, another town, another district, and a staff account with no region."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app import scope
from app.security.tokens import Principal

RESIDENT, OTHER_RESIDENT, AGENT = 1, 2, 3
# Regions: district 100 has town 10 (villages 1 and 2) and town 20 (village 3); district
# 200 has town 30 (village 4).
VILLAGE, TOWN, DISTRICT = 1, 10, 100
# One record of each kind, of a resident of village 1, assigned to agent 3 (of village 2).
RECORD = SimpleNamespace(
    resident_id=RESIDENT, agent_id=AGENT, village_id=VILLAGE, town_id=TOWN, district_id=DISTRICT
)
KINDS = {
    "order": scope.ORDER,
    "complaint": scope.COMPLAINT,
    "rating": scope.RATING,
    "case": scope.CASE,
}


def who(role: str, account_id: int, region_id: int | None) -> Principal:
    return Principal(account_id=account_id, role=role, region_id=region_id)


# Who: which of the kinds (order, complaint, rating, case) they see.
TABLE = [
    ("resident, own", who("resident", RESIDENT, 1), {"order", "complaint"}),
    ("resident, another of the village", who("resident", OTHER_RESIDENT, 1), set()),
    ("resident, no village", who("resident", OTHER_RESIDENT, None), set()),
    ("agent, assigned (of another village)", who("agent", AGENT, 2), {"order"}),
    ("agent, of its village", who("agent", 4, VILLAGE), {"order"}),
    ("agent, another village of the town", who("agent", 5, 2), set()),
    ("agent, another town", who("agent", 6, 3), set()),
    ("agent, no village", who("agent", 7, None), set()),
    ("agent, assigned, no village", who("agent", AGENT, None), {"order"}),
    ("dispatcher, its town", who("dispatcher", 8, TOWN), set(KINDS)),
    ("dispatcher, another town", who("dispatcher", 9, 20), set()),
    ("dispatcher, another district", who("dispatcher", 9, 30), set()),
    ("dispatcher, a village's id", who("dispatcher", 9, VILLAGE), set()),
    ("dispatcher, no town", who("dispatcher", 9, None), set()),
    ("admin, its district", who("admin", 10, DISTRICT), set(KINDS)),
    ("admin, another district", who("admin", 11, 200), set()),
    ("admin, the town's id", who("admin", 11, TOWN), set()),
    ("admin, no district", who("admin", 11, None), set()),
    ("another role", who("system", 12, DISTRICT), set()),
]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("case", "principal", "sees"), TABLE, ids=[row[0] for row in TABLE])
def test_who_sees_what(case: str, principal: Principal, sees: set[str], kind: str) -> None:
    assert scope.in_scope(principal, RECORD, KINDS[kind]) is (kind in sees), case


def test_a_record_without_an_agent_or_a_village_is_enough_for_who_may_not_see_it() -> None:
    """A complaint, a rating or a case need carry only what their viewers are checked on."""
    case = SimpleNamespace(town_id=TOWN, district_id=DISTRICT)
    assert scope.in_scope(who("dispatcher", 8, TOWN), case, scope.CASE)
    assert not scope.in_scope(who("agent", AGENT, VILLAGE), case, scope.CASE)
    assert not scope.in_scope(who("resident", RESIDENT, VILLAGE), case, scope.CASE)
