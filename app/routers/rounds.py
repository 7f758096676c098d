"""Rounds (editions): district budgets beside a city-wide budget, in one round."""

from fastapi import APIRouter, Response, status

from app.core.errors import (
    Forbidden,
    InvalidPhase,
    InvalidTransition,
    NotAuthenticated,
    NotFound,
    UnverifiedVoters,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.common import Page
from app.models.round import RoundCreate, RoundPublic, RoundResults, RoundStanding, RoundTransition
from app.routers.deps import API_PREFIX, CurrentUser, OptionalUser, Paging, SessionDep, SettingsDep
from app.services import rounds

router = APIRouter(prefix="/rounds", tags=["rounds"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RoundPublic,
    responses=problem_responses(NotAuthenticated, Forbidden, ValidationFailed),
    summary="Create a round with its groups (admin)",
    description="A group's `max_processes_per_voter` limits in how many of its processes one "
    "voter may hold a ballot (1: choose one district). Processes join with "
    "`PATCH /processes/{process_id}` (`round_id`, `group_id`) while they are drafts.",
)
def create_round(data: RoundCreate, actor: CurrentUser, session: SessionDep) -> RoundPublic:
    return rounds.create(session, actor=actor, data=data)


@router.get(
    "",
    response_model=Page[RoundPublic],
    responses=problem_responses(ValidationFailed),
    summary="List rounds, newest first",
)
def list_rounds(viewer: OptionalUser, session: SessionDep, paging: Paging) -> Page[RoundPublic]:
    return rounds.list_all(session, viewer=viewer, limit=paging.limit, offset=paging.offset)


@router.get(
    "/{round_id}",
    response_model=RoundPublic,
    responses=problem_responses(NotFound),
    summary="Show a round: its groups, processes, total budget and ballots",
)
def show_round(round_id: int, viewer: OptionalUser, session: SessionDep) -> RoundPublic:
    return rounds.show(session, viewer=viewer, round_id=round_id)


@router.delete(
    "/{round_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotAuthenticated, Forbidden, NotFound, InvalidPhase),
    summary="Delete a round whose processes are all drafts (admin); they stay, outside it",
)
def delete_round(round_id: int, actor: CurrentUser, session: SessionDep) -> Response:
    rounds.delete(session, actor=actor, round_id=round_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{round_id}/transition",
    response_model=RoundPublic,
    responses=problem_responses(
        NotAuthenticated, Forbidden, NotFound, InvalidTransition, UnverifiedVoters, ValidationFailed
    ),
    summary="Move every process of the round to its next phase, all or none (admin)",
    description="Refused as a whole (`invalid_transition` or `unverified_voters`, with "
    "`process_id`) when any one process cannot move.",
)
def transition_round(
    round_id: int,
    data: RoundTransition,
    actor: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> RoundPublic:
    return rounds.transition(
        session,
        actor=actor,
        round_id=round_id,
        to=data.to,
        require_verified_voters=settings.require_verified_voters,
    )


@router.get(
    "/{round_id}/me",
    response_model=RoundStanding,
    responses=problem_responses(NotAuthenticated, NotFound),
    summary="Where the signed-in account has voted in the round and where it still may",
)
def my_standing(round_id: int, voter: CurrentUser, session: SessionDep) -> RoundStanding:
    return rounds.standing(session, voter=voter, round_id=round_id)


@router.get(
    "/{round_id}/results",
    response_model=RoundResults,
    responses=problem_responses(NotFound),
    summary="Published results of the round's processes, with turnout per district and total",
)
def round_results(round_id: int, viewer: OptionalUser, session: SessionDep) -> RoundResults:
    return rounds.results(session, viewer=viewer, round_id=round_id, base_path=API_PREFIX)
