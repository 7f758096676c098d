"""Comments after they are written: removal, hiding, reports (rules in services/comments.py)."""

from fastapi import APIRouter, Response, status

from app.core.errors import (
    Forbidden,
    InvalidStatus,
    NotAuthenticated,
    NotFound,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.common import Page
from app.models.proposal import CommentPublic, HideComment, ReportComment, ReportedComment
from app.routers.deps import CurrentUser, Paging, SessionDep
from app.services import comments

router = APIRouter(tags=["comments"])


@router.delete(
    "/comments/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotAuthenticated, Forbidden, NotFound, ValidationFailed),
    summary="Remove your own comment (its text is deleted; it stays listed as removed)",
)
def remove_comment(comment_id: int, actor: CurrentUser, session: SessionDep) -> Response:
    comments.remove(session, actor=actor, comment_id=comment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/comments/{comment_id}/hide",
    response_model=CommentPublic,
    responses=problem_responses(
        NotAuthenticated, Forbidden, NotFound, InvalidStatus, ValidationFailed
    ),
    summary="Hide a comment with a reason shown in its place (moderators, admins; audited)",
)
def hide_comment(
    comment_id: int, data: HideComment, actor: CurrentUser, session: SessionDep
) -> CommentPublic:
    return comments.hide(session, actor=actor, comment_id=comment_id, data=data)


@router.post(
    "/comments/{comment_id}/report",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotAuthenticated, NotFound, ValidationFailed),
    summary="Report a comment to the moderators (once per account; again changes nothing)",
)
def report_comment(
    comment_id: int, data: ReportComment, actor: CurrentUser, session: SessionDep
) -> Response:
    comments.report(session, actor=actor, comment_id=comment_id, data=data)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/processes/{process_id}/reported-comments",
    response_model=Page[ReportedComment],
    responses=problem_responses(NotAuthenticated, Forbidden, NotFound, ValidationFailed),
    summary="A process's reported comments with their report counts (moderators, admins)",
)
def reported_comments(
    process_id: int, actor: CurrentUser, session: SessionDep, paging: Paging
) -> Page[ReportedComment]:
    return comments.reported(
        session, actor=actor, process_id=process_id, limit=paging.limit, offset=paging.offset
    )
