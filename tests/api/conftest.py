"""Fixtures for API tests: one account of each kind, with ready-made auth headers."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlmodel import Session

from app.core.config import Settings
from app.main import create_app
from app.models.user import Role, User
from tests.factories import auth, make_user
from tests.helpers import free_port, wait_until


@dataclass
class Actor:
    user: User
    headers: dict[str, str]

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id


@dataclass
class Actors:
    admin: Actor
    moderator: Actor
    resident: Actor
    author: Actor
    outsider: Actor  # postcode outside the usual 9713 prefix


@pytest.fixture
def actors(session: Session, settings: Settings) -> Actors:
    key = settings.signing_key()

    def actor(role: Role, **fields: object) -> Actor:
        user = make_user(session, role=role, **fields)  # type: ignore[arg-type]
        return Actor(user=user, headers=auth(user, key))

    return Actors(
        admin=actor(Role.admin, display_name="Admin"),
        moderator=actor(Role.moderator, display_name="Moderator"),
        resident=actor(Role.resident, display_name="Resident"),
        author=actor(Role.resident, display_name="Author"),
        outsider=actor(Role.resident, display_name="Outsider", postcode="1011AB"),
    )


@contextmanager
def in_process_server(settings: Settings) -> Iterator[tuple[str, int]]:
    """The app of `settings` over real sockets (uvicorn in a thread of this process), as
    (host, port); its engine is disposed of afterwards."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=20, what="the in-process server started")
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        app.state.engine.dispose()


@pytest.fixture(scope="module")
def base_url(settings: Settings) -> Iterator[str]:
    """The API over real sockets for tests that race requests: an app of its own per test
    module, so no two servers share one app's event-loop state."""
    with in_process_server(settings) as (host, port):
        yield f"http://{host}:{port}/api/v1"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    with httpx.Client(limits=limits, timeout=120) as client:
        yield client
