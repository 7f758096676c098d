"""Voting codes: generation, hashing, claims in the contract's order, and the throttle."""

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.models.ballot import VotingCode
from app.models.process import Phase
from app.models.throttle import ThrottleEvent
from app.services import voting_codes
from tests.api.conftest import Actors
from tests.factories import make_voting_process
from tests.helpers import API, assert_problem, count_rows


def generate(
    client: TestClient, process_id: int | None, count: int, headers: dict[str, str]
) -> list[str]:
    response = client.post(
        f"{API}/processes/{process_id}/voting-codes", json={"count": count}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    return [row["code"] for row in rows]


def claim(client: TestClient, process_id: int | None, code: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"{API}/processes/{process_id}/voting-codes/claim", json={"code": code}, headers=headers
    )


def test_codes_are_long_unambiguous_and_stored_only_as_hashes(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process, _ = make_voting_process(session, actors.author.user)
    codes = generate(client, process.id, 50, actors.admin.headers)
    assert len(set(codes)) == 50
    for code in codes:
        raw = code.replace("-", "")
        assert len(raw) >= 12
        assert set(raw) <= set(voting_codes.ALPHABET)
        assert not set(raw) & set("0O1IL")
    session.commit()
    stored = {row.code_hash for row in session.exec(select(VotingCode))}
    key = voting_codes.code_key(settings.signing_key())
    assert stored == {voting_codes.code_hash(key, process.id or 0, code) for code in codes}
    assert not any(code.replace("-", "") in h.upper() for code in codes for h in stored)


def test_only_admins_generate_and_not_for_closed_processes(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, _ = make_voting_process(session, actors.author.user)
    url = f"{API}/processes/{process.id}/voting-codes"
    assert_problem(
        client.post(url, json={"count": 1}, headers=actors.moderator.headers), 403, "forbidden"
    )
    assert_problem(
        client.post(url, json={"count": 0}, headers=actors.admin.headers), 422, "validation_error"
    )
    assert_problem(
        client.post(url, json={"count": 100_001}, headers=actors.admin.headers),
        422,
        "validation_error",
    )
    closed, _ = make_voting_process(session, actors.author.user, phase=Phase.closed)
    assert_problem(
        client.post(
            f"{API}/processes/{closed.id}/voting-codes",
            json={"count": 1},
            headers=actors.admin.headers,
        ),
        409,
        "invalid_phase",
    )
    assert count_rows(session, VotingCode) == 0


def test_claim_binds_one_code_and_unlocks_voting(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, (p1, *_) = make_voting_process(
        session, actors.author.user, eligibility={"require_voting_code": True}
    )
    first, second = generate(client, process.id, 2, actors.admin.headers)
    ballot = {"proposal_ids": [p1.id]}
    url = f"{API}/processes/{process.id}/ballot"
    assert_problem(
        client.put(url, json=ballot, headers=actors.resident.headers), 403, "not_eligible"
    )
    sloppy = " " + first.lower().replace("-", " ") + " "
    assert claim(client, process.id, sloppy, actors.resident.headers).json() == {
        "process_id": process.id,
        "claimed": True,
    }
    assert (
        claim(client, process.id, first, actors.resident.headers).status_code == 200
    )  # same code again
    assert client.put(url, json=ballot, headers=actors.resident.headers).status_code == 200
    assert_problem(
        claim(client, process.id, second, actors.resident.headers), 409, "code_already_claimed"
    )
    assert_problem(claim(client, process.id, first, actors.author.headers), 409, "code_used")
    assert_problem(
        claim(client, process.id, "ZZZZ-ZZZZ-ZZZZ-ZZZZ", actors.author.headers), 422, "invalid_code"
    )
    assert claim(client, process.id, second, actors.author.headers).status_code == 200


def test_wrong_codes_are_throttled_and_the_count_survives_the_error(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process, _ = make_voting_process(session, actors.author.user)
    (good,) = generate(client, process.id, 1, actors.admin.headers)
    for n in range(settings.code_claim_max_failures):
        assert_problem(
            claim(client, process.id, f"WRONG-CODE-{n:04d}", actors.resident.headers),
            422,
            "invalid_code",
        )
    session.commit()  # a fresh snapshot
    wrong = session.exec(
        select(ThrottleEvent).where(col(ThrottleEvent.bucket).startswith("claim-account:"))
    ).all()
    assert len(wrong) == settings.code_claim_max_failures
    blocked = claim(client, process.id, good, actors.resident.headers)
    assert_problem(blocked, 429, "too_many_attempts")
    assert 0 < int(blocked.headers["retry-after"]) <= settings.code_claim_window_minutes * 60
    # The throttle is per account: someone else can still claim the good code.
    assert claim(client, process.id, good, actors.author.headers).status_code == 200


def test_claim_order_and_phases(client: TestClient, actors: Actors, session: Session) -> None:
    process, _ = make_voting_process(session, actors.author.user, phase=Phase.review)
    (code,) = generate(client, process.id, 1, actors.admin.headers)
    # Codes can be claimed before voting opens (letters arrive early) ...
    assert claim(client, process.id, code, actors.resident.headers).status_code == 200
    # ... but not after voting closed.
    closed, _ = make_voting_process(session, actors.author.user, phase=Phase.closed)
    assert_problem(claim(client, closed.id, code, actors.resident.headers), 409, "voting_closed")
    assert_problem(claim(client, 4242, code, actors.resident.headers), 404, "not_found")
    assert_problem(claim(client, process.id, code, {}), 401, "not_authenticated")
    assert_problem(
        claim(client, process.id, "x" * 65, actors.resident.headers), 422, "validation_error"
    )
