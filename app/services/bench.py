"""Support for bench/vote_load: the one-INSERT baseline endpoint's work."""

from sqlalchemy import text
from sqlmodel import Session

PROBE_TABLE = "bench_probe"


def create_probe_table(session: Session) -> None:
    session.execute(
        text(f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (id SERIAL PRIMARY KEY, at TIMESTAMPTZ)")
    )


def insert_probe(session: Session) -> None:
    session.execute(text(f"INSERT INTO {PROBE_TABLE} (at) VALUES (now())"))  # noqa: S608
