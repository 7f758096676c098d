"""Proposals: submission, editing, withdrawal and review, plus supports and comments.

Rules enforced here (the contract's precedence: 404, 403 `forbidden`, 409, 403
`not_eligible`, then the endpoint's own 422s):
- submitting needs phase `submission` and an eligible account (postcode and age rules);
- only the author edits, only in phase `submission` and status `submitted`;
- only the author withdraws, before voting, a `submitted` or `accepted` proposal;
- moderators and admins review in `submission` or `review`: accept with a final cost of at
  most the budget, or reject with a reason; the last decision stands; a withdrawn proposal
  cannot be reviewed;
- supports and comments are for signed-in residents while the process is open for
  co-thinking (submission, review, voting); one support per user per proposal is a database
  constraint, and supporting twice is a no-op;
- a proposal's category is one of its process's categories when the process fixes them
  (app/services/categories.py); its location is all of lat, lon and address, or none;
- a comment's text is shown only while it is `visible` (removal and hiding are in
  app/services/comments.py).
"""

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.core.errors import (
    FieldError,
    Forbidden,
    InvalidPhase,
    InvalidStatus,
    NotFound,
    ValidationFailed,
)
from app.core.i18n import Message, _t
from app.core.limits import INT32_MAX
from app.models.base import utcnow
from app.models.common import Page
from app.models.process import Phase, Process
from app.models.proposal import (
    IMAGE_PATH,
    AcceptDecision,
    AuthorPublic,
    Comment,
    CommentCreate,
    CommentPublic,
    CommentStatus,
    ImagePublic,
    Location,
    Proposal,
    ProposalCreate,
    ProposalImage,
    ProposalPublic,
    ProposalSort,
    ProposalStatus,
    ProposalUpdate,
    RejectDecision,
    Support,
    SupportState,
)
from app.models.user import FORMER_RESIDENT, Role, User
from app.services import audit, categories, processes
from app.services.eligibility import require_eligible
from app.services.permissions import require_role

CO_THINKING_PHASES = (Phase.submission, Phase.review, Phase.voting)

ProposalLock = Literal["update", "key_share"] | None

_support_count = (
    select(func.count())
    .where(Support.proposal_id == Proposal.id)
    .correlate(Proposal)
    .scalar_subquery()
)
_comment_count = (
    select(func.count())
    .where(Comment.proposal_id == Proposal.id)
    .correlate(Proposal)
    .scalar_subquery()
)


def _author(author_id: int | None, display_name: str | None) -> AuthorPublic:
    if author_id is None or display_name is None:
        return AuthorPublic(id=None, display_name=FORMER_RESIDENT)
    return AuthorPublic(id=author_id, display_name=display_name)


