"""The vote-load benchmark's server: the real app, plus a baseline endpoint that only exists here.

`POST /bench/insert` (no auth) does one INSERT through the same stack as a ballot: the same
middleware, session dependency and transaction. Its table is the benchmark's own, made in the
benchmark's database; neither belongs in the app or its migrations.

Served like `wijkbudget serve` does: `uvicorn bench.app:create_bench_app --factory`.
"""

from fastapi import FastAPI, status
from sqlalchemy import text
from sqlmodel import Session

from app.main import create_app
from app.routers.deps import SessionDep

PROBE_TABLE = "bench_probe"


def create_probe_table(session: Session) -> None:
    session.execute(
        text(f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (id SERIAL PRIMARY KEY, at TIMESTAMPTZ)")
    )


def create_bench_app() -> FastAPI:
    app = create_app()

    @app.post(
        "/bench/insert",
        status_code=status.HTTP_204_NO_CONTENT,
        tags=["benchmark"],
        include_in_schema=False,
    )
    def bench_insert(session: SessionDep) -> None:
        session.execute(text(f"INSERT INTO {PROBE_TABLE} (at) VALUES (now())"))  # noqa: S608

    return app
