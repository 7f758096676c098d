"""The audit log (admin, read-only)."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.core.errors import Forbidden, NotAuthenticated, ValidationFailed
from app.core.limits import INT32_MAX
from app.core.problems import problem_responses
from app.models.audit import AuditEntryPublic
from app.models.common import Page
from app.routers.deps import CurrentUser, Paging, SessionDep
from app.services import audit

router = APIRouter(tags=["audit"])


@router.get(
    "/audit",
    response_model=Page[AuditEntryPublic],
    responses=problem_responses(NotAuthenticated, Forbidden, ValidationFailed),
    summary="Actions by moderators and admins, newest first (admin)",
)
def list_audit(
    actor: CurrentUser,
    session: SessionDep,
    paging: Paging,
    process_id: Annotated[
        int | None, Query(ge=1, le=INT32_MAX, description="Only this process.")
    ] = None,
) -> Page[AuditEntryPublic]:
    return audit.list_entries(
        session, actor=actor, process_id=process_id, limit=paging.limit, offset=paging.offset
    )
