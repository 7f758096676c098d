"""Test database and app.

The suite runs on a SQLite file by default and on PostgreSQL when `TEST_DATABASE_URL` is
set. The schema comes from the Alembic revisions, applied once per run. Requests commit for
real (concurrency tests need that), so each test is isolated by emptying every table after
it rather than by rolling back.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from app.core.config import Settings
from app.core.db import make_engine, migrate, open_session
from app.main import create_app
from app.models import metadata

if TYPE_CHECKING:
    from tests.servers import ServerProcess

# A key as operators are told to make one (`secrets.token_urlsafe(48)`): the test environment
# refuses guessable keys like production does.
TEST_SECRET = "uLFbNh_KYyZYCJl4OuxGO_i_BwFIMsKDOYtDXsUJ74zSQxMv7G3HSkQJYaYaqfT8"


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = Settings(database_url=url, _env_file=None).database_url
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrate(url)
    return url


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "cors_origins": ["https://stem.example.org"],
        # The mail tests start a sender of their own, against their own SMTP server.
        "mail_sender_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
def engine(app: FastAPI) -> Engine:
    engine: Engine = app.state.engine
    return engine


def _empty_tables(engine: Engine) -> None:
    tables = list(reversed(metadata.sorted_tables))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "engine" in request.fixturenames or "client" in request.fixturenames:
        _empty_tables(request.getfixturevalue("engine"))


@pytest.fixture
def client(app: FastAPI, engine: Engine) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and inspecting data; commit what a request must see."""
    with open_session(engine, write=False) as db:
        yield db


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working directory with no `.env` and no Wijkbudget settings in the env."""
    for name in ("DATABASE_URL", "SECRET_KEY", "ENVIRONMENT", "CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def servers(engine: Engine) -> Iterator[list["ServerProcess"]]:
    """Real `wijkbudget serve` processes a test starts (tests/servers.py), stopped after it.
    (`engine`: the tables are emptied after each test.)"""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()
