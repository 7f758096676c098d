"""Abuse limits and account rules under parallel requests, against a real server.

On PostgreSQL these exercise the per-bucket advisory locks and the row locks; on SQLite
the same assertions hold because writers queue on the database lock. Every count is exact:
a limit of 5 means 5 attempts were checked, however many arrive at once.
"""

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

import httpx
from sqlmodel import Session, select

from app.core.config import Settings
from app.models.user import Role, User
from tests.factories import auth, make_user, make_voting_process
from tests.helpers import all_at_once

T = TypeVar("T")


def outcomes(responses: Sequence[httpx.Response]) -> Counter[tuple[int, str]]:
    return Counter(
        (r.status_code, r.json().get("code", "") if r.content else "") for r in responses
    )


def test_forty_parallel_wrong_passwords_check_only_the_limit(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    user = make_user(session)
    limit = settings.login_max_failures_per_account_address

    def guess() -> httpx.Response:
        return http.post(
            f"{base_url}/auth/token", data={"username": user.email, "password": "wrong guess!"}
        )

    got = outcomes(all_at_once([guess] * 40))
    assert got == {(401, "invalid_credentials"): limit, (429, "too_many_attempts"): 40 - limit}


def test_thirty_parallel_wrong_codes_count_only_the_limit(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    author = make_user(session)
    process, _ = make_voting_process(session, author)
    resident = make_user(session)
    headers = auth(resident, settings.signing_key())
    limit = settings.code_claim_max_failures

    def guess(n: int) -> Callable[[], httpx.Response]:
        return lambda: http.post(
            f"{base_url}/processes/{process.id}/voting-codes/claim",
            json={"code": f"WRONG-CODE-{n:04d}"},
            headers=headers,
        )

    got = outcomes(all_at_once([guess(n) for n in range(30)]))
    assert got == {(422, "invalid_code"): limit, (429, "too_many_attempts"): 30 - limit}


def test_parallel_wrong_current_passwords_check_only_the_limit(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    user = make_user(session)
    headers = auth(user, settings.signing_key())
    limit = settings.password_change_max_failures

    def change() -> httpx.Response:
        body = {"current_password": "wrong guess!", "new_password": "a new password!"}
        return http.post(f"{base_url}/users/me/password", json=body, headers=headers)

    got = outcomes(all_at_once([change] * 20))
    assert got == {(401, "invalid_credentials"): limit, (429, "too_many_attempts"): 20 - limit}


def test_a_duplicate_registration_losing_the_race_is_a_conflict(
    base_url: str, http: httpx.Client, session: Session
) -> None:
    body = {"email": "race@example.org", "password": "long enough pw", "display_name": "Race"}

    def register() -> httpx.Response:
        return http.post(f"{base_url}/auth/register", json=body)

    got = outcomes(all_at_once([register] * 10))
    assert got == {(201, ""): 1, (409, "email_taken"): 9}
    session.commit()
    assert len(session.exec(select(User).where(User.email == "race@example.org")).all()) == 1


def test_two_admins_erasing_themselves_at_once_leave_one(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    key = settings.signing_key()
    for _ in range(3):
        admins = [make_user(session, role=Role.admin) for _ in range(2)]

        def erase(admin: User) -> Callable[[], httpx.Response]:
            return lambda: http.delete(f"{base_url}/users/me", headers=auth(admin, key))

        got = outcomes(all_at_once([erase(admin) for admin in admins]))
        assert got == {(204, ""): 1, (409, "last_admin"): 1}
        session.commit()
        remaining = session.exec(select(User).where(User.role == Role.admin)).all()
        assert len(remaining) == 1
        # Start the next round from none: demote the survivor behind the API's back.
        remaining[0].role = Role.resident
        session.add(remaining[0])
        session.commit()


def test_two_admins_demoting_each_other_at_once_leave_one(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    key = settings.signing_key()
    first, second = (make_user(session, role=Role.admin) for _ in range(2))

    def demote(actor: User, target: User) -> Callable[[], httpx.Response]:
        return lambda: http.patch(
            f"{base_url}/users/{target.id}/role",
            json={"role": "resident"},
            headers=auth(actor, key),
        )

    got = outcomes(all_at_once([demote(first, second), demote(second, first)]))
    # The loser is refused: as the last admin, or because its demotion retired its token.
    assert got[(200, "")] == 1
    assert all(status in (200, 401, 409) for status, _ in got.elements())
    session.commit()
    assert len(session.exec(select(User).where(User.role == Role.admin)).all()) == 1
