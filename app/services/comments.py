"""Comments after they are written: removal by their author, hiding by the municipality,
reports by residents, and the moderators' list of reported comments.

Rules enforced here (precedence as everywhere: 404, then 403, then 409):
- 404 when the comment, its proposal or its process is not there for the caller (a draft
  process hides its comments as it hides itself);
- only its author removes a comment (moderators hide instead): the text is deleted, for the
  author's privacy, and the comment stays listed as `removed` with no body; removing again
  is a no-op; a hidden comment stays `hidden` (the municipality's note stands) but its text
  is deleted all the same;
- moderators and admins hide a comment with a reason, shown in its place; the text is kept
  (a hide can be reviewed) but never shown; hiding again replaces the reason; a removed
  comment has nothing left to hide (409 `invalid_status`); every hide is audited
  (`comment.hidden`, status and reason before and after);
- a signed-in account reports a comment with a reason once: one report per account per
  comment is a database constraint, and reporting again changes nothing (the first reason
  stands); reporting a comment that is no longer visible changes nothing either;
- moderators and admins list a process's reported comments with their report counts and
  reasons (reporters are not named), the ones still visible first, then by count;
- none of this depends on the phase: words can be removed or hidden at any time.
"""

from collections import defaultdict

from sqlalchemy import case, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.core.errors import Forbidden, InvalidStatus, NotFound
from app.core.i18n import _t
from app.core.limits import INT32_MAX
from app.models.common import Page
from app.models.proposal import (
    Comment,
    CommentPublic,
    CommentReport,
    CommentStatus,
    HideComment,
    Proposal,
    ReportComment,
    ReportedComment,
)
from app.models.user import Role, User
from app.services import audit, processes
from app.services.permissions import require_role
from app.services.proposals import comment_public

# Reasons shown per reported comment; the count is exact.
MAX_REASONS_SHOWN = 20


def _load(
    session: Session, *, comment_id: int, viewer: User | None, lock: bool
) -> tuple[Comment, int]:
    """The comment and its process id, or 404. With `lock`, the comment row FOR UPDATE, so a
    removal and a hide of the same comment happen one after the other."""
    found = None
    if 1 <= comment_id <= INT32_MAX:
        found = session.exec(
            select(Proposal.process_id)
            .join(Comment, col(Comment.proposal_id) == col(Proposal.id))
            .where(Comment.id == comment_id)
        ).first()
    if found is None:
        raise NotFound(_t("No comment with id {comment_id}.", comment_id=comment_id))
    try:
        processes.get_visible(session, process_id=found, viewer=viewer)
    except NotFound:
        raise NotFound(_t("No comment with id {comment_id}.", comment_id=comment_id)) from None
    query = select(Comment).where(Comment.id == comment_id)
    if lock:
        query = query.with_for_update()
    comment = session.exec(query).first()
    if comment is None:  # deleted with its proposal since the first read
        raise NotFound(_t("No comment with id {comment_id}.", comment_id=comment_id))
    return comment, found


def _author_name(session: Session, comment: Comment) -> str | None:
    if comment.author_id is None:
        return None
    author = session.get(User, comment.author_id)
    return author.display_name if author is not None else None


def remove(session: Session, *, actor: User, comment_id: int) -> None:
    comment, _ = _load(session, comment_id=comment_id, viewer=actor, lock=True)
    if comment.author_id is None or comment.author_id != actor.id:
        raise Forbidden(_t("Only its author can remove a comment; moderators hide one instead."))
    comment.body = None
    if comment.status == CommentStatus.visible:
        comment.status = CommentStatus.removed
    session.add(comment)
    session.flush()


def hide(session: Session, *, actor: User, comment_id: int, data: HideComment) -> CommentPublic:
    comment, process_id = _load(session, comment_id=comment_id, viewer=actor, lock=True)
    require_role(actor, Role.moderator)
    if comment.status == CommentStatus.removed:
        raise InvalidStatus(_t("Its author removed this comment: there is nothing to hide."))
    before = {"status": comment.status, "hidden_reason": comment.hidden_reason}
    comment.status = CommentStatus.hidden
    comment.hidden_reason = data.reason
    session.add(comment)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="comment.hidden",
        target_type="comment",
        target_id=comment.id,
        process_id=process_id,
        before=before,
        after={"status": comment.status, "hidden_reason": comment.hidden_reason},
    )
    return comment_public(comment, _author_name(session, comment))


def report(session: Session, *, actor: User, comment_id: int, data: ReportComment) -> None:
    comment, _ = _load(session, comment_id=comment_id, viewer=actor, lock=False)
    if comment.status != CommentStatus.visible:
        return
    assert actor.id is not None
    exists = session.exec(
        select(CommentReport.id).where(
            CommentReport.comment_id == comment_id, CommentReport.user_id == actor.id
        )
    ).first()
    if exists is not None:
        return
    try:
        # A savepoint: when a concurrent request of the same account reported first, the
        # unique constraint fires and the outcome is the same, one report.
        with session.begin_nested():
            session.add(CommentReport(comment_id=comment_id, user_id=actor.id, reason=data.reason))
    except IntegrityError:
        pass


def reported(
    session: Session, *, actor: User, process_id: int, limit: int, offset: int
) -> Page[ReportedComment]:
    processes.get_visible(session, process_id=process_id, viewer=actor)
    require_role(actor, Role.moderator)
    counts = (
        select(CommentReport.comment_id, func.count().label("reports"))
        .group_by(col(CommentReport.comment_id))
        .subquery()
    )
    where = col(Proposal.process_id) == process_id
    total = session.exec(
        select(func.count())
        .select_from(Comment)
        .join(counts, counts.c.comment_id == col(Comment.id))
        .join(Proposal, col(Proposal.id) == col(Comment.proposal_id))
        .where(where)
    ).one()
    rows = session.exec(
        select(Comment, User.display_name, counts.c.reports)
        .join(counts, counts.c.comment_id == col(Comment.id))
        .join(Proposal, col(Proposal.id) == col(Comment.proposal_id))
        .outerjoin(User, col(User.id) == col(Comment.author_id))
        .where(where)
        .order_by(
            case((col(Comment.status) == CommentStatus.visible, 0), else_=1),
            counts.c.reports.desc(),
            col(Comment.id),
        )
        .limit(limit)
        .offset(offset)
    ).all()
    reasons: dict[int, list[str]] = defaultdict(list)
    ids = [comment.id for comment, _, _ in rows]
    if ids:
        for comment_id, reason in session.exec(
            select(CommentReport.comment_id, CommentReport.reason)
            .where(col(CommentReport.comment_id).in_(ids))
            .order_by(col(CommentReport.created_at).desc(), col(CommentReport.id).desc())
        ).all():
            if len(reasons[comment_id]) < MAX_REASONS_SHOWN:
                reasons[comment_id].append(reason)
    items = [
        ReportedComment(
            **comment_public(comment, name).model_dump(),
            report_count=count,
            reasons=reasons[comment.id or 0],
        )
        for comment, name, count in rows
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)
