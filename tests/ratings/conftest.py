"""The ratings tests' settings: as everywhere, or with a setting of the ratings' area changed
for one test, e.g. `@pytest.mark.parametrize("settings", ["working"], indirect=True)` for
DAIBAN_RATINGS_COMPLAINT_NEXT_DAY=working."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    next_day = getattr(request, "param", None)
    extra = {"DAIBAN_RATINGS_COMPLAINT_NEXT_DAY": next_day} if next_day else {}
    return make_settings(tmp_path / "var", database_url, **extra)
