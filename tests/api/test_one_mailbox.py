"""One mailbox, one vote where a process requires a verified e-mail address, and e-mail
changes that cannot be used to mail-bomb anyone.

The attack this closes: vote, change the account's e-mail to a made-up one (the ballot
stays), and register the freed mailbox again, or register `ann+1@`, `ann+2@`, ... which all
arrive in one inbox."""

import functools

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.config import Settings
from app.models.ballot import Ballot
from app.models.mail import OutgoingMail
from app.models.user import User
from tests.api.conftest import Actors
from tests.factories import auth, make_user, make_voting_process
from tests.helpers import API, all_at_once, assert_problem


def _verified(session: Session, settings: Settings, email: str) -> dict[str, str]:
    user = make_user(session, email=email)
    user.email_verified = True
    session.add(user)
    session.commit()
    return auth(user, settings.signing_key())


def _cast(
    client: TestClient, process_id: int | None, proposal_id: int | None, headers: dict[str, str]
) -> httpx.Response:
    response: httpx.Response = client.put(
        f"{API}/processes/{process_id}/ballot",
        json={"proposal_ids": [proposal_id]},
        headers=headers,
    )
    return response


def test_plus_addresses_and_case_are_one_mailbox(
    client: TestClient, session: Session, settings: Settings, actors: Actors
) -> None:
    process, proposals = make_voting_process(
        session, actors.author.user, eligibility={"require_verified_email": True}
    )
    ann = _verified(session, settings, "ann@example.org")
    ann_again = _verified(session, settings, "ann+budget@example.org")
    bob = _verified(session, settings, "bob@example.org")
    assert _cast(client, process.id, proposals[0].id, ann).status_code == 200
    body = assert_problem(
        _cast(client, process.id, proposals[1].id, ann_again), 409, "mailbox_used"
    )
    assert "one mailbox, one vote" in body["detail"]
    assert _cast(client, process.id, proposals[1].id, bob).status_code == 200
    # Replacing one's own ballot is never refused.
    assert _cast(client, process.id, proposals[2].id, ann).status_code == 200
    session.rollback()
    assert len(session.exec(select(Ballot).where(Ballot.process_id == process.id)).all()) == 2


def test_a_process_without_verified_email_does_not_count_mailboxes(
    client: TestClient, session: Session, settings: Settings, actors: Actors
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    for email in ("eve@example.org", "eve+2@example.org"):
        headers = _verified(session, settings, email)
        assert _cast(client, process.id, proposals[0].id, headers).status_code == 200


def test_the_email_is_locked_while_a_verified_email_ballot_counts(
    client: TestClient, session: Session, settings: Settings, actors: Actors
) -> None:
    process, proposals = make_voting_process(
        session, actors.author.user, eligibility={"require_verified_email": True}
    )
    ann = _verified(session, settings, "ann@example.org")
    assert _cast(client, process.id, proposals[0].id, ann).status_code == 200
    body = assert_problem(
        client.patch(f"{API}/users/me", json={"email": "made-up@example.org"}, headers=ann),
        409,
        "profile_locked",
    )
    assert body["fields"] == ["email"]
    session.rollback()
    assert session.exec(select(User).where(User.email == "ann@example.org")).first() is not None
    # Other fields still change; and withdrawing the ballot frees the address.
    assert (
        client.patch(f"{API}/users/me", json={"display_name": "Ann"}, headers=ann).status_code
        == 200
    )
    assert client.delete(f"{API}/processes/{process.id}/ballot", headers=ann).status_code == 204
    moved = client.patch(f"{API}/users/me", json={"email": "ann2@example.org"}, headers=ann)
    assert moved.status_code == 200, moved.text


def test_email_changes_are_throttled_per_account_and_per_new_address(
    client: TestClient, session: Session, settings: Settings
) -> None:
    mallory = _verified(session, settings, "mallory@example.org")
    for n in range(settings.email_change_max_per_account):
        changed = client.patch(
            f"{API}/users/me", json={"email": f"m{n}@example.org"}, headers=mallory
        )
        assert changed.status_code == 200, changed.text
    refused = client.patch(f"{API}/users/me", json={"email": "m-last@example.org"}, headers=mallory)
    assert_problem(refused, 429, "too_many_attempts")
    assert refused.headers["Retry-After"]
    # Many accounts toggling to one victim: the victim gets at most the per-address limit.
    victim = "victim@example.org"
    answers = []
    for n in range(settings.email_change_max_per_address + 2):
        headers = _verified(session, settings, f"sock{n}@example.org")
        answers.append(client.patch(f"{API}/users/me", json={"email": victim}, headers=headers))
        client.patch(f"{API}/users/me", json={"email": f"sock{n}@example.org"}, headers=headers)
    limit = settings.email_change_max_per_address
    assert [a.status_code for a in answers[:limit]] == [200] * limit
    assert {a.status_code for a in answers[limit:]} == {429}
    session.rollback()
    to_victim = session.exec(select(OutgoingMail).where(OutgoingMail.to_address == victim)).all()
    assert len(to_victim) == limit


def test_two_accounts_of_one_mailbox_casting_at_once_leave_one_ballot(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("row-lock races need PostgreSQL; SQLite serialises whole writing requests")
    author = make_user(session)
    process, proposals = make_voting_process(
        session, author, eligibility={"require_verified_email": True}
    )
    accounts = [_verified(session, settings, f"kim+{n}@example.org") for n in range(10)]
    url = f"{base_url}/processes/{process.id}/ballot"
    body = {"proposal_ids": [proposals[0].id]}
    answers = all_at_once(
        [functools.partial(http.put, url, json=body, headers=h) for h in accounts]
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 9
    session.rollback()
    assert len(session.exec(select(Ballot).where(Ballot.process_id == process.id)).all()) == 1
