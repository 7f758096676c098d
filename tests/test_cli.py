"""The `wijkbudget` command line."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.cli import cli
from app.core import security
from app.core.config import get_settings
from app.models.user import Role, User
from tests.factories import make_user
from tests.helpers import free_port

runner = CliRunner()
MIGRATIONS = Path(__file__).parent.parent / "migrations" / "versions"


def test_every_command_explains_itself() -> None:
    for command in ("serve", "migrate", "create-admin"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0
        assert "Usage" in result.output
    assert "Apply" in runner.invoke(cli, ["serve", "--help"]).output


@pytest.fixture
def cli_database(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Commands read the settings like the server: point them at the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_database")
def test_create_admin_creates_then_updates(session: Session) -> None:
    created = runner.invoke(
        cli, ["create-admin", "--email", "Admin@Gemeente.nl", "--password", "first password!"]
    )
    assert created.exit_code == 0, created.output
    assert "created admin admin@gemeente.nl" in created.output
    resident = make_user(session, email="anna@example.org")
    updated = runner.invoke(
        cli, ["create-admin", "--email", "anna@example.org", "--password", "second password"]
    )
    assert updated.exit_code == 0, updated.output
    session.expire_all()
    users = {u.email: u for u in session.exec(select(User))}
    assert users["admin@gemeente.nl"].role == Role.admin
    assert users["anna@example.org"].role == Role.admin
    assert users["anna@example.org"].id == resident.id
    assert security.verify_password("second password", users["anna@example.org"].password_hash)


@pytest.mark.usefixtures("cli_database")
def test_create_admin_refuses_a_weak_password(session: Session) -> None:
    result = runner.invoke(cli, ["create-admin", "--email", "a@b.nl", "--password", "short"])
    assert result.exit_code == 1
    assert "password" in result.output
    assert session.exec(select(User)).all() == []


def _environment(workdir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "SECRET_KEY", "ENVIRONMENT"}
    }
    env.update(extra)
    return env


@pytest.mark.slow
def test_serve_refuses_a_weak_key_outside_development(workdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        env=_environment(workdir, ENVIRONMENT="production", SECRET_KEY="changeme"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "wijkbudget.db").exists()


def test_migrate_names_each_revision_it_applies_and_nothing_else(workdir: Path) -> None:
    """An operator sees a line per revision applied, or one line saying where the schema
    stands; not Alembic's INFO lines about its implementation."""
    from app.core.db import schema_heads

    def migrate() -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "app", "migrate"],
            env=_environment(workdir),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        for chatter in ("Context impl", "Will assume transactional DDL", "Running upgrade"):
            assert chatter not in result.stderr
        return result.stderr.strip().splitlines()

    first = migrate()
    assert (workdir / "wijkbudget.db").exists()
    revisions = [line.split()[1] for line in first]
    assert all(line.startswith("applied ") for line in first), first
    assert revisions[0] == "0001"
    assert len(revisions) == len(set(revisions)) == len(list(MIGRATIONS.glob("0*.py")))
    assert revisions[-1] == schema_heads()[0]
    assert first[0] == "applied 0001 user accounts"
    assert migrate() == [f"database is up to date at {', '.join(schema_heads())}"]


