"""Proposals, supports and comments."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, status

from app.core.errors import (
    Forbidden,
    InvalidPhase,
    InvalidStatus,
    NotAuthenticated,
    NotEligible,
    NotFound,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.common import NoNul, Page
from app.models.proposal import (
    CommentCreate,
    CommentPublic,
    ProposalCreate,
    ProposalPublic,
    ProposalSort,
    ProposalStatus,
    ProposalUpdate,
    Review,
    SupportState,
)
from app.routers.deps import CurrentUser, OptionalUser, Paging, SessionDep
from app.services import proposals

router = APIRouter(tags=["proposals"])

SearchText = Annotated[str, NoNul]

_CHANGE_ERRORS = (NotAuthenticated, Forbidden, NotFound, InvalidPhase, InvalidStatus)


@router.post(
    "/processes/{process_id}/proposals",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalPublic,
    responses=problem_responses(
        NotAuthenticated, NotFound, InvalidPhase, NotEligible, ValidationFailed
    ),
    summary="Submit a proposal (eligible residents, phase submission)",
)
def submit_proposal(
    process_id: int, data: ProposalCreate, actor: CurrentUser, session: SessionDep
) -> ProposalPublic:
    return proposals.submit(session, actor=actor, process_id=process_id, data=data)


@router.get(
    "/processes/{process_id}/proposals",
    response_model=Page[ProposalPublic],
    responses=problem_responses(NotFound, ValidationFailed),
    summary="List a process's proposals",
)
def list_proposals(
    process_id: int,
    viewer: OptionalUser,
    session: SessionDep,
    paging: Paging,
    status: ProposalStatus | None = None,
    category: Annotated[SearchText | None, Query(max_length=50)] = None,
    q: Annotated[
        SearchText | None, Query(max_length=200, description="Words in the title or summary.")
    ] = None,
    sort: ProposalSort = ProposalSort.newest,
) -> Page[ProposalPublic]:
    return proposals.list_for_process(
        session,
        viewer=viewer,
        process_id=process_id,
        status=status,
        category=category,
        q=q,
        sort=sort,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get(
    "/proposals/{proposal_id}",
    response_model=ProposalPublic,
    responses=problem_responses(NotFound),
    summary="Show a proposal",
)
def show_proposal(proposal_id: int, viewer: OptionalUser, session: SessionDep) -> ProposalPublic:
    return proposals.show(session, viewer=viewer, proposal_id=proposal_id)


@router.patch(
    "/proposals/{proposal_id}",
    response_model=ProposalPublic,
    responses=problem_responses(*_CHANGE_ERRORS, ValidationFailed),
    summary="Edit your proposal while it is submitted (phase submission)",
)
def edit_proposal(
    proposal_id: int, data: ProposalUpdate, actor: CurrentUser, session: SessionDep
) -> ProposalPublic:
    return proposals.edit(session, actor=actor, proposal_id=proposal_id, data=data)


@router.post(
    "/proposals/{proposal_id}/withdraw",
    response_model=ProposalPublic,
    responses=problem_responses(*_CHANGE_ERRORS),
    summary="Withdraw your proposal (before voting)",
)
def withdraw_proposal(proposal_id: int, actor: CurrentUser, session: SessionDep) -> ProposalPublic:
    return proposals.withdraw(session, actor=actor, proposal_id=proposal_id)


@router.post(
    "/proposals/{proposal_id}/review",
    response_model=ProposalPublic,
    responses=problem_responses(*_CHANGE_ERRORS, ValidationFailed),
    summary="Accept with a final cost, or reject with a reason (moderator or admin)",
)
def review_proposal(
    proposal_id: int,
    decision: Annotated[
        Review,
        Body(
            openapi_examples={
                "accept": {"value": {"decision": "accept", "cost": 4800}},
                "reject": {"value": {"decision": "reject", "reason": "Not on public ground."}},
            }
        ),
    ],
    actor: CurrentUser,
    session: SessionDep,
) -> ProposalPublic:
    return proposals.review(session, actor=actor, proposal_id=proposal_id, decision=decision)


@router.post(
    "/proposals/{proposal_id}/support",
    response_model=SupportState,
    responses=problem_responses(NotAuthenticated, NotFound, InvalidPhase, InvalidStatus),
    summary="Support a proposal (idempotent)",
)
def support_proposal(proposal_id: int, actor: CurrentUser, session: SessionDep) -> SupportState:
    return proposals.support(session, actor=actor, proposal_id=proposal_id)


@router.delete(
    "/proposals/{proposal_id}/support",
    response_model=SupportState,
    responses=problem_responses(NotAuthenticated, NotFound, InvalidPhase),
    summary="Withdraw your support (idempotent)",
)
def unsupport_proposal(proposal_id: int, actor: CurrentUser, session: SessionDep) -> SupportState:
    return proposals.unsupport(session, actor=actor, proposal_id=proposal_id)


@router.post(
    "/proposals/{proposal_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentPublic,
    responses=problem_responses(NotAuthenticated, NotFound, InvalidPhase, ValidationFailed),
    summary="Comment on a proposal",
)
def add_comment(
    proposal_id: int, data: CommentCreate, actor: CurrentUser, session: SessionDep
) -> CommentPublic:
    return proposals.add_comment(session, actor=actor, proposal_id=proposal_id, data=data)


@router.get(
    "/proposals/{proposal_id}/comments",
    response_model=Page[CommentPublic],
    responses=problem_responses(NotFound, ValidationFailed),
    summary="A proposal's comments, oldest first",
)
def list_comments(
    proposal_id: int, viewer: OptionalUser, session: SessionDep, paging: Paging
) -> Page[CommentPublic]:
    return proposals.list_comments(
        session, viewer=viewer, proposal_id=proposal_id, limit=paging.limit, offset=paging.offset
    )
