"""A SIGTERM ends the real server within SHUTDOWN_TIMEOUT_SECONDS, even while a request waits
behind a lock that someone else holds (issue 18, item 4): before, the drain waited for that
request, and the request for the lock, for ever."""

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from app.core.config import Settings
from tests.factories import auth, make_user
from tests.helpers import wait_until
from tests.servers import ServerProcess, backends_waiting_on_locks

pytestmark = pytest.mark.slow

SHUTDOWN = 2


def test_sigterm_ends_the_server_while_a_request_waits_on_a_lock(
    servers: list[ServerProcess],
    database_url: str,
    engine: Engine,
    session: Session,
    settings: Settings,
    tmp_path: Path,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a writer waiting on SQLite's lock cannot be observed; PostgreSQL shows it")
    user = make_user(session, display_name="Before")
    server = ServerProcess(
        database_url,
        tmp_path,
        name="wb-shutdown",
        workers=1,
        # The lock outlasts the test; only the shutdown timeout can end the wait.
        env={"DB_LOCK_TIMEOUT_SECONDS": "300", "SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN)},
    )
    servers.append(server)
    server.start()
    answers: list[object] = []

    def edit() -> None:
        try:
            answers.append(
                httpx.patch(
                    f"{server.base}/users/me",
                    json={"display_name": "After"},
                    headers=auth(user, settings.signing_key()),
                    timeout=120,
                )
            )
        except httpx.HTTPError as error:
            answers.append(error)

    with engine.connect() as holder:
        holder.execute(
            text("SELECT id FROM user_account WHERE id = :id FOR UPDATE"), {"id": user.id}
        )
        waiting = threading.Thread(target=edit, daemon=True)
        waiting.start()
        wait_until(
            lambda: backends_waiting_on_locks(engine, server.name),
            timeout=30,
            what="the request waits on the row lock",
        )
        assert server.process is not None
        started = time.monotonic()
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=60)
        took = time.monotonic() - started
        holder.rollback()
    waiting.join(timeout=30)
    assert took < SHUTDOWN + 10, f"the server took {took:.1f} s to stop"
    # The request was not answered with a success, and nothing was stored.
    assert answers
    assert not (isinstance(answers[0], httpx.Response) and answers[0].status_code == 200)
    session.rollback()
    session.refresh(user)
    assert user.display_name == "Before"
