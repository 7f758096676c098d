"""Accounts end to end through a real SMTP server: verification, password reset, profile,
sign-out and vote confirmations. Every token is taken from a delivered mail."""

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from app.models.mail import AccountToken, OutgoingMail
from app.models.process import Phase
from app.models.user import User
from tests.conftest import TEST_SECRET
from tests.factories import auth, make_voting_process
from tests.helpers import API, assert_problem
from tests.mail.conftest import FRONTEND, MailWorld, html_of, text_of, token_in

ANNA: dict[str, Any] = {
    "email": "Anna@Example.org",
    "password": "correct horse battery",
    "display_name": "Anna <b>& co</b>",
    "postcode": "9713 AB",
    "birth_year": 1990,
}


def register(
    client: TestClient, body: dict[str, Any] | None = None, language: str | None = None
) -> Any:
    headers = {"Accept-Language": language} if language else {}
    response = client.post(f"{API}/auth/register", json=body or ANNA, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def sign_in(client: TestClient, email: str, password: str) -> dict[str, str]:
    response = client.post(f"{API}/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_registration_mails_a_link_that_verifies_once(world: MailWorld, session: Session) -> None:
    client = world.client
    user = register(client, language="fr, nl;q=0.8, en;q=0.5")
    assert user["email_verified"] is False
    assert user["language"] == "nl"
    assert world.deliver().sent == 1
    [message] = world.inbox.to("anna@example.org")
    assert message["Subject"] == "Bevestig je e-mailadres voor Wijkbudget"
    assert message["From"] == "Wijkbudget <noreply@wijkbudget.example.org>"
    # Plain text and HTML. The address is not verified yet: the account's own text (its
    # display name) is in neither part (escaping of values: see the receipt mail's test).
    assert "Anna" not in text_of(message)
    assert "Anna" not in html_of(message)
    assert "<b>" not in html_of(message)
    token = token_in(message, "verify-email")
    assert f'href="{FRONTEND}/verify-email?token={token}"' in html_of(message)
    # Neither the outbox nor the token table holds the token itself.
    for row in session.exec(select(OutgoingMail)).all():
        assert token not in str(row.model_dump())
    stored = session.exec(select(AccountToken)).one()
    assert stored.token_hash != token
    assert token not in stored.token_hash

    verified = client.post(f"{API}/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email_verified"] is True
    assert verified.json()["id"] == user["id"]
    again = client.post(f"{API}/auth/verify-email", json={"token": token})
    assert_problem(again, 422, "invalid_token")
    assert_problem(
        client.post(f"{API}/auth/verify-email", json={"token": "x" * 43}), 422, "invalid_token"
    )


def test_language_from_the_body_wins_and_english_is_the_default(world: MailWorld) -> None:
    client = world.client
    assert register(client, {**ANNA, "language": "en"}, language="nl")["language"] == "en"
    assert register(client, {**ANNA, "email": "bob@example.org"})["language"] == "en"
    world.deliver()
    assert world.inbox.to("bob@example.org")[0]["Subject"] == (
        "Confirm your e-mail address for Wijkbudget"
    )


def test_an_expired_verification_link_is_refused(world: MailWorld, engine: Engine) -> None:
    register(world.client)
    world.deliver()
    token = token_in(world.inbox.to("anna@example.org")[0], "verify-email")
    with engine.begin() as connection:
        connection.execute(
            AccountToken.__table__.update().values(  # type: ignore[attr-defined]
                expires_at=AccountToken.created_at  # expired the moment it was made
            )
        )
    response = world.client.post(f"{API}/auth/verify-email", json={"token": token})
    assert_problem(response, 422, "invalid_token")


def test_a_new_verification_link_on_request_throttled_and_only_the_newest_works(
    world: MailWorld,
) -> None:
    client = world.client
    register(client)
    headers = sign_in(client, "anna@example.org", ANNA["password"])
    world.deliver()
    first = token_in(world.inbox.to("anna@example.org")[0], "verify-email")
    assert client.post(f"{API}/auth/verify-email/request", headers=headers).status_code == 202
    world.deliver()
    newest = token_in(world.inbox.to("anna@example.org")[1], "verify-email")
    assert_problem(
        client.post(f"{API}/auth/verify-email", json={"token": first}), 422, "invalid_token"
    )
    assert client.post(f"{API}/auth/verify-email", json={"token": newest}).status_code == 200
    # Verified: asking again mails nothing; the limit (5 per hour) still counts every ask.
    for _ in range(4):
        assert client.post(f"{API}/auth/verify-email/request", headers=headers).status_code == 202
    assert world.deliver().sent == 0
    refused = client.post(f"{API}/auth/verify-email/request", headers=headers)
    assert_problem(refused, 429, "too_many_attempts")
    assert int(refused.headers["Retry-After"]) > 0
    assert_problem(client.post(f"{API}/auth/verify-email/request"), 401, "not_authenticated")


def test_password_reset_by_mail_retires_every_earlier_token(world: MailWorld) -> None:
    client = world.client
    register(client)
    world.deliver()
    old_headers = sign_in(client, "anna@example.org", ANNA["password"])
    for email in ("ANNA@example.org ", "nobody@example.org"):
        response = client.post(f"{API}/auth/password-reset/request", json={"email": email})
        assert response.status_code == 202
        assert response.json() == {"status": "sent if the account exists"}
    result = world.deliver()
    assert (result.sent, result.dropped) == (1, 1)
    assert world.inbox.to("nobody@example.org") == []
    [message] = world.inbox.to("anna@example.org")[1:]
    assert message["Subject"] == "Choose a new Wijkbudget password"
    token = token_in(message, "reset-password")

    short = client.post(
        f"{API}/auth/password-reset", json={"token": token, "new_password": "short"}
    )
    assert_problem(short, 422, "validation_error")
    done = client.post(
        f"{API}/auth/password-reset", json={"token": token, "new_password": "a new long password"}
    )
    assert done.status_code == 204, done.text
    assert_problem(client.get(f"{API}/users/me", headers=old_headers), 401, "not_authenticated")
    again = client.post(
        f"{API}/auth/password-reset", json={"token": token, "new_password": "another password!"}
    )
    assert_problem(again, 422, "invalid_token")
    bad = client.post(
        f"{API}/auth/token", data={"username": "anna@example.org", "password": ANNA["password"]}
    )
    assert_problem(bad, 401, "invalid_credentials")
    headers = sign_in(client, "anna@example.org", "a new long password")
    me = client.get(f"{API}/users/me", headers=headers).json()
    assert me["email_verified"] is True  # the link proved the mailbox


def test_a_newer_reset_link_retires_the_older_one(world: MailWorld) -> None:
    client = world.client
    register(client)
    for _ in range(2):
        client.post(f"{API}/auth/password-reset/request", json={"email": "anna@example.org"})
        world.deliver()
    first, second = (token_in(m, "reset-password") for m in world.inbox.to("anna@example.org")[1:])
    body = {"new_password": "a new long password"}
    assert_problem(
        client.post(f"{API}/auth/password-reset", json={"token": first, **body}),
        422,
        "invalid_token",
    )
    assert (
        client.post(f"{API}/auth/password-reset", json={"token": second, **body}).status_code == 204
    )


def test_reset_requests_are_throttled_per_email_and_per_address(
    world: MailWorld, settings: Any
) -> None:
    client = world.client
    for _ in range(5):
        assert (
            client.post(
                f"{API}/auth/password-reset/request", json={"email": "anna@example.org"}
            ).status_code
            == 202
        )
    assert_problem(
        client.post(f"{API}/auth/password-reset/request", json={"email": "anna@example.org"}),
        429,
        "too_many_attempts",
    )
    # Per address: 20 per hour from one client, whatever the e-mails (5 counted above).
    for n in range(15):
        response = client.post(
            f"{API}/auth/password-reset/request", json={"email": f"other{n}@example.org"}
        )
        assert response.status_code == 202, n
    assert_problem(
        client.post(f"{API}/auth/password-reset/request", json={"email": "fresh@example.org"}),
        429,
        "too_many_attempts",
    )


def _statements(engine: Engine, client: TestClient, email: str) -> list[str]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.post(f"{API}/auth/password-reset/request", json={"email": email})
        assert response.status_code == 202
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_reset_request_does_the_same_work_whether_or_not_the_account_exists(
    world: MailWorld,
) -> None:
    """The guarantee behind "the same timing": the request runs the very same statements
    for a known and an unknown address (the account is looked up later, by the sender)."""
    register(world.client)
    engine: Engine = world.app.state.engine
    known = _statements(engine, world.client, "anna@example.org")
    unknown = _statements(engine, world.client, "nobody@example.org")
    assert known == unknown
    assert not any("user_account" in statement for statement in known)


def test_logout_retires_every_token_of_the_account(world: MailWorld) -> None:
    client = world.client
    register(client)
    phone = sign_in(client, "anna@example.org", ANNA["password"])
    laptop = sign_in(client, "anna@example.org", ANNA["password"])
    assert client.post(f"{API}/auth/logout", headers=phone).status_code == 204
    for headers in (phone, laptop):
        assert_problem(client.get(f"{API}/users/me", headers=headers), 401, "not_authenticated")
    assert_problem(client.post(f"{API}/auth/logout", headers=phone), 401, "not_authenticated")
    assert (
        client.get(
            f"{API}/users/me", headers=sign_in(client, "anna@example.org", ANNA["password"])
        ).status_code
        == 200
    )


def test_profile_edits_and_a_new_address_is_verified_by_its_own_link(world: MailWorld) -> None:
    client = world.client
    register(client)
    world.deliver()
    anna_link = token_in(world.inbox.to("anna@example.org")[0], "verify-email")
    client.post(f"{API}/auth/verify-email", json={"token": anna_link})
    headers = sign_in(client, "anna@example.org", ANNA["password"])
    register(client, {**ANNA, "email": "taken@example.org"})

    changed = client.patch(
        f"{API}/users/me",
        json={
            "display_name": "Anna B.",
            "language": "nl",
            "postcode": "9714 cd",
            "birth_year": 1991,
        },
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["display_name"], body["language"], body["postcode"], body["birth_year"]) == (
        "Anna B.", "nl", "9714CD", 1991,
    )  # fmt: skip
    assert body["email_verified"] is True

    taken = client.patch(f"{API}/users/me", json={"email": "TAKEN@example.org"}, headers=headers)
    assert_problem(taken, 409, "email_taken")
    for bad in ({"display_name": None}, {"email": None}, {"language": "de"}, {"role": "admin"}):
        assert_problem(
            client.patch(f"{API}/users/me", json=bad, headers=headers), 422, "validation_error"
        )
    assert client.get(f"{API}/users/me", headers=headers).json()["display_name"] == "Anna B."

    moved = client.patch(f"{API}/users/me", json={"email": "anna@new.example.org"}, headers=headers)
    assert moved.status_code == 200
    assert moved.json()["email"] == "anna@new.example.org"
    assert moved.json()["email_verified"] is False
    world.deliver()
    [message] = world.inbox.to("anna@new.example.org")
    assert message["Subject"] == "Bevestig je e-mailadres voor Wijkbudget"
    verified = client.post(
        f"{API}/auth/verify-email", json={"token": token_in(message, "verify-email")}
    )
    assert verified.json()["email_verified"] is True
    assert verified.json()["email"] == "anna@new.example.org"


def test_no_text_of_the_account_reaches_an_address_not_verified(world: MailWorld) -> None:
    """An attacker's display name must not reach a victim's inbox through an e-mail change:
    mails to an address not (yet) proved are the service's words alone."""
    client = world.client
    lure = "City of Groningen: your vote was CANCELLED, re-vote at https://evil.example"
    register(client, {**ANNA, "display_name": lure})
    headers = sign_in(client, "anna@example.org", ANNA["password"])
    moved = client.patch(f"{API}/users/me", json={"email": "victim@example.org"}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert client.post(
        f"{API}/auth/password-reset/request", json={"email": "victim@example.org"}
    ).status_code in (200, 202)
    world.deliver()
    delivered = world.inbox.to("victim@example.org")
    assert len(delivered) == 2  # the verification link and the reset link
    for message in delivered:
        for text in (text_of(message), html_of(message), str(message["Subject"])):
            assert "evil.example" not in text
            assert "CANCELLED" not in text


def test_postcode_and_birth_year_are_locked_while_a_ballot_is_in_voting(
    world: MailWorld, session: Session
) -> None:
    client = world.client
    user = register(client)
    headers = sign_in(client, "anna@example.org", ANNA["password"])
    author = session.get(User, user["id"])
    assert author is not None
    process, proposals = make_voting_process(session, author)
    cast = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[0].id]},
        headers=headers,
    )
    assert cast.status_code == 200, cast.text
    for change in ({"postcode": "1011AB"}, {"birth_year": 1980}, {"postcode": None}):
        locked = client.patch(f"{API}/users/me", json=change, headers=headers)
        assert_problem(locked, 409, "profile_locked")
    # The same values, and other fields, may be sent.
    same = client.patch(
        f"{API}/users/me", json={"postcode": "9713AB", "display_name": "Anna"}, headers=headers
    )
    assert same.status_code == 200, same.text
    process.phase = Phase.closed
    session.add(process)
    session.commit()
    assert (
        client.patch(f"{API}/users/me", json={"postcode": "1011AB"}, headers=headers).status_code
        == 200
    )


