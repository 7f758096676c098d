"""Liveness and readiness probes, outside the versioned API."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app import __version__
from app.core.db import ping
from app.routers.deps import hold_connection_slot

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Liveness(Health):
    version: str  # the release (pyproject.toml, CHANGELOG.md) this process runs


@router.get("/healthz", response_model=Liveness, summary="The process is alive, and its version")
def healthz() -> Liveness:
    return Liveness(status="ok", version=__version__)


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
    summary="The database answers",
)
def readyz(
    request: Request, _slot: Annotated[None, Depends(hold_connection_slot, scope="function")]
) -> Health | JSONResponse:
    if not ping(request.app.state.engine):
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return Health(status="ok")