def _rows(
    session: Session,
    *,
    viewer: User | None,
    where: list[ColumnElement[bool]],
    order: list[Any] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[ProposalPublic]:
    query = (
        select(Proposal, User.display_name, _support_count, _comment_count)
        .outerjoin(User, col(User.id) == col(Proposal.author_id))
        .where(*where)
    )
    if order:
        query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    rows = session.exec(query).all()
    ids = [p.id for p, *_ in rows if p.id is not None]
    supported = _supported_among(session, viewer, ids)
    images = _images_of(session, ids)
    return [
        ProposalPublic.model_validate(
            {
                **proposal.model_dump(),
                "author": _author(proposal.author_id, name),
                "support_count": supports,
                "comment_count": comments,
                "supported_by_me": None if supported is None else proposal.id in supported,
                "location": _location(proposal),
                "images": images.get(proposal.id or 0, []),
            }
        )
        for proposal, name, supports, comments in rows
    ]


def _location(proposal: Proposal) -> Location | None:
    if proposal.lat is None or proposal.lon is None:
        return None
    return Location(lat=proposal.lat, lon=proposal.lon, address=proposal.address or "")


def _set_location(proposal: Proposal, location: Location | None) -> None:
    proposal.lat = None if location is None else location.lat
    proposal.lon = None if location is None else location.lon
    proposal.address = None if location is None else location.address


def _images_of(session: Session, proposal_ids: list[int]) -> dict[int, list[ImagePublic]]:
    if not proposal_ids:
        return {}
    found: dict[int, list[ImagePublic]] = {}
    for image in session.exec(
        select(ProposalImage)
        .where(col(ProposalImage.proposal_id).in_(proposal_ids))
        .order_by(col(ProposalImage.id))
    ).all():
        assert image.id is not None
        url = IMAGE_PATH.format(proposal_id=image.proposal_id, image_id=image.id)
        found.setdefault(image.proposal_id, []).append(
            ImagePublic(id=image.id, url=url, width=image.width, height=image.height)
        )
    return found


def _supported_among(
    session: Session, viewer: User | None, proposal_ids: list[int]
) -> set[int] | None:
    """Which of these proposals `viewer` supports; None for an anonymous viewer."""
    if viewer is None:
        return None
    if not proposal_ids:
        return set()
    return set(
        session.exec(
            select(Support.proposal_id).where(
                Support.user_id == viewer.id, col(Support.proposal_id).in_(proposal_ids)
            )
        ).all()
    )


def _public(session: Session, proposal: Proposal, viewer: User | None) -> ProposalPublic:
    return _rows(session, viewer=viewer, where=[col(Proposal.id) == proposal.id])[0]


def _load(
    session: Session, *, proposal_id: int, viewer: User | None, lock: ProposalLock = None
) -> tuple[Proposal, Process]:
    """The proposal and its process, or 404 when either is not there for this viewer.

    With `lock`, the process row is locked first (KEY SHARE: a phase move, which takes FOR
    UPDATE, waits for this request and this request waits for it, so the phase read here is
    still the phase when we commit), then the proposal row, with `lock`: "update" for a
    change to the proposal, "key_share" to keep its status fixed while a support is added.
    Always process then proposal, as every writer does, so two requests never deadlock."""
    process_id = None
    if 1 <= proposal_id <= INT32_MAX:
        process_id = session.exec(
            select(Proposal.process_id).where(Proposal.id == proposal_id)
        ).first()
    if process_id is None:
        raise NotFound(_t("No proposal with id {proposal_id}.", proposal_id=proposal_id))
    try:
        process = processes.get_visible(
            session, process_id=process_id, viewer=viewer, lock="key_share" if lock else None
        )
    except NotFound:
        raise NotFound(_t("No proposal with id {proposal_id}.", proposal_id=proposal_id)) from None
    query = select(Proposal).where(Proposal.id == proposal_id)
    if lock == "update":
        query = query.with_for_update()
    elif lock == "key_share":
        query = query.with_for_update(read=True, key_share=True)
    proposal = session.exec(query).first()
    if proposal is None:  # deleted since the first read
        raise NotFound(_t("No proposal with id {proposal_id}.", proposal_id=proposal_id))
    return proposal, process


def load(
    session: Session, *, proposal_id: int, viewer: User | None, lock: ProposalLock = None
) -> tuple[Proposal, Process]:
    """The proposal and its process for another service, locked as `_load` says."""
    return _load(session, proposal_id=proposal_id, viewer=viewer, lock=lock)


def _require_phase(process: Process, *phases: Phase, action: Message) -> None:
    if process.phase not in phases:
        names = " or ".join(p.value for p in phases)
        raise InvalidPhase(
            _t(
                "{action} is possible in phase {names}; the process is in {phase}.",
                action=action,
                names=names,
                phase=process.phase,
            )
        )


def _require_author(proposal: Proposal, actor: User, action: Message) -> None:
    if proposal.author_id != actor.id:
        raise Forbidden(_t("Only the author can {action} this proposal.", action=action))


def submit(
    session: Session,
    *,
    actor: User,
    process_id: int,
    data: ProposalCreate,
    now: datetime | None = None,
) -> ProposalPublic:
    # Locked like every phase-dependent action (see `_load`): no submission after a move.
    process = processes.get_visible(session, process_id=process_id, viewer=actor, lock="key_share")
    _require_phase(process, Phase.submission, action=_t("Submitting a proposal"))
    now = now or utcnow()
    if not processes.submissions_open(process, now):
        raise InvalidPhase(
            _t("Submissions closed at {closes_at}.", closes_at=process.submission_closes_at)
        )
    require_eligible(actor, process, now=now)
    fields = data.model_dump(exclude={"location"})
    fields["category"] = categories.canonical(process, data.category)
    proposal = Proposal(process_id=process_id, author_id=actor.id, **fields)
    _set_location(proposal, data.location)
    session.add(proposal)
    session.flush()
    return _public(session, proposal, actor)


def show(session: Session, *, viewer: User | None, proposal_id: int) -> ProposalPublic:
    proposal, _ = _load(session, proposal_id=proposal_id, viewer=viewer)
    return _public(session, proposal, viewer)


_SORTS: dict[ProposalSort, list[Any]] = {
    ProposalSort.newest: [col(Proposal.created_at).desc(), col(Proposal.id).desc()],
    ProposalSort.cost: [func.coalesce(Proposal.cost, Proposal.estimated_cost), col(Proposal.id)],
    ProposalSort.supports: [_support_count.desc(), col(Proposal.id)],
}


def list_for_process(
    session: Session,
    *,
    viewer: User | None,
    process_id: int,
    status: ProposalStatus | None,
    category: str | None,
    q: str | None,
    sort: ProposalSort,
    limit: int,
    offset: int,
) -> Page[ProposalPublic]:
    processes.get_visible(session, process_id=process_id, viewer=viewer)
    where: list[ColumnElement[bool]] = [col(Proposal.process_id) == process_id]
    if status is not None:
        where.append(col(Proposal.status) == status)
    if category is not None:
        where.append(func.lower(Proposal.category) == category.strip().lower())
    if q:
        needle = q.strip().lower()
        where.append(
            func.lower(Proposal.title).contains(needle, autoescape=True)
            | func.lower(Proposal.summary).contains(needle, autoescape=True)
        )
    total = session.exec(select(func.count()).select_from(Proposal).where(*where)).one()
    items = _rows(
        session, viewer=viewer, where=where, order=_SORTS[sort], limit=limit, offset=offset
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


def list_own(session: Session, *, user: User, limit: int, offset: int) -> Page[ProposalPublic]:
    """The account's own proposals in every process, newest first (any status)."""
    where: list[ColumnElement[bool]] = [col(Proposal.author_id) == user.id]
    total = session.exec(select(func.count()).select_from(Proposal).where(*where)).one()
    items = _rows(
        session,
        viewer=user,
        where=where,
        order=_SORTS[ProposalSort.newest],
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


def edit(
    session: Session, *, actor: User, proposal_id: int, data: ProposalUpdate
) -> ProposalPublic:
    proposal, process = _load(session, proposal_id=proposal_id, viewer=actor, lock="update")
    _require_author(proposal, actor, _t("edit"))
    _require_phase(process, Phase.submission, action=_t("Editing a proposal"))
    if proposal.status != ProposalStatus.submitted:
        raise InvalidStatus(
            _t(
                "A proposal can be edited while submitted; this one is {status}.",
                status=proposal.status,
            )
        )
    for key, value in data.model_dump(exclude_unset=True, exclude={"location"}).items():
        if value is None and key != "category":
            continue  # a required field sent as null means "no change"
        if key == "category":
            value = categories.canonical(process, value)
        setattr(proposal, key, value)
    if "location" in data.model_fields_set:
        _set_location(proposal, data.location)
    session.add(proposal)
    session.flush()
    return _public(session, proposal, actor)


def withdraw(session: Session, *, actor: User, proposal_id: int) -> ProposalPublic:
    proposal, process = _load(session, proposal_id=proposal_id, viewer=actor, lock="update")
    _require_author(proposal, actor, _t("withdraw"))
    _require_phase(process, Phase.submission, Phase.review, action=_t("Withdrawing a proposal"))
    if proposal.status not in (ProposalStatus.submitted, ProposalStatus.accepted):
        raise InvalidStatus(
            _t(
                "Only submitted or accepted proposals can be withdrawn; this one is {status}.",
                status=proposal.status,
            )
        )
    proposal.status = ProposalStatus.withdrawn
    session.add(proposal)
    session.flush()
    return _public(session, proposal, actor)


def review(
    session: Session, *, actor: User, proposal_id: int, decision: AcceptDecision | RejectDecision
) -> ProposalPublic:
    proposal, process = _load(session, proposal_id=proposal_id, viewer=actor, lock="update")
    require_role(actor, Role.moderator)
    _require_phase(process, Phase.submission, Phase.review, action=_t("Reviewing"))
    if proposal.status == ProposalStatus.withdrawn:
        raise InvalidStatus(_t("A withdrawn proposal cannot be reviewed."))
    before = {
        "status": proposal.status,
        "cost": proposal.cost,
        "review_reason": proposal.review_reason,
    }
    if isinstance(decision, AcceptDecision):
        if decision.cost > process.budget:
            raise ValidationFailed(
                f"The cost {decision.cost} is above the budget {process.budget}.",
                fields=[
                    FieldError(("cost",), f"must be at most {process.budget}", "less_than_equal")
                ],
            )
        proposal.status, proposal.cost, proposal.review_reason = (
            ProposalStatus.accepted,
            decision.cost,
            None,
        )
    else:
        proposal.status, proposal.cost, proposal.review_reason = (
            ProposalStatus.rejected,
            None,
            decision.reason,
        )
    session.add(proposal)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="proposal.reviewed",
        target_type="proposal",
        target_id=proposal.id,
        process_id=process.id,
        before=before,
        after={
            "status": proposal.status,
            "cost": proposal.cost,
            "review_reason": proposal.review_reason,
        },
    )
    return _public(session, proposal, actor)


def _support_state(session: Session, *, proposal_id: int, supported: bool) -> SupportState:
    count = session.exec(
        select(func.count()).select_from(Support).where(Support.proposal_id == proposal_id)
    ).one()
    return SupportState(proposal_id=proposal_id, supported=supported, support_count=count)


def support(session: Session, *, actor: User, proposal_id: int) -> SupportState:
    proposal, process = _load(session, proposal_id=proposal_id, viewer=actor, lock="key_share")
    _require_phase(process, *CO_THINKING_PHASES, action=_t("Supporting"))
    if proposal.status in (ProposalStatus.withdrawn, ProposalStatus.rejected):
        raise InvalidStatus(_t("A {status} proposal cannot be supported.", status=proposal.status))
    assert actor.id is not None
    exists = session.exec(
        select(Support.id).where(Support.proposal_id == proposal_id, Support.user_id == actor.id)
    ).first()
    if exists is None:
        try:
            # A savepoint: when a concurrent request inserted the same support first, the
            # unique constraint fires and the outcome is the same, "supported".
            with session.begin_nested():
                session.add(Support(proposal_id=proposal_id, user_id=actor.id))
        except IntegrityError:
            pass
    return _support_state(session, proposal_id=proposal_id, supported=True)


def unsupport(session: Session, *, actor: User, proposal_id: int) -> SupportState:
    _proposal, process = _load(session, proposal_id=proposal_id, viewer=actor, lock="key_share")
    _require_phase(process, *CO_THINKING_PHASES, action=_t("Withdrawing support"))
    existing = session.exec(
        select(Support).where(Support.proposal_id == proposal_id, Support.user_id == actor.id)
    ).first()
    if existing is not None:
        session.delete(existing)
        session.flush()
    return _support_state(session, proposal_id=proposal_id, supported=False)


def comment_public(comment: Comment, display_name: str | None) -> CommentPublic:
    """A comment as shown: its text only while visible."""
    assert comment.id is not None
    visible = comment.status == CommentStatus.visible
    return CommentPublic(
        id=comment.id,
        proposal_id=comment.proposal_id,
        author=_author(comment.author_id, display_name),
        body=comment.body if visible else None,
        status=CommentStatus(comment.status),
        hidden_reason=comment.hidden_reason if comment.status == CommentStatus.hidden else None,
        created_at=comment.created_at,
    )


def add_comment(
    session: Session, *, actor: User, proposal_id: int, data: CommentCreate
) -> CommentPublic:
    _proposal, process = _load(session, proposal_id=proposal_id, viewer=actor, lock="key_share")
    _require_phase(process, *CO_THINKING_PHASES, action=_t("Commenting"))
    comment = Comment(proposal_id=proposal_id, author_id=actor.id, body=data.body)
    session.add(comment)
    session.flush()
    return comment_public(comment, actor.display_name)


def list_comments(
    session: Session, *, viewer: User | None, proposal_id: int, limit: int, offset: int
) -> Page[CommentPublic]:
    _load(session, proposal_id=proposal_id, viewer=viewer)
    where = col(Comment.proposal_id) == proposal_id
    total = session.exec(select(func.count()).select_from(Comment).where(where)).one()
    rows = session.exec(
        select(Comment, User.display_name)
        .outerjoin(User, col(User.id) == col(Comment.author_id))
        .where(where)
        .order_by(col(Comment.created_at), col(Comment.id))
        .limit(limit)
        .offset(offset)
    ).all()
    items = [comment_public(comment, name) for comment, name in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)
