"""The benchmark baseline: one INSERT through the same stack (only with BENCH_ENDPOINTS)."""

from fastapi import APIRouter, status

from app.routers.deps import SessionDep
from app.services.bench import insert_probe

router = APIRouter(prefix="/bench", tags=["benchmark"], include_in_schema=False)


@router.post("/insert", status_code=status.HTTP_204_NO_CONTENT)
def bench_insert(session: SessionDep) -> None:
    insert_probe(session)
