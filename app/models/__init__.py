"""Every model, imported here so Alembic and the app see one metadata."""

from app.models.accounts import Account, RefreshToken
from app.models.base import Base
from app.models.regions import Region

__all__ = ["Account", "Base", "RefreshToken", "Region"]
