"""Operators' views: the outgoing-mail queue."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.core.errors import Forbidden, NotAuthenticated, ValidationFailed
from app.core.problems import problem_responses
from app.models.common import Page
from app.models.mail import MailPublic, MailStatus
from app.routers.deps import CurrentUser, Paging, SessionDep
from app.services import mail

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/mail",
    response_model=Page[MailPublic],
    responses=problem_responses(NotAuthenticated, Forbidden, ValidationFailed),
    summary="The outgoing-mail queue, newest first (admin)",
    description="Metadata only (no bodies, no tokens): who, what kind, `pending`, `sent` or "
    "`failed`, attempts and the last error. `status` keeps one status.",
)
def list_mail(
    actor: CurrentUser,
    session: SessionDep,
    paging: Paging,
    status: Annotated[MailStatus | None, Query(description="Only mails in this status.")] = None,
) -> Page[MailPublic]:
    return mail.queue(session, actor=actor, status=status, limit=paging.limit, offset=paging.offset)
