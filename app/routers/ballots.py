"""Voting: ballots, receipts and voting codes."""

from fastapi import APIRouter, Request, Response, status

from app.core.errors import (
    BallotSealed,
    BelowMinBudgetShare,
    BudgetExceeded,
    CodeAlreadyClaimed,
    CodeUsed,
    DuplicateProposal,
    Forbidden,
    GroupLimitReached,
    InvalidCode,
    InvalidPhase,
    InvalidPoints,
    MailboxUsed,
    NoBallot,
    NotAuthenticated,
    NotEligible,
    NotFound,
    PointsExceeded,
    TooFewProjects,
    TooManyAttempts,
    TooManyProjects,
    UnknownProposal,
    UnknownReceipt,
    ValidationFailed,
    VotingClosed,
)
from app.core.problems import problem_responses
from app.models.ballot import (
    BallotCast,
    BallotPublic,
    CodeBatch,
    CodeClaim,
    CodeClaimed,
    ReceiptStatus,
)
from app.routers.deps import (
    ClientAddress,
    CurrentUser,
    OptionalUser,
    SessionDep,
    SettingsDep,
    Throttle,
)
from app.services import ballots, voting_codes

router = APIRouter(prefix="/processes/{process_id}", tags=["voting"])

BALLOT_RULE_ERRORS = (
    UnknownProposal,
    DuplicateProposal,
    InvalidPoints,
    TooFewProjects,
    TooManyProjects,
    BudgetExceeded,
    BelowMinBudgetShare,
    PointsExceeded,
)


@router.put(
    "/ballot",
    response_model=BallotPublic,
    responses=problem_responses(
        NotAuthenticated,
        NotFound,
        VotingClosed,
        NotEligible,
        MailboxUsed,
        GroupLimitReached,
        ValidationFailed,
        *BALLOT_RULE_ERRORS,
    ),
    summary="Cast or replace your ballot",
    description="Knapsack and approval ballots send `proposal_ids`; cumulative ballots send "
    "`points`. Casting again replaces the earlier ballot atomically and issues a new receipt. "
    "In a process of a round's group, a voter with ballots in as many other processes of the "
    "group as it allows gets `group_limit_reached` with `processes`. Where the process requires "
    "a verified e-mail, an account whose address is the same mailbox (case and `+tag` "
    "ignored) as one that voted here gets `mailbox_used`.",
)
def cast_ballot(
    process_id: int,
    data: BallotCast,
    voter: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> BallotPublic:
    return ballots.cast(
        session,
        voter=voter,
        process_id=process_id,
        data=data,
        confirm_by_mail=settings.mail_ballot_receipts,
    )


@router.get(
    "/ballot",
    response_model=BallotPublic,
    responses=problem_responses(NotAuthenticated, NotFound, NoBallot, BallotSealed),
    summary="Your own ballot (also after voting closes, until the process is sealed)",
)
def show_ballot(process_id: int, voter: CurrentUser, session: SessionDep) -> BallotPublic:
    return ballots.show_own(session, voter=voter, process_id=process_id)


@router.delete(
    "/ballot",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotAuthenticated, NotFound, NoBallot, VotingClosed),
    summary="Withdraw your ballot while voting is open",
)
def withdraw_ballot(process_id: int, voter: CurrentUser, session: SessionDep) -> Response:
    ballots.withdraw(session, voter=voter, process_id=process_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/receipts/{receipt}",
    response_model=ReceiptStatus,
    responses=problem_responses(NotFound, UnknownReceipt),
    summary="Whether a receipt's ballot is current and, once published, counted",
)
def check_receipt(
    process_id: int, receipt: str, viewer: OptionalUser, session: SessionDep
) -> ReceiptStatus:
    return ballots.receipt_status(session, viewer=viewer, process_id=process_id, receipt=receipt)


@router.post(
    "/voting-codes",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    responses={
        201: {
            "description": "The new codes, shown once: a header row, then one code per row.",
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": "code\nABCD-EFGH-JKMN-PQRS\n"}
            },
        },
        **problem_responses(NotAuthenticated, Forbidden, NotFound, InvalidPhase, ValidationFailed),
    },
    summary="Make single-use voting codes for household letters (admin)",
)
def generate_codes(
    process_id: int, data: CodeBatch, actor: CurrentUser, session: SessionDep, request: Request
) -> Response:
    csv_text = voting_codes.generate(
        session,
        actor=actor,
        process_id=process_id,
        count=data.count,
        key=voting_codes.code_key(request.app.state.signing_key),
    )
    return Response(
        csv_text,
        status_code=status.HTTP_201_CREATED,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="voting-codes-{process_id}.csv"'},
    )


@router.post(
    "/voting-codes/claim",
    response_model=CodeClaimed,
    responses=problem_responses(
        NotAuthenticated,
        NotFound,
        VotingClosed,
        TooManyAttempts,
        CodeAlreadyClaimed,
        InvalidCode,
        CodeUsed,
        ValidationFailed,
    ),
    summary="Bind the voting code from your letter to your account",
)
def claim_code(
    process_id: int,
    data: CodeClaim,
    actor: CurrentUser,
    session: SessionDep,
    request: Request,
    address: ClientAddress,
    guard: Throttle,
) -> CodeClaimed:
    return voting_codes.claim(
        session,
        actor=actor,
        process_id=process_id,
        code=data.code,
        key=voting_codes.code_key(request.app.state.signing_key),
        address=address,
        guard=guard,
    )
