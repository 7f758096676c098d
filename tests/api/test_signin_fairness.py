"""Abuse limits that nobody can turn against the owner, password-change throttling, and
what the throttle stores (pseudonyms only, pruned, erased with the account)."""

import sqlite3
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.cli import cli
from app.core import security
from app.core.config import Settings, get_settings
from app.main import create_app
from app.models.base import utcnow
from app.models.throttle import ThrottleEvent
from app.services.throttle import Guard
from tests.conftest import make_settings
from tests.factories import PASSWORD, auth, make_user
from tests.helpers import API, assert_problem

PAIR, ADDRESS, ACCOUNT = 3, 6, 8


@pytest.fixture
def strict_app(database_url: str, engine: Engine) -> Iterator[FastAPI]:
    """An app with small limits; `engine` makes the tables be emptied after the test."""
    app = create_app(
        make_settings(
            database_url,
            login_max_failures_per_account_address=PAIR,
            login_max_failures_per_address=ADDRESS,
            login_max_failures_per_account=ACCOUNT,
        )
    )
    yield app
    app.state.engine.dispose()


def from_address(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 1))


def sign_in(client: TestClient, email: str, password: str) -> httpx.Response:
    response: httpx.Response = client.post(
        f"{API}/auth/token", data={"username": email, "password": password}
    )
    return response


def test_guesses_elsewhere_do_not_lock_the_owner_out(strict_app: FastAPI, session: Session) -> None:
    owner = make_user(session)
    attacker = from_address(strict_app, "198.51.100.9")
    for _ in range(PAIR):
        assert_problem(sign_in(attacker, owner.email, "a wrong guess"), 401, "invalid_credentials")
    blocked = sign_in(attacker, owner.email, PASSWORD)
    assert_problem(blocked, 429, "too_many_attempts")
    assert int(blocked.headers["retry-after"]) > 0
    # The owner, from an address of their own, with the right password.
    assert sign_in(from_address(strict_app, "192.0.2.1"), owner.email, PASSWORD).status_code == 200


def test_distributed_guessing_is_capped_per_account_but_not_at_a_known_address(
    strict_app: FastAPI, session: Session
) -> None:
    owner = make_user(session)
    home = from_address(strict_app, "192.0.2.1")
    assert sign_in(home, owner.email, PASSWORD).status_code == 200  # home is now known
    for n in range(ACCOUNT):
        guesser = from_address(strict_app, f"198.51.100.{n + 10}")
        assert_problem(sign_in(guesser, owner.email, "a wrong guess"), 401, "invalid_credentials")
    # A further new address is refused even with the right password...
    newcomer = from_address(strict_app, "198.51.100.200")
    assert_problem(sign_in(newcomer, owner.email, PASSWORD), 429, "too_many_attempts")
    # ...but the owner at home still gets in.
    assert sign_in(home, owner.email, PASSWORD).status_code == 200


def test_a_guessing_address_delays_accounts_new_to_it_but_not_its_regulars(
    strict_app: FastAPI, session: Session
) -> None:
    regular, newcomer = make_user(session), make_user(session)
    nat = from_address(strict_app, "203.0.113.50")
    assert sign_in(nat, regular.email, PASSWORD).status_code == 200
    for n in range(ADDRESS):
        assert_problem(
            sign_in(nat, f"nobody{n}@example.org", "a wrong guess"), 401, "invalid_credentials"
        )
    assert_problem(sign_in(nat, newcomer.email, PASSWORD), 429, "too_many_attempts")
    assert sign_in(nat, regular.email, PASSWORD).status_code == 200
    # The newcomer is not locked out anywhere else.
    assert (
        sign_in(from_address(strict_app, "192.0.2.8"), newcomer.email, PASSWORD).status_code == 200
    )


def change_password(
    client: TestClient, headers: dict[str, str], current: str, new: str = "another password!"
) -> httpx.Response:
    body = {"current_password": current, "new_password": new}
    response: httpx.Response = client.post(f"{API}/users/me/password", json=body, headers=headers)
    return response


