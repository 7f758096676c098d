"""Tally previews, publication and the published results with their exports."""

from fastapi import APIRouter, Response, status

from app.core.errors import (
    Forbidden,
    InvalidPhase,
    NotAuthenticated,
    NotFound,
    ResultsAlreadyPublished,
    ResultsNotPublished,
)
from app.core.problems import problem_responses
from app.models.result import Results
from app.routers.deps import CurrentUser, OptionalUser, SessionDep, SettingsDep
from app.services import results

router = APIRouter(prefix="/processes/{process_id}", tags=["results"])


@router.get(
    "/tally",
    response_model=Results,
    responses=problem_responses(
        NotAuthenticated, Forbidden, NotFound, InvalidPhase, ResultsAlreadyPublished
    ),
    summary="Preview the tally (moderator or admin; closed, before publication); audited",
)
def preview_tally(process_id: int, actor: CurrentUser, session: SessionDep) -> Results:
    return results.preview(session, actor=actor, process_id=process_id)


@router.post(
    "/results",
    status_code=status.HTTP_201_CREATED,
    response_model=Results,
    responses=problem_responses(
        NotAuthenticated, Forbidden, NotFound, InvalidPhase, ResultsAlreadyPublished
    ),
    summary="Compute and publish the results, once (admin; closed processes)",
)
def publish_results(
    process_id: int, actor: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Results:
    return results.publish(session, actor=actor, process_id=process_id, country=settings.country)


@router.get(
    "/results",
    response_model=Results,
    responses=problem_responses(NotFound, ResultsNotPublished),
    summary="The published results",
)
def show_results(process_id: int, viewer: OptionalUser, session: SessionDep) -> Results:
    return results.show(session, viewer=viewer, process_id=process_id)


@router.get(
    "/results.csv",
    response_class=Response,
    responses={
        200: {
            "description": "The projects table: rank,proposal_id,title,cost,votes,selected",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(NotFound, ResultsNotPublished),
    },
    summary="The published projects table as CSV",
)
def results_csv(process_id: int, viewer: OptionalUser, session: SessionDep) -> Response:
    body = results.as_csv(session, viewer=viewer, process_id=process_id)
    return Response(body, media_type="text/csv")


@router.get(
    "/results.pb",
    response_class=Response,
    responses={
        200: {
            "description": "The election in pabulib format, voters pseudonymous",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problem_responses(NotFound, ResultsNotPublished),
    },
    summary="The published election in pabulib format, for anyone to recompute",
)
def results_pabulib(process_id: int, viewer: OptionalUser, session: SessionDep) -> Response:
    body = results.as_pabulib(session, viewer=viewer, process_id=process_id)
    return Response(
        body,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="process-{process_id}.pb"'},
    )
