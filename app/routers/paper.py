"""Paper ballots: batches entered twice by staff (double data entry), counted once."""

from fastapi import APIRouter, Request, status

from app.core.errors import (
    EntryMismatch,
    Forbidden,
    InvalidPhase,
    InvalidStatus,
    NotAuthenticated,
    NotFound,
    ResultsAlreadyPublished,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.common import Page
from app.models.paper import PaperBatchIn, PaperBatchPublic, VoidRequest
from app.routers.deps import CurrentUser, Paging, SessionDep
from app.services import paper, voting_codes

router = APIRouter(tags=["paper"])


def _key(request: Request) -> bytes:
    return voting_codes.code_key(request.app.state.signing_key)


@router.post(
    "/processes/{process_id}/paper-batches",
    status_code=status.HTTP_201_CREATED,
    response_model=PaperBatchPublic,
    responses=problem_responses(
        NotAuthenticated,
        ValidationFailed,
        NotFound,
        Forbidden,
        InvalidPhase,
        ResultsAlreadyPublished,
    ),
    summary="Enter a batch of paper ballots (moderator or admin; first keying)",
    description="Each ballot as online (`proposal_ids` or `points`), optionally with the "
    "voting code printed on the form. Every ballot is checked like an online one; an invalid "
    "one is recorded with its rule code. The batch counts only once a second staff account "
    "has keyed the same paper (`POST /paper-batches/{batch_id}/confirm`).",
)
def enter_batch(
    process_id: int, data: PaperBatchIn, actor: CurrentUser, session: SessionDep, request: Request
) -> PaperBatchPublic:
    return paper.enter(session, actor=actor, process_id=process_id, data=data, key=_key(request))


@router.get(
    "/processes/{process_id}/paper-batches",
    response_model=Page[PaperBatchPublic],
    responses=problem_responses(NotAuthenticated, NotFound, Forbidden, ValidationFailed),
    summary="The process's paper batches with their state and counts (moderator or admin)",
)
def list_batches(
    process_id: int, actor: CurrentUser, session: SessionDep, paging: Paging
) -> Page[PaperBatchPublic]:
    return paper.list_batches(
        session, actor=actor, process_id=process_id, limit=paging.limit, offset=paging.offset
    )


@router.get(
    "/paper-batches/{batch_id}",
    response_model=PaperBatchPublic,
    responses=problem_responses(NotAuthenticated, NotFound, Forbidden),
    summary="A paper batch, per ballot valid, invalid (with the rule) or duplicate",
)
def show_batch(batch_id: int, actor: CurrentUser, session: SessionDep) -> PaperBatchPublic:
    return paper.show(session, actor=actor, batch_id=batch_id)


@router.post(
    "/paper-batches/{batch_id}/confirm",
    response_model=PaperBatchPublic,
    responses=problem_responses(
        NotAuthenticated,
        ValidationFailed,
        NotFound,
        Forbidden,
        InvalidPhase,
        ResultsAlreadyPublished,
        InvalidStatus,
        EntryMismatch,
    ),
    summary="Confirm a batch by keying it again independently (another staff account)",
    description="The same body as the first keying. Alike: `confirmed`, and its valid ballots "
    "count. Different: 409 `entry_mismatch` with `differences` "
    '(`[{"index", "first", "second"}]`, `index` null for the source); both keyings are kept '
    "and the batch is `mismatched` until one side corrects its keying with PUT.",
)
def confirm_batch(
    batch_id: int, data: PaperBatchIn, actor: CurrentUser, session: SessionDep, request: Request
) -> PaperBatchPublic:
    return paper.confirm(session, actor=actor, batch_id=batch_id, data=data, key=_key(request))


@router.put(
    "/paper-batches/{batch_id}",
    response_model=PaperBatchPublic,
    responses=problem_responses(
        NotAuthenticated,
        ValidationFailed,
        NotFound,
        Forbidden,
        InvalidPhase,
        ResultsAlreadyPublished,
        InvalidStatus,
    ),
    summary="Correct your keying of a batch (its enterer, or the second keyer of a "
    "mismatched batch)",
    description="Replaces the caller's keying. A mismatched batch is compared again: alike, "
    "it is `confirmed`; else it stays `mismatched` and the answer lists the `differences`.",
)
def correct_batch(
    batch_id: int, data: PaperBatchIn, actor: CurrentUser, session: SessionDep, request: Request
) -> PaperBatchPublic:
    return paper.correct(session, actor=actor, batch_id=batch_id, data=data, key=_key(request))


@router.post(
    "/paper-batches/{batch_id}/void",
    response_model=PaperBatchPublic,
    responses=problem_responses(
        NotAuthenticated,
        ValidationFailed,
        NotFound,
        Forbidden,
        ResultsAlreadyPublished,
        InvalidStatus,
    ),
    summary="Void a batch before publication (admin)",
    description="A confirmed batch's ballots stop counting and the voting codes it used are "
    "freed, so the same forms can be entered again as a new batch.",
)
def void_batch(
    batch_id: int, data: VoidRequest, actor: CurrentUser, session: SessionDep
) -> PaperBatchPublic:
    return paper.void(session, actor=actor, batch_id=batch_id, reason=data.reason)