def _verified_voter(world: MailWorld, session: Session) -> tuple[User, dict[str, str]]:
    user = register(world.client)
    world.deliver()
    token = token_in(world.inbox.to("anna@example.org")[0], "verify-email")
    assert world.client.post(f"{API}/auth/verify-email", json={"token": token}).status_code == 200
    headers = sign_in(world.client, "anna@example.org", ANNA["password"])
    stored = session.get(User, user["id"], populate_existing=True)
    assert stored is not None
    return stored, headers


def test_a_verified_voter_gets_the_receipt_by_mail_never_the_choices(
    world: MailWorld, session: Session
) -> None:
    voter, headers = _verified_voter(world, session)
    process, proposals = make_voting_process(session, voter, title="Oosterpark & Dapper 2026")
    for n, proposal in enumerate(proposals):
        proposal.title = f"Distinctive plan number {n}"
        session.add(proposal)
    session.commit()
    cast = world.client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[1].id]},
        headers=headers,
    )
    assert cast.status_code == 200
    receipt = cast.json()["receipt"]
    assert world.deliver().sent == 1
    message = world.inbox.to("anna@example.org")[-1]
    assert message["Subject"] == "Your vote in Oosterpark & Dapper 2026 was received"
    text = text_of(message)
    assert receipt in text
    assert f"{FRONTEND}/processes/{process.id}/receipts/{receipt}" in text
    assert "Oosterpark &amp; Dapper 2026" in html_of(message)
    # A verified address gets the name, escaped in the HTML part only.
    assert "Anna <b>& co</b>" in text
    assert "Anna &lt;b&gt;&amp; co&lt;/b&gt;" in html_of(message)
    for proposal in proposals:
        assert proposal.title not in text
        assert proposal.title not in html_of(message)
    assert world.client.get(f"{API}/processes/{process.id}/receipts/{receipt}").status_code == 200


