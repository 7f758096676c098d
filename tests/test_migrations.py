"""The Alembic revisions are the schema: they must match the models and run both ways."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, pool, text
from sqlalchemy.engine import make_url

from app.core.db import alembic_config, make_engine, migrate
from app.models import metadata


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_migrations_run_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    migrate(url)
    migrate(url)  # idempotent
    engine = make_engine(url)
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    command.downgrade(alembic_config(url), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrate(url)
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_the_revisions_have_one_head() -> None:
    # Features built side by side each add a revision; a merge revision joins them, so
    # `alembic upgrade head` works for operators and the next revision has one parent.
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, heads


@pytest.mark.slow
def test_replicas_migrating_an_empty_database_at_once_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    """Three `wijkbudget migrate` started together on an empty database (replicas of a new
    deployment): on PostgreSQL they queue on an advisory lock; SQLite serialises writers.
    Without the lock two of them crashed with UniqueViolation."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        name = f"{url.database}_migrate_race"
        admin = make_engine(database_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        target = url.set(database=name).render_as_string(hide_password=False)
    else:
        target = f"sqlite:///{tmp_path / 'race.db'}"
    env = {**os.environ, "DATABASE_URL": target, "ENVIRONMENT": "development"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "migrate"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    engine = make_engine(target, poolclass=pool.NullPool)
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
    if url.get_backend_name() == "postgresql":
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()
