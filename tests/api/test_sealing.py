"""Sealing a published process, and the refusal to vote unverified in production."""

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import Settings, get_settings
from app.main import create_app
from app.models.audit import AuditEntry
from app.models.ballot import Ballot, BallotVoter, Receipt
from app.models.mail import MailKind, OutgoingMail
from app.models.process import Phase
from app.models.user import User
from tests.api.conftest import Actors
from tests.api.test_results import cast_all, close, voters
from tests.conftest import make_settings
from tests.factories import auth, make_voting_process
from tests.helpers import API, assert_problem


def _published(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> tuple[int, list[str], list[int]]:
    process, (p1, p2, p3, _p4) = make_voting_process(session, actors.author.user, budget=20_000)
    assert process.id is not None
    crowd = voters(session, settings, 4)
    receipts = cast_all(
        client, process.id, crowd, [[p1.id, p2.id], [p1.id], [p2.id, p3.id], [p3.id]]
    )
    # The first voter changes their mind: their first receipt is no longer current.
    receipts.append(cast_all(client, process.id, crowd[:1], [[p3.id]])[0])
    close(client, process.id, actors.admin)
    published = client.post(f"{API}/processes/{process.id}/results", headers=actors.admin.headers)
    assert published.status_code == 201, published.text
    return process.id, receipts, [v.id for v in crowd]


def test_sealing_unlinks_voters_and_changes_no_published_fact(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process_id, receipts, voter_ids = _published(client, actors, session, settings)
    base = f"{API}/processes/{process_id}"
    before = {s: client.get(f"{base}/{s}").text for s in ("results", "results.csv", "results.pb")}
    answers = [client.get(f"{base}/receipts/{r}").json() for r in receipts]
    assert answers[0] == {"current": False, "counted": False}
    own = client.get(f"{base}/ballot", headers=_headers(settings, session, voter_ids[1]))
    assert own.status_code == 200

    # The test's own open transaction would be older than the seal: its scrub would wait.
    session.rollback()
    sealed = client.post(f"{base}/seal", headers=actors.admin.headers)
    assert sealed.status_code == 200, sealed.text
    assert sealed.json()["sealed_at"] is not None

    session.rollback()  # a fresh snapshot: the seal committed in another transaction
    rows = session.exec(select(Ballot).where(Ballot.process_id == process_id)).all()
    assert len(rows) == 4
    assert all(row.voter_id is None for row in rows)
    assert session.exec(select(BallotVoter).where(BallotVoter.process_id == process_id)).all() == []
    assert len({row.cast_at for row in rows}) == 1  # no casting order or moments left
    issued = session.exec(select(Receipt.issued_at).where(Receipt.process_id == process_id)).all()
    assert len(set(issued)) == 1
    after = {s: client.get(f"{base}/{s}").text for s in ("results", "results.csv", "results.pb")}
    assert after == before
    assert [client.get(f"{base}/receipts/{r}").json() for r in receipts] == answers
    assert_problem(
        client.get(f"{base}/ballot", headers=_headers(settings, session, voter_ids[1])),
        410,
        "ballot_sealed",
    )
    audit = session.exec(select(AuditEntry).where(AuditEntry.action == "process.sealed")).one()
    assert audit.actor_id == actors.admin.id
    assert_problem(client.post(f"{base}/seal", headers=actors.admin.headers), 409, "already_sealed")


def _headers(settings: Settings, session: Session, user_id: int) -> dict[str, str]:
    user = session.get(User, user_id)
    assert user is not None
    return auth(user, settings.signing_key())


def test_only_an_admin_seals_and_only_after_publication(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, _ = make_voting_process(session, actors.author.user)
    url = f"{API}/processes/{process.id}/seal"
    assert_problem(client.post(url), 401, "not_authenticated")
    assert_problem(client.post(url, headers=actors.moderator.headers), 403, "forbidden")
    assert_problem(client.post(url, headers=actors.admin.headers), 409, "invalid_phase")
    close(client, process.id, actors.admin)
    assert_problem(client.post(url, headers=actors.admin.headers), 409, "invalid_phase")
    assert_problem(
        client.post(f"{API}/processes/999/seal", headers=actors.admin.headers), 404, "not_found"
    )


def test_seal_due_seals_only_what_is_due(
    client: TestClient,
    actors: Actors,
    session: Session,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    due_id, _, _ = _published(client, actors, session, settings)
    later_id, _, _ = _published(client, actors, session, settings)
    for pid, days in ((due_id, 0), (later_id, 30)):
        response = client.patch(
            f"{API}/processes/{pid}", json={"seal_after_days": days}, headers=actors.admin.headers
        )
        assert response.status_code == 200, response.text
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SECRET_KEY", settings.signing_key())
    monkeypatch.setenv("ENVIRONMENT", "test")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["seal", "--due"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"sealed: {due_id}" in result.output
    sealed = {
        pid: client.get(f"{API}/processes/{pid}").json()["sealed_at"] for pid in (due_id, later_id)
    }
    assert sealed[due_id] is not None
    assert sealed[later_id] is None


def test_production_refuses_voting_without_verified_voters(
    actors: Actors, session: Session, settings: Settings
) -> None:
    production = create_app(
        make_settings(
            settings.database_url, environment="production", smtp_url="smtp://127.0.0.1:9"
        )
    )
    with TestClient(production) as client:
        process, _ = make_voting_process(session, actors.author.user, phase=Phase.review)
        url = f"{API}/processes/{process.id}"
        to_voting = {"to": "voting"}
        body = assert_problem(
            client.post(f"{url}/transition", json=to_voting, headers=actors.admin.headers),
            409,
            "unverified_voters",
        )
        assert "require_voting_code" in body["detail"]
        assert client.get(url).json()["phase"] == "review"
        for change in (
            {"allow_unverified_voters": True},
            {"eligibility": {"require_voting_code": True}},
        ):
            process2, _ = make_voting_process(session, actors.author.user, phase=Phase.review)
            url2 = f"{API}/processes/{process2.id}"
            patched = client.patch(url2, json=change, headers=actors.admin.headers)
            assert patched.status_code == 200, patched.text
            moved = client.post(f"{url2}/transition", json=to_voting, headers=actors.admin.headers)
            assert moved.status_code == 200, moved.text


def test_outside_production_unverified_voting_is_allowed(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, _ = make_voting_process(session, actors.author.user, phase=Phase.review)
    moved = client.post(
        f"{API}/processes/{process.id}/transition",
        json={"to": "voting"},
        headers=actors.admin.headers,
    )
    assert moved.status_code == 200, moved.text


def test_sealing_forgets_vote_confirmations_and_the_order_of_receipts(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process_id, receipts, voter_ids = _published(client, actors, session, settings)
    other_id, _, _ = _published(client, actors, session, settings)
    for pid, user_id in ((process_id, voter_ids[0]), (other_id, voter_ids[0])):
        session.add(
            OutgoingMail(
                to_address="voter@example.org",
                user_id=user_id,
                kind=MailKind.ballot_receipt,
                params={"process_id": pid, "receipt": "r"},
            )
        )
    session.commit()

    sealed = client.post(f"{API}/processes/{process_id}/seal", headers=actors.admin.headers)
    assert sealed.status_code == 200, sealed.text

    session.rollback()
    left = session.exec(select(OutgoingMail.params)).all()
    assert [params["process_id"] for params in left] == [other_id]
    stored = session.exec(
        select(Receipt.receipt).where(Receipt.process_id == process_id).order_by(col(Receipt.id))
    ).all()
    assert sorted(stored) == sorted(receipts)
    assert list(stored) == sorted(stored)  # row order now says nothing about casting order