def test_no_vote_mail_for_an_unverified_voter(world: MailWorld, session: Session) -> None:
    user = register(world.client)
    world.deliver()
    headers = sign_in(world.client, "anna@example.org", ANNA["password"])
    voter = session.get(User, user["id"])
    assert voter is not None
    process, proposals = make_voting_process(session, voter)
    world.client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[0].id]},
        headers=headers,
    )
    assert world.deliver().sent == 0


def test_no_vote_mail_when_receipts_by_mail_are_off(
    world: MailWorld, session: Session, settings: Any
) -> None:
    from app.main import create_app
    from tests.mail.conftest import mail_settings

    voter, headers = _verified_voter(world, session)
    quiet = create_app(
        mail_settings(settings.database_url, world.smtp.url, mail_ballot_receipts=False)
    )
    process, proposals = make_voting_process(session, voter)
    with TestClient(quiet) as client:
        cast = client.put(
            f"{API}/processes/{process.id}/ballot",
            json={"proposal_ids": [proposals[0].id]},
            headers=headers,
        )
        assert cast.status_code == 200
    quiet.state.engine.dispose()
    assert world.deliver().sent == 0


def test_a_process_may_require_a_verified_email(world: MailWorld, session: Session) -> None:
    user = register(world.client)
    headers = sign_in(world.client, "anna@example.org", ANNA["password"])
    voter = session.get(User, user["id"])
    assert voter is not None
    process, proposals = make_voting_process(
        session, voter, eligibility={"require_verified_email": True}
    )
    url = f"{API}/processes/{process.id}/ballot"
    refused = world.client.put(url, json={"proposal_ids": [proposals[0].id]}, headers=headers)
    body = assert_problem(refused, 403, "not_eligible")
    assert body["reasons"] == ["verified_email"]
    world.deliver()
    token = token_in(world.inbox.to("anna@example.org")[0], "verify-email")
    world.client.post(f"{API}/auth/verify-email", json={"token": token})
    accepted = world.client.put(url, json={"proposal_ids": [proposals[0].id]}, headers=headers)
    assert accepted.status_code == 200, accepted.text


