"""Budget processes: create, list, show, edit, move through the phases."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from app.core.errors import (
    AlreadySealed,
    Forbidden,
    InvalidPhase,
    InvalidTransition,
    NotAuthenticated,
    NotFound,
    ProcessLocked,
    UnverifiedVoters,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.common import Page
from app.models.participation import Participation
from app.models.process import Phase, ProcessCreate, ProcessPublic, ProcessUpdate, Transition
from app.routers.deps import CurrentUser, OptionalUser, Paging, SessionDep, SettingsDep
from app.services import participation, processes, sealing

router = APIRouter(prefix="/processes", tags=["processes"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProcessPublic,
    responses=problem_responses(NotAuthenticated, Forbidden, ValidationFailed),
    summary="Create a process (admin); it starts as a draft",
)
def create_process(data: ProcessCreate, actor: CurrentUser, session: SessionDep) -> ProcessPublic:
    return processes.create(session, actor=actor, data=data)


@router.get(
    "",
    response_model=Page[ProcessPublic],
    responses=problem_responses(ValidationFailed),
    summary="List processes (drafts only for admins)",
)
def list_processes(
    viewer: OptionalUser,
    session: SessionDep,
    paging: Paging,
    phase: Annotated[Phase | None, Query(description="Only processes in this phase.")] = None,
) -> Page[ProcessPublic]:
    return processes.list_visible(
        session, viewer=viewer, phase=phase, limit=paging.limit, offset=paging.offset
    )


@router.get(
    "/{process_id}",
    response_model=ProcessPublic,
    responses=problem_responses(NotFound),
    summary="Show a process",
)
def show_process(process_id: int, viewer: OptionalUser, session: SessionDep) -> ProcessPublic:
    return processes.show(session, viewer=viewer, process_id=process_id)


@router.get(
    "/{process_id}/me",
    response_model=Participation,
    responses=problem_responses(NotAuthenticated, NotFound),
    summary="Whether you may submit and vote now, and if not, why (as codes)",
    description="`reasons` holds every reason at once (`postcode`, `age`, `voting_code`, "
    "`verified_email`, `phase`), the same codes a `not_eligible` problem carries; empty when "
    "you may submit or vote now. Also whether you have a ballot and whether the process "
    "needs a voting code and you have claimed one.",
)
def my_participation(process_id: int, user: CurrentUser, session: SessionDep) -> Participation:
    return participation.standing(session, user=user, process_id=process_id)


@router.patch(
    "/{process_id}",
    response_model=ProcessPublic,
    responses=problem_responses(
        NotAuthenticated, Forbidden, NotFound, ProcessLocked, ValidationFailed
    ),
    summary="Edit a process (admin); budget, ballot, eligibility, rule and window freeze in voting",
)
def update_process(
    process_id: int, data: ProcessUpdate, actor: CurrentUser, session: SessionDep
) -> ProcessPublic:
    return processes.update(session, actor=actor, process_id=process_id, data=data)


@router.post(
    "/{process_id}/transition",
    response_model=ProcessPublic,
    responses=problem_responses(
        NotAuthenticated, Forbidden, NotFound, InvalidTransition, UnverifiedVoters, ValidationFailed
    ),
    summary="Move a process to its next phase (admin)",
    description="In production, entering `voting` needs voting codes or "
    "`allow_unverified_voters` (`unverified_voters`).",
)
def transition_process(
    process_id: int,
    data: Transition,
    actor: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> ProcessPublic:
    return processes.transition(
        session,
        actor=actor,
        process_id=process_id,
        to=data.to,
        require_verified_voters=settings.require_verified_voters,
    )


@router.post(
    "/{process_id}/seal",
    response_model=ProcessPublic,
    responses=problem_responses(NotAuthenticated, Forbidden, NotFound, InvalidPhase, AlreadySealed),
    summary="Seal a published process: unlink every voter from their ballot (admin)",
    description="Results, exports, digest and receipts stay the same; afterwards no one, "
    "not even with the database, can tell who cast which ballot. Audited; irreversible.",
)
def seal_process(
    process_id: int, actor: CurrentUser, session: SessionDep, request: Request
) -> ProcessPublic:
    return sealing.seal_and_scrub(
        session, engine=request.app.state.engine, actor=actor, process_id=process_id
    )
