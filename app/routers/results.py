"""Tally previews, publication and the published results with their exports."""

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from app.core.errors import (
    Forbidden,
    InvalidPhase,
    NotAuthenticated,
    NotFound,
    PaperBatchesPending,
    ResultsAlreadyPublished,
    ResultsNotPublished,
)
from app.core.problems import problem_responses
from app.models.result import Results
from app.routers.deps import CurrentUser, OptionalUser, SessionDep, SettingsDep
from app.services import results, results_page

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
        NotAuthenticated,
        Forbidden,
        NotFound,
        InvalidPhase,
        ResultsAlreadyPublished,
        PaperBatchesPending,
    ),
    summary="Compute and publish the results, once (admin; closed processes)",
    description="Refused while a paper batch is entered but not confirmed or voided "
    "(`paper_batches_pending`, naming the batches): its ballots could never count after.",
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


Language = Annotated[
    Literal["nl", "en"] | None,
    Query(description="Page language; without it, Accept-Language decides (else Dutch)."),
]
AcceptLanguage = Annotated[str | None, Header(include_in_schema=False)]


def _in_language(body: str, media_type: str, language: str) -> Response:
    # The answer depends on Accept-Language: caches must keep one copy per language.
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Language": language, "Vary": "Accept-Language"},
    )


@router.get(
    "/results.html",
    response_class=Response,
    responses={
        200: {
            "description": "The results page: no JavaScript, Dutch or English",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **problem_responses(NotFound, ResultsNotPublished),
    },
    summary="The published results as a page for residents and councils",
)
def results_html(
    process_id: int,
    viewer: OptionalUser,
    session: SessionDep,
    lang: Language = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    chosen = results_page.choose_language(lang, accept_language)
    body = results_page.html_page(session, viewer=viewer, process_id=process_id, lang=chosen)
    return _in_language(body, "text/html; charset=utf-8", chosen)


@router.get(
    "/results.svg",
    response_class=Response,
    responses={
        200: {
            "description": "The chart of votes and cost per project, for embedding",
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
        },
        **problem_responses(NotFound, ResultsNotPublished),
    },
    summary="The published results' chart alone (SVG)",
)
def results_svg(
    process_id: int,
    viewer: OptionalUser,
    session: SessionDep,
    lang: Language = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    chosen = results_page.choose_language(lang, accept_language)
    body = results_page.svg_chart(session, viewer=viewer, process_id=process_id, lang=chosen)
    return _in_language(body, "image/svg+xml", chosen)