def test_password_changes_are_throttled(
    client: TestClient, session: Session, settings: Settings
) -> None:
    key = settings.signing_key()
    user, other = make_user(session), make_user(session)
    headers = auth(user, key)
    # A success clears the count of earlier wrong attempts.
    for _ in range(settings.password_change_max_failures - 1):
        assert_problem(
            change_password(client, headers, "a wrong guess"), 401, "invalid_credentials"
        )
    assert change_password(client, headers, PASSWORD, new="second password!").status_code == 204
    headers = {
        "Authorization": f"Bearer {sign_in(client, user.email, 'second password!').json()['access_token']}"
    }
    for _ in range(settings.password_change_max_failures):
        assert_problem(
            change_password(client, headers, "a wrong guess"), 401, "invalid_credentials"
        )
    blocked = change_password(client, headers, "second password!")
    assert_problem(blocked, 429, "too_many_attempts")
    assert 0 < int(blocked.headers["retry-after"]) <= settings.login_window_minutes * 60
    # Nothing changed: the old password still signs in; other accounts are unaffected.
    assert sign_in(client, user.email, "second password!").status_code == 200
    assert change_password(client, auth(other, key), PASSWORD).status_code == 204


@pytest.fixture
def write_lock_probe(database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, at every Argon2 password check, whether SQLite's write lock was free."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        pytest.skip("SQLite's single write lock; PostgreSQL has no such lock to hold")
    free: list[bool] = []
    verify = security.verify_password

    def probing(password: str, hashed: str) -> bool:
        probe = sqlite3.connect(str(url.database), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            free.append(True)
        except sqlite3.OperationalError:
            free.append(False)
        finally:
            probe.close()
        return verify(password, hashed)

    monkeypatch.setattr(security, "verify_password", probing)
    return free


def test_passwords_are_checked_without_holding_the_write_lock(
    client: TestClient, session: Session, settings: Settings, write_lock_probe: list[bool]
) -> None:
    user = make_user(session)
    assert sign_in(client, user.email, PASSWORD).status_code == 200
    assert_problem(sign_in(client, user.email, "a wrong guess"), 401, "invalid_credentials")
    headers = auth(user, settings.signing_key())
    assert_problem(change_password(client, headers, "a wrong guess"), 401, "invalid_credentials")
    assert change_password(client, headers, PASSWORD).status_code == 204
    assert write_lock_probe == [True, True, True, True]


def guard_of(client: TestClient) -> Guard:
    app = client.app
    assert isinstance(app, FastAPI)
    guard: Guard = app.state.guard
    return guard


def test_the_throttle_stores_no_emails_or_addresses_and_erasure_removes_the_account_rows(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user, other = make_user(session), make_user(session)
    for account in (user, other):
        assert_problem(sign_in(client, account.email, "a wrong guess"), 401, "invalid_credentials")
    headers = auth(user, settings.signing_key())
    assert_problem(change_password(client, headers, "a wrong guess"), 401, "invalid_credentials")
    session.commit()
    buckets = list(session.exec(select(ThrottleEvent.bucket)))
    assert buckets
    assert not [b for b in buckets if "@" in b or "testclient" in b]
    guard = guard_of(client)
    named = [guard.pseudonym(user.email), guard.pseudonym(str(user.id))]
    assert sum(any(n in b for n in named) for b in buckets) == 3  # pair, account, password

    assert client.delete(f"{API}/users/me", headers=headers).status_code == 204
    session.commit()
    left = list(session.exec(select(ThrottleEvent.bucket)))
    assert not [b for b in left if any(n in b for n in named)]
    assert [b for b in left if guard.pseudonym(other.email) in b]  # others' rows stay


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_database")
def test_prune_deletes_expired_rows_of_any_bucket(engine: Engine, session: Session) -> None:
    now = utcnow()
    session.add_all(
        [
            ThrottleEvent(
                bucket="register-address:x", at=now, expires_at=now - timedelta(seconds=1)
            ),
            ThrottleEvent(bucket="login-known:y:z", at=now, expires_at=now - timedelta(days=1)),
            ThrottleEvent(bucket="login-pair:y:z", at=now, expires_at=now + timedelta(minutes=5)),
        ]
    )
    session.commit()
    result = CliRunner().invoke(cli, ["prune"])
    assert result.exit_code == 0, result.output
    assert "pruned 2" in result.output
    session.commit()
    assert list(session.exec(select(ThrottleEvent.bucket))) == ["login-pair:y:z"]
