"""The daily retention run: what is due, and only that, in bounded rounds. Running it twice
changes nothing the first run did not (each step takes only what is still due)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.context import Context
from app.models import AuditEntry
from app.retention.accounts import close_idle, idle_accounts
from app.retention.cases import remove_case_evidence
from app.retention.files import remove_due_files, remove_files
from app.uploads.wallet import remove_expired, remove_owned

BATCH = 1000  # audit rows per statement
ACCOUNTS_BATCH = 100


@dataclass
class RetentionOutcome:
    order_files: int = 0  # orders whose files were removed
    audit_entries: int = 0  # audit log rows removed
    accounts: int = 0  # accounts closed for disuse
    case_files: int = 0  # complaints' and appeals' files removed
    complaint_contacts: int = 0  # complainants without an account forgotten
    wallet_items: int = 0  # expired documents of residents' wallets removed

    @property
    def total(self) -> int:
        return (
            self.order_files
            + self.audit_entries
            + self.accounts
            + self.case_files
            + self.complaint_contacts
            + self.wallet_items
        )


def years_before(moment: datetime, years: int) -> datetime:
    """The same day `years` earlier (29 February → 28 February)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def prune_audit(session: Session, cutoff: datetime, limit: int = BATCH) -> int:
    """The oldest audit rows before `cutoff`, through ix_audit_log_at. The database refuses
    to remove a row less than a year old whatever the setting (migration 0013)."""
    oldest = select(AuditEntry.id).where(AuditEntry.at < cutoff).order_by(AuditEntry.at)
    result = session.execute(
        delete(AuditEntry)
        .where(AuditEntry.id.in_(oldest.limit(limit)))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def run_retention(ctx: Context) -> RetentionOutcome:
    settings = ctx.settings.retention
    outcome = RetentionOutcome()
    outcome.order_files = await remove_due_files(ctx)
    outcome.case_files, outcome.complaint_contacts = await remove_case_evidence(ctx)
    outcome.wallet_items = await remove_expired(ctx)

    audit_cutoff = years_before(ctx.now(), settings.audit_years)
    while not ctx.stopping:
        removed = await ctx.db.run_write(lambda s: prune_audit(s, audit_cutoff))
        outcome.audit_entries += removed
        if removed < BATCH:
            break

    idle_cutoff = ctx.now() - timedelta(days=settings.idle_account_days)
    while not ctx.stopping:
        ids = await ctx.db.run_read(lambda s: idle_accounts(s, idle_cutoff, ACCOUNTS_BATCH))
        for account_id in ids:
            ended = await ctx.db.run_write(
                lambda s: close_idle(s, ctx, account_id, idle_cutoff)  # noqa: B023
            )
            if ended is not None:
                outcome.accounts += 1
                await remove_files(ctx, ended)
                await remove_owned(ctx, account_id)
        if len(ids) < ACCOUNTS_BATCH:
            break
    return outcome
