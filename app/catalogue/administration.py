"""The catalogue changed by a person: an admin's edits, retirements, restorations and
imports, and the switching of items on and off for a town or a village (admins, and
dispatchers for their own town). Each change writes its audit row in its own transaction:
one function per change, called by the API and the console alike."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import audit, errors
from app.catalogue import enablement, outputs, service
from app.catalogue.document import CatalogueDocument, ItemSpec
from app.context import Context
from app.security.tokens import Principal


def create_item(
    session: Session, ctx: Context, principal: Principal, spec: ItemSpec
) -> outputs.Guide:
    guide = service.save_item(session, ctx, principal, spec, creating=True)
    audit.record(session, principal, "catalogue.create", f"item:{spec.code}", ctx.now())
    return guide


def edit_item(
    session: Session, ctx: Context, principal: Principal, code: str, spec: ItemSpec
) -> outputs.Guide:
    """A new guide version when the guide changed; orders already submitted keep theirs."""
    if spec.code != code:
        raise errors.InvalidInput(errors=[{"field": "code", "message": "不能修改事项编码"}])
    guide = service.save_item(session, ctx, principal, spec, creating=False)
    audit.record(session, principal, "catalogue.edit", f"item:{code}", ctx.now())
    return guide


def retire_item(session: Session, ctx: Context, principal: Principal, code: str) -> None:
    service.retire_item(session, ctx, code)
    audit.record(session, principal, "catalogue.retire", f"item:{code}", ctx.now())


def restore_item(session: Session, ctx: Context, principal: Principal, code: str) -> outputs.Guide:
    guide = service.restore_item(session, code)
    audit.record(session, principal, "catalogue.restore", f"item:{code}", ctx.now())
    return guide


def switch_items(
    session: Session,
    ctx: Context,
    principal: Principal,
    region_id: int,
    codes: list[str],
    enabled: bool,
) -> outputs.EnablementResult:
    result = enablement.set_enabled(session, principal, region_id, codes, enabled)
    audit.record(
        session,
        principal,
        "catalogue.enablement",
        f"region:{region_id}",
        ctx.now(),
        {"itemCodes": codes, "enabled": enabled},
    )
    return result


def import_items(
    session: Session,
    ctx: Context,
    principal: Principal,
    document: CatalogueDocument,
    file_format: str,
) -> outputs.ImportResult:
    """A checked file (service.read_file) applied whole, enabled within the admin's district."""
    counts = service.import_document(
        session, document, actor_id=principal.account_id, enable_within=principal.region_id
    )
    audit.record(
        session, principal, "catalogue.import", f"file:{file_format}", ctx.now(), dict(counts)
    )
    return outputs.ImportResult(**counts)
