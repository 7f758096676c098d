"""The audit log: who did what, when, with the values before and after.

Append-only: entries are written by the services that change things on behalf of a
moderator or admin, and no code path updates or deletes them.
"""

from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models.audit import AuditEntry, AuditEntryPublic
from app.models.common import Page
from app.models.user import Role, User
from app.services.permissions import require_role


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: int | None,
    process_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor_id=actor.id if actor else None,
            action=action,
            process_id=process_id,
            target_type=target_type,
            target_id=target_id,
            before=to_jsonable_python(before) if before is not None else None,
            after=to_jsonable_python(after) if after is not None else None,
        )
    )


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, on both sides."""
    keys = [key for key in after if before.get(key) != after[key]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def list_entries(
    session: Session, *, actor: User, process_id: int | None, limit: int, offset: int
) -> Page[AuditEntryPublic]:
    require_role(actor, Role.admin)
    query = select(AuditEntry)
    if process_id is not None:
        query = query.where(AuditEntry.process_id == process_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit).offset(offset)).all()
    return Page(
        items=[AuditEntryPublic.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
