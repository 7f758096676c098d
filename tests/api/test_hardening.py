"""Abuse limits, privacy (export and erasure) and odd bodies."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.config import Settings
from app.models.ballot import Ballot, BallotVoter, VotingCode
from app.models.process import Phase
from app.models.proposal import Support
from app.models.result import PublishedResult
from app.models.user import User
from tests.api.conftest import Actors
from tests.factories import PASSWORD, make_proposal, make_user, make_voting_process
from tests.helpers import API, assert_problem


def sign_in(client: TestClient, email: str, password: str, address: str = "203.0.113.7") -> Any:
    # TestClient lets a test pick the client address through the ASGI scope.
    client_ = TestClient(client.app, client=(address, 50000))
    return client_.post(f"{API}/auth/token", data={"username": email, "password": password})


def test_failed_sign_ins_are_throttled_per_account_and_address(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = make_user(session, email="anna@example.org")
    for _ in range(settings.login_max_failures_per_account_address):
        assert_problem(sign_in(client, user.email, "wrong password!"), 401, "invalid_credentials")
    blocked = sign_in(client, user.email, PASSWORD)
    assert_problem(blocked, 429, "too_many_attempts")
    assert 0 < int(blocked.headers["retry-after"]) <= settings.login_window_minutes * 60
    # Per account: another account from the same address still signs in.
    other = make_user(session, email="bram@example.org")
    assert sign_in(client, other.email, PASSWORD).status_code == 200


def test_a_success_clears_the_count_of_its_address(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = make_user(session, email="anna@example.org")
    for _ in range(3):
        for _ in range(settings.login_max_failures_per_account_address - 1):
            sign_in(client, user.email, "wrong password!")
        assert sign_in(client, user.email, PASSWORD).status_code == 200


def test_failed_sign_ins_are_throttled_per_address(database_url: str, session: Session) -> None:
    from app.main import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url, login_max_failures_per_address=3))
    with (
        TestClient(app, client=("198.51.100.9", 1)) as attacker,
        TestClient(app, client=("192.0.2.1", 1)) as neighbour,
    ):
        victims = [make_user(session) for _ in range(4)]
        for victim in victims[:3]:
            assert_problem(
                attacker.post(
                    f"{API}/auth/token", data={"username": victim.email, "password": "guess guess"}
                ),
                401,
                "invalid_credentials",
            )
        assert_problem(
            attacker.post(
                f"{API}/auth/token", data={"username": victims[3].email, "password": PASSWORD}
            ),
            429,
            "too_many_attempts",
        )
        assert (
            neighbour.post(
                f"{API}/auth/token", data={"username": victims[3].email, "password": PASSWORD}
            ).status_code
            == 200
        )
    app.state.engine.dispose()


def test_registrations_are_throttled_per_address(database_url: str, session: Session) -> None:
    from app.main import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url, register_max_per_address=2))
    with TestClient(app, client=("198.51.100.10", 1)) as client:
        for n in range(2):
            body = {
                "email": f"bot{n}@example.org",
                "password": "long enough pw",
                "display_name": "Bot",
            }
            assert client.post(f"{API}/auth/register", json=body).status_code == 201
        body = {"email": "bot9@example.org", "password": "long enough pw", "display_name": "Bot"}
        response = client.post(f"{API}/auth/register", json=body)
        assert_problem(response, 429, "too_many_attempts")
        assert "retry-after" in response.headers
    session.commit()
    assert session.exec(select(User).where(User.email == "bot9@example.org")).first() is None
    app.state.engine.dispose()


def test_code_claims_are_throttled_per_address(
    database_url: str, session: Session, actors: Actors
) -> None:
    from app.main import create_app
    from tests.conftest import make_settings

    process, _ = make_voting_process(session, actors.author.user)
    app = create_app(make_settings(database_url, claim_max_per_address=3))
    with TestClient(app, client=("198.51.100.11", 1)) as client:
        url = f"{API}/processes/{process.id}/voting-codes/claim"
        accounts = [actors.resident, actors.author, actors.moderator, actors.admin]
        for actor in accounts[:3]:
            assert_problem(
                client.post(url, json={"code": "NOPE-NOPE-NOPE-NOPE"}, headers=actor.headers),
                422,
                "invalid_code",
            )
        assert_problem(
            client.post(url, json={"code": "NOPE-NOPE-NOPE-NOPE"}, headers=accounts[3].headers),
            429,
            "too_many_attempts",
        )
    app.state.engine.dispose()


def test_export_contains_everything_about_me(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, (p1, *_) = make_voting_process(session, actors.author.user)
    client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [p1.id]},
        headers=actors.author.headers,
    )
    open_process, _ = make_voting_process(session, actors.admin.user, phase=Phase.submission)
    mine = make_proposal(session, open_process, actors.author.user, title="My plan")
    client.post(f"{API}/proposals/{mine.id}/support", headers=actors.author.headers)
    client.post(
        f"{API}/proposals/{mine.id}/comments",
        json={"body": "Me again"},
        headers=actors.author.headers,
    )
    export = client.get(f"{API}/users/me/export", headers=actors.author.headers).json()
    assert export["account"]["email"] == actors.author.user.email
    assert "password_hash" not in str(export)
    assert {p["title"] for p in export["proposals"]} >= {"My plan"}
    assert [c["body"] for c in export["comments"]] == ["Me again"]
    assert export["supported_proposal_ids"] == [mine.id]
    assert [b["process_id"] for b in export["ballots"]] == [process.id]
    assert_problem(client.get(f"{API}/users/me/export"), 401, "not_authenticated")


def test_erasure_keeps_what_was_written_and_what_was_counted(
    client: TestClient, actors: Actors, session: Session
) -> None:
    author = actors.author
    email = author.user.email
    closed, (c1, *_) = make_voting_process(session, actors.admin.user)
    client.put(
        f"{API}/processes/{closed.id}/ballot",
        json={"proposal_ids": [c1.id]},
        headers=author.headers,
    )
    client.post(
        f"{API}/processes/{closed.id}/transition",
        json={"to": "closed"},
        headers=actors.admin.headers,
    )
    published = client.post(
        f"{API}/processes/{closed.id}/results", headers=actors.admin.headers
    ).json()
    voting, (v1, *_) = make_voting_process(session, actors.admin.user)
    client.put(
        f"{API}/processes/{voting.id}/ballot",
        json={"proposal_ids": [v1.id]},
        headers=author.headers,
    )
    open_process, _ = make_voting_process(session, actors.admin.user, phase=Phase.submission)
    mine = make_proposal(session, open_process, author.user, title="My plan")
    client.post(f"{API}/proposals/{mine.id}/support", headers=author.headers)
    client.post(
        f"{API}/proposals/{mine.id}/comments", json={"body": "Me again"}, headers=author.headers
    )

    assert client.delete(f"{API}/users/me", headers=author.headers).status_code == 204
    assert_problem(client.get(f"{API}/users/me", headers=author.headers), 401, "not_authenticated")
    session.commit()
    session.expire_all()
    erased = session.get(User, author.id)
    assert erased is not None
    assert erased.erased_at is not None
    assert (erased.postcode, erased.birth_year, erased.display_name) == (
        None,
        None,
        "Former resident",
    )
    assert erased.email != email
    assert_problem(
        client.post(f"{API}/auth/token", data={"username": email, "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    # What they wrote stays, by a former resident.
    shown = client.get(f"{API}/proposals/{mine.id}").json()
    assert shown["author"] == {"id": None, "display_name": "Former resident"}
    comments = client.get(f"{API}/proposals/{mine.id}/comments").json()["items"]
    assert comments[0]["author"]["display_name"] == "Former resident"
    # Supports go; the ballot where voting is open is withdrawn; the counted one stays, unlinked.
    assert session.exec(select(Support).where(Support.user_id == author.id)).all() == []
    ballots = session.exec(select(Ballot)).all()
    assert [(b.process_id, b.voter_id) for b in ballots] == [(closed.id, None)]
    assert session.exec(select(BallotVoter)).all() == []
    assert client.get(f"{API}/processes/{closed.id}/results").json() == published
    assert session.get(PublishedResult, closed.id) is not None
    # The same email can register again as a new person.
    again = {"email": email, "password": "long enough pw", "display_name": "Anna"}
    assert client.post(f"{API}/auth/register", json=again).status_code == 201


def test_a_claimed_code_stays_used_after_erasure(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, _ = make_voting_process(session, actors.author.user)
    response = client.post(
        f"{API}/processes/{process.id}/voting-codes",
        json={"count": 1},
        headers=actors.admin.headers,
    )
    code = response.text.splitlines()[1]
    assert (
        client.post(
            f"{API}/processes/{process.id}/voting-codes/claim",
            json={"code": code},
            headers=actors.resident.headers,
        ).status_code
        == 200
    )
    client.delete(f"{API}/users/me", headers=actors.resident.headers)
    assert_problem(
        client.post(
            f"{API}/processes/{process.id}/voting-codes/claim",
            json={"code": code},
            headers=actors.author.headers,
        ),
        409,
        "code_used",
    )
    session.commit()
    assert session.exec(select(VotingCode.claimed_by)).all() == [None]


def test_the_last_admin_cannot_erase_itself(client: TestClient, actors: Actors) -> None:
    assert_problem(
        client.delete(f"{API}/users/me", headers=actors.admin.headers), 409, "last_admin"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"[" + b"1," * 300_000 + b"1]",
        b'{"email": "\\ud800"}',
        b"\xff\xfe\xfd",
    ],
)
def test_absurd_json_gets_a_clean_4xx(client: TestClient, session: Session, body: bytes) -> None:
    response = client.post(
        f"{API}/auth/register", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_error")
    session.commit()
    assert session.exec(select(User)).all() == []