def test_tokens_and_links_never_reach_the_logs(
    world: MailWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = world.client
    register(client)
    client.post(f"{API}/auth/password-reset/request", json={"email": "anna@example.org"})
    world.deliver()
    verify = token_in(world.inbox.to("anna@example.org")[0], "verify-email")
    reset = token_in(world.inbox.to("anna@example.org")[1], "reset-password")
    client.post(f"{API}/auth/verify-email", json={"token": verify})
    client.post(
        f"{API}/auth/password-reset", json={"token": reset, "new_password": "a new long password"}
    )
    # Every record but those of the test's own SMTP server (aiosmtpd logs what it receives).
    logged = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("mail.log")
    )
    assert "mail" in logged  # the sender did log its work
    for secret in (verify, reset, FRONTEND, TEST_SECRET):
        assert secret not in logged


def test_export_lists_mail_metadata_and_erasure_deletes_the_mail(
    world: MailWorld, session: Session, settings: Any
) -> None:
    client = world.client
    user = register(client)
    stored = session.get(User, user["id"])
    assert stored is not None
    headers = auth(stored, settings.signing_key())
    world.deliver()
    client.post(f"{API}/auth/password-reset/request", json={"email": "anna@example.org"})
    exported = client.get(f"{API}/users/me/export", headers=headers)
    assert exported.status_code == 200
    mails = exported.json()["mails"]
    assert [(m["kind"], m["status"], m["to"]) for m in mails] == [
        ("verify_email", "sent", "anna@example.org"),
        ("password_reset", "pending", "anna@example.org"),
    ]
    assert set(mails[0]) == {
        "id",
        "to",
        "kind",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    }
    assert client.delete(f"{API}/users/me", headers=headers).status_code == 204
    session.commit()
    assert session.exec(select(OutgoingMail)).all() == []
    assert session.exec(select(AccountToken)).all() == []
    assert world.deliver().sent == 0
