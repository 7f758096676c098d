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


def test_0013_moves_the_voter_link_out_of_the_ballot_row_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'link.db'}"
    migrate(url, "0012")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO user_account (id, email, password_hash, display_name, role, "
                "token_version, created_at, email_verified, language) VALUES "
                "(7, 'a@example.org', 'x', 'A', 'resident', 0, '2026-10-01', 1, 'nl'), "
                "(8, 'b@example.org', 'x', 'B', 'resident', 0, '2026-10-01', 1, 'nl')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO process (id, title, description, area, budget, postcode_prefixes, "
                "require_voting_code, tally_rule, phase, created_at, ballot, "
                "allow_unverified_voters, require_verified_email, require_voting_code_on_paper) "
                "VALUES (3, 'P', '', 'A', 100, '[]', 0, 'greedy', 'voting', '2026-10-01', '{}', "
                "0, 0, 0)"
            )
        )
        # Two online ballots, and one whose voter was erased after the close.
        connection.execute(
            text(
                "INSERT INTO ballot (id, process_id, voter_id, items, total_cost, receipt, "
                "cast_at) VALUES (20, 3, 7, '[]', 0, 'r20', '2026-10-02'), "
                "(21, 3, 8, '[]', 0, 'r21', '2026-10-02'), (22, 3, NULL, '[]', 0, 'r22', "
                "'2026-10-02')"
            )
        )
    migrate(url)
    with engine.begin() as connection:
        links = connection.execute(
            text("SELECT process_id, voter_id, ballot_id FROM ballot_voter ORDER BY ballot_id")
        ).all()
        assert [tuple(row) for row in links] == [(3, 7, 20), (3, 8, 21)]
        # A ballot cast after the upgrade names no voter in its row, only in its link.
        connection.execute(text("UPDATE ballot SET voter_id = NULL WHERE id = 21"))
    command.downgrade(alembic_config(url), "0012")
    with engine.begin() as connection:
        voters = connection.execute(text("SELECT id, voter_id FROM ballot ORDER BY id")).all()
    assert [tuple(row) for row in voters] == [(20, 7), (21, 8), (22, None)]
    assert "ballot_voter" not in inspect(engine).get_table_names()
    engine.dispose()
