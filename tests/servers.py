"""The real server in a separate process, and the database states tests wait for.

`ServerProcess` runs `wijkbudget serve` (uvicorn with its workers, exactly as operators run
it) on a free loopback port against the test database. Tests order events by what they can
observe — a row that exists, a backend PostgreSQL reports waiting on a lock — never by
sleeping, and every wait has a deadline (`tests.helpers.wait_until`).
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from tests.conftest import TEST_SECRET
from tests.helpers import free_port, wait_until

START_TIMEOUT = 60.0


def _command() -> list[str]:
    script = Path(sys.executable).with_name("wijkbudget")
    if script.exists():
        return [str(script)]
    found = shutil.which("wijkbudget")
    return [found] if found else [sys.executable, "-m", "app"]


def with_application_name(database_url: str, name: str) -> str:
    """The URL with a PostgreSQL application_name, so pg_stat_activity tells servers apart."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return database_url
    return url.update_query_dict({"application_name": name}).render_as_string(hide_password=False)


class ServerProcess:
    """`wijkbudget serve` on 127.0.0.1; `start` returns once /readyz answers 200."""

    def __init__(
        self,
        database_url: str,
        log_dir: Path,
        *,
        name: str = "wb-test",
        workers: int = 2,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        # More `serve` options, and settings, for this server.
        self.args = list(args)
        self.env = dict(env or {})
        self.database_url = with_application_name(database_url, name)
        self.workers = workers
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.root}/api/v1"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}
        env.update(
            DATABASE_URL=self.database_url,
            SECRET_KEY=TEST_SECRET,
            ENVIRONMENT="test",
            LOG_LEVEL="WARNING",
            # No mail sender: it would write .eml files into the working directory.
            MAIL_SENDER_INTERVAL_SECONDS="0",
        )
        env.update(self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *_command(),
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    *self.args,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, timeout=START_TIMEOUT, what=f"{self.name} answers /readyz")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_path.read_text()}"
            )
        try:
            return httpx.get(f"{self.root}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL the whole process group: the supervisor and every worker, at once."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def backends_waiting_on_locks(engine: Engine, application_name: str) -> list[str]:
    """The statements of `application_name`'s backends now waiting for a lock (PostgreSQL).
    Each call is its own transaction: pg_stat_activity is a snapshot per transaction."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = :name AND wait_event_type = 'Lock'"
            ),
            {"name": application_name},
        ).all()
    return [row[0] for row in rows]


@contextmanager
def sqlite_write_lock(engine: Engine) -> Iterator[None]:
    """Hold SQLite's write lock: every writer waits (busy_timeout) until the block ends."""
    path = make_url(str(engine.url)).database
    assert path, "needs a SQLite file"
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()