@pytest.mark.slow
def test_serve_migrates_and_serves_on_the_sqlite_default(workdir: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=_environment(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert httpx.get(f"{base}/readyz").json() == {"status": "ok"}
        docs = httpx.get(f"{base}/docs")
        assert docs.status_code == 200
        assert "server" not in docs.headers  # no banner with versions
        assert docs.headers["x-content-type-options"] == "nosniff"
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Wijkbudget"
        registered = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": "a@example.org", "password": "long enough pw", "display_name": "A"},
        )
        assert registered.status_code == 201
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert (workdir / "wijkbudget.db").exists()
    assert (workdir / "wijkbudget.secret").exists()
    # The new database's revisions, each named once in the log (text lines in development).
    assert output.decode().count("wijkbudget.db applied migration 0001 user accounts") == 1


@pytest.mark.usefixtures("cli_database")
def test_demo_fills_an_empty_database_once(session: Session) -> None:
    from app.models.process import Process
    from app.models.proposal import Proposal

    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "admin@oosterpark.example" in result.output
    process = session.exec(select(Process)).one()
    assert (process.title, process.budget, process.phase) == ("Oosterpark", 25_000, "review")
    statuses = [p.status for p in session.exec(select(Proposal))]
    assert len(statuses) == 12
    assert statuses.count("rejected") == 1
    assert statuses.count("accepted") == 10
    again = runner.invoke(cli, ["demo"])
    assert again.exit_code == 1
    assert "empty" in again.output


def test_tally_prints_the_contract_json() -> None:
    from tests.pabulib_data import pabulib_file

    result = runner.invoke(
        cli, ["tally", str(pabulib_file("Netherlands_Assen_2024")), "--rule", "mes", "--json"]
    )
    assert result.exit_code == 0, result.output
    import json

    line = next(line for line in result.stdout.splitlines() if line.startswith("{"))
    body = json.loads(line)
    assert list(body) == ["rule", "budget", "selected", "spent"]
    assert body["rule"] == "mes"
    assert body["budget"] == 100_000
    assert len(body["selected"]) == 9
    assert body["spent"] <= 100_000


def test_tally_table_and_errors(tmp_path: Path) -> None:
    from tests.pabulib_data import pabulib_file

    table = runner.invoke(
        cli, ["tally", str(pabulib_file("Poland_Warszawa_2017_Plac_Wojska_Polskiego"))]
    )
    assert table.exit_code == 0
    assert "rank" in table.stdout
    assert "rule greedy" in table.stdout
    ordinal = runner.invoke(cli, ["tally", str(pabulib_file("Switzerland_Zurich_S5R"))])
    assert ordinal.exit_code == 1
    assert "ordinal" in ordinal.stderr
    assert "Traceback" not in ordinal.output
    broken = tmp_path / "broken.pb"
    broken.write_text("META\nkey;value\nbudget;x\n")
    result = runner.invoke(cli, ["tally", str(broken), "--rule", "mes"])
    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert runner.invoke(cli, ["tally", str(broken), "--rule", "borda"]).exit_code == 2


def _admin(session: Session, email: str) -> User:
    session.expire_all()
    return session.exec(select(User).where(User.email == email)).one()


@pytest.mark.usefixtures("cli_database")
def test_create_admin_reads_the_password_from_stdin(session: Session) -> None:
    result = runner.invoke(
        cli,
        ["create-admin", "--email", "a@gemeente.nl", "--password-stdin"],
        input="from stdin, unseen\n",
    )
    assert result.exit_code == 0, result.output
    admin = _admin(session, "a@gemeente.nl")
    assert admin.role == Role.admin
    assert security.verify_password("from stdin, unseen", admin.password_hash)
    # Nothing on stdin is refused, not taken as an empty password.
    empty = runner.invoke(
        cli, ["create-admin", "--email", "b@gemeente.nl", "--password-stdin"], input=""
    )
    assert empty.exit_code == 1
    assert "stdin" in empty.stderr
    both = runner.invoke(
        cli,
        ["create-admin", "--email", "b@gemeente.nl", "--password-stdin", "--password", "x" * 12],
        input="y" * 12 + "\n",
    )
    assert both.exit_code == 1
    assert "not both" in both.stderr
    assert session.exec(select(User).where(User.email == "b@gemeente.nl")).first() is None


@pytest.mark.usefixtures("cli_database")
def test_create_admin_reads_the_password_from_the_environment(session: Session) -> None:
    result = runner.invoke(
        cli,
        ["create-admin", "--email", "a@gemeente.nl"],
        env={"WIJKBUDGET_ADMIN_PASSWORD": "from the environment"},
    )
    assert result.exit_code == 0, result.output
    assert security.verify_password(
        "from the environment", _admin(session, "a@gemeente.nl").password_hash
    )


@pytest.mark.usefixtures("cli_database")
def test_create_admin_asks_on_a_terminal_hidden_and_twice(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.cli._interactive", lambda: True)
    monkeypatch.delenv("WIJKBUDGET_ADMIN_PASSWORD", raising=False)
    mistyped = runner.invoke(
        cli,
        ["create-admin", "--email", "a@gemeente.nl"],
        input="typed at the prompt\ntyped at the promtp\ntyped at the prompt\ntyped at the prompt\n",
    )
    assert mistyped.exit_code == 0, mistyped.output
    assert "Password" in mistyped.output
    assert "do not match" in mistyped.output  # asked again after the mismatch
    assert "typed at the prompt" not in mistyped.output  # hidden: not echoed
    assert security.verify_password(
        "typed at the prompt", _admin(session, "a@gemeente.nl").password_hash
    )


@pytest.mark.usefixtures("cli_database")
def test_create_admin_without_a_password_or_terminal_says_how(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIJKBUDGET_ADMIN_PASSWORD", raising=False)
    result = runner.invoke(cli, ["create-admin", "--email", "a@gemeente.nl"], input="")
    assert result.exit_code == 1
    assert "--password-stdin" in result.stderr
    assert "WIJKBUDGET_ADMIN_PASSWORD" in result.stderr
    assert session.exec(select(User)).all() == []


def _unreachable_database() -> str:
    """A PostgreSQL URL on a loopback port nothing listens on: connections are refused."""
    return f"postgresql+psycopg://wijkbudget:pw-not-shown@127.0.0.1:{free_port()}/wijkbudget"


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_without_a_database_a_command_fails_with_one_line(workdir: Path, command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", command],
        env=_environment(workdir, DATABASE_URL=_unreachable_database(), DB_WAIT_SECONDS="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: the database at postgresql+psycopg://wijkbudget:***@")
    assert "did not answer within 0 s (DB_WAIT_SECONDS)" in lines[0]
    assert "pw-not-shown" not in result.stderr


@pytest.mark.slow
def test_serve_waits_for_the_database_logging_each_retry_then_gives_up(workdir: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        env=_environment(
            workdir, DATABASE_URL=_unreachable_database(), DB_WAIT_SECONDS="2", LOG_FORMAT="text"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    waited = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert waited >= 2
    assert "Traceback" not in result.stderr
    *retries, last = result.stderr.strip().splitlines()
    assert len(retries) >= 2, result.stderr  # 0.5 s, then 1 s, then what is left
    for line in retries:
        assert " WARNING " in line
        assert "does not answer" in line
        assert "trying again in" in line
    assert last.startswith("error: the database at ")
    assert "did not answer within 2 s" in last
