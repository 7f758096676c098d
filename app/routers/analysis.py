"""What-if tallies of a pabulib file: both rules with explanations, nothing stored."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.core import metrics
from app.core.errors import (
    Busy,
    ElectionTooLarge,
    InvalidPabulib,
    PayloadTooLarge,
    TooManyAttempts,
)
from app.core.problems import problem_responses
from app.models.analysis import Analysis
from app.routers.deps import ClientAddress, SessionDep, Throttle
from app.services import analysis

router = APIRouter(prefix="/analysis", tags=["analysis"])

_BODY = {
    "required": True,
    "content": {
        "text/plain": {"schema": {"type": "string", "description": "A pabulib file."}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


@router.post(
    "/tally",
    response_model=Analysis,
    responses=problem_responses(
        InvalidPabulib, ElectionTooLarge, PayloadTooLarge, TooManyAttempts, Busy
    ),
    openapi_extra={"requestBody": _BODY},
    summary="Tally a pabulib file with both rules, explained (anyone, throttled; <= 10 MiB)",
)
async def tally(
    request: Request,
    session: SessionDep,
    address: ClientAddress,
    guard: Throttle,
) -> Analysis:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=1)
        upload = form.get("file")
        body = await upload.read() if isinstance(upload, UploadFile) else b""
    else:
        body = await request.body()
    # The tally runs in a child process (`AnalysisPool`); this thread only waits for it.
    return await run_in_threadpool(
        metrics.timed_analysis(analysis.tally_file),
        session,
        body=body,
        address=address,
        guard=guard,
        pool=request.app.state.analysis_pool,
    )
