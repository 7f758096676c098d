"""Budget processes: create, list, show, edit, move through the phases."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.core.errors import (
    Forbidden,
    InvalidTransition,
    NotAuthenticated,
    NotFound,
    ProcessLocked,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.common import Page
from app.models.process import Phase, ProcessCreate, ProcessPublic, ProcessUpdate, Transition
from app.routers.deps import CurrentUser, OptionalUser, Paging, SessionDep
from app.services import processes

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
        NotAuthenticated, Forbidden, NotFound, InvalidTransition, ValidationFailed
    ),
    summary="Move a process to its next phase (admin)",
)
def transition_process(
    process_id: int, data: Transition, actor: CurrentUser, session: SessionDep
) -> ProcessPublic:
    return processes.transition(session, actor=actor, process_id=process_id, to=data.to)
