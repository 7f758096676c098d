"""Paper confirmations racing online claims and each other, against a live server.

On PostgreSQL this exercises the FOR UPDATE locks on voting-code rows and on the batch; on
SQLite the same assertions hold because writers queue on the database lock.
"""

import csv
import io
from functools import partial

import httpx
from sqlmodel import Session, select

from app.core.config import Settings
from app.models.ballot import Ballot, VotingCode
from app.models.user import Role
from tests.factories import auth, make_user, make_voting_process
from tests.helpers import all_at_once

ROUNDS = 8


def _codes(client: httpx.Client, url: str, headers: dict[str, str], count: int) -> list[str]:
    made = client.post(f"{url}/voting-codes", json={"count": count}, headers=headers)
    assert made.status_code == 201, made.text
    return [row["code"] for row in csv.DictReader(io.StringIO(made.text))]


def _paper_rows(session: Session, process_id: int | None) -> list[Ballot]:
    session.commit()
    rows = list(
        session.exec(
            select(Ballot).where(Ballot.process_id == process_id, Ballot.channel == "paper")
        )
    )
    session.commit()
    return rows


def test_a_paper_confirmation_and_an_online_claim_of_one_code_leave_exactly_one_holder(
    base_url: str,
    http: httpx.Client,
    session: Session,
    settings: Settings,
) -> None:
    key = settings.signing_key()
    author = make_user(session)
    admin, moderator = make_user(session, role=Role.admin), make_user(session, role=Role.moderator)
    process, proposals = make_voting_process(session, author)
    url = f"{base_url}/processes/{process.id}"
    codes = _codes(http, url, auth(admin, key), ROUNDS)
    voters = [make_user(session) for _ in range(ROUNDS)]
    outcomes = []
    for code, voter in zip(codes, voters, strict=True):
        body = {
            "source": "Box",
            "ballots": [{"proposal_ids": [proposals[0].id], "voting_code": code}],
        }
        batch = http.post(f"{url}/paper-batches", json=body, headers=auth(moderator, key))
        assert batch.status_code == 201, batch.text
        confirm = partial(
            http.post,
            f"{base_url}/paper-batches/{batch.json()['id']}/confirm",
            json=body,
            headers=auth(admin, key),
        )
        claim = partial(
            http.post, f"{url}/voting-codes/claim", json={"code": code}, headers=auth(voter, key)
        )
        confirmed, claimed = all_at_once([confirm, claim])
        assert confirmed.status_code == 200, confirmed.text
        verdict = confirmed.json()["ballots"][0]["status"]
        if claimed.status_code == 200:
            assert verdict == "duplicate"
        else:
            assert claimed.status_code == 409
            assert claimed.json()["code"] == "code_used"
            assert verdict == "valid"
        outcomes.append(verdict)
    session.commit()
    rows = session.exec(select(VotingCode).where(VotingCode.process_id == process.id)).all()
    for row in rows:  # each code held once: by an account or by a paper ballot, never both
        assert row.claimed_at is not None
        assert (row.claimed_by is None) != (row.paper_batch_id is None)
    assert len(_paper_rows(session, process.id)) == outcomes.count("valid")


def test_two_batches_with_one_code_confirmed_at_once_count_it_once(
    base_url: str,
    http: httpx.Client,
    session: Session,
    settings: Settings,
) -> None:
    key = settings.signing_key()
    author = make_user(session)
    admin, moderator = make_user(session, role=Role.admin), make_user(session, role=Role.moderator)
    process, proposals = make_voting_process(session, author)
    url = f"{base_url}/processes/{process.id}"
    codes = _codes(http, url, auth(admin, key), ROUNDS)
    # Two boxes holding copies of the same forms, in opposite orders.
    first = [{"proposal_ids": [proposals[0].id], "voting_code": c} for c in codes]
    bodies = [
        {"source": "Box A", "ballots": first},
        {"source": "Box B", "ballots": list(reversed(first))},
    ]
    ids = []
    for body in bodies:
        made = http.post(f"{url}/paper-batches", json=body, headers=auth(moderator, key))
        assert made.status_code == 201
        ids.append(made.json()["id"])
    responses = all_at_once(
        [
            partial(
                http.post,
                f"{base_url}/paper-batches/{batch_id}/confirm",
                json=body,
                headers=auth(admin, key),
            )
            for batch_id, body in zip(ids, bodies, strict=True)
        ]
    )
    assert [r.status_code for r in responses] == [200, 200]
    valid = sum(r.json()["counts"]["valid"] for r in responses)
    duplicate = sum(r.json()["counts"]["duplicate"] for r in responses)
    assert (valid, duplicate) == (ROUNDS, ROUNDS)
    assert len(_paper_rows(session, process.id)) == ROUNDS


def test_two_confirmations_of_one_batch_at_once_count_it_once(
    base_url: str,
    http: httpx.Client,
    session: Session,
    settings: Settings,
) -> None:
    key = settings.signing_key()
    author = make_user(session)
    moderator = make_user(session, role=Role.moderator)
    confirmers = [make_user(session, role=Role.admin) for _ in range(4)]
    process, proposals = make_voting_process(session, author)
    url = f"{base_url}/processes/{process.id}"
    body = {"source": "Box", "ballots": [{"proposal_ids": [p.id]} for p in proposals]}
    made = http.post(f"{url}/paper-batches", json=body, headers=auth(moderator, key))
    assert made.status_code == 201
    responses = all_at_once(
        [
            partial(
                http.post,
                f"{base_url}/paper-batches/{made.json()['id']}/confirm",
                json=body,
                headers=auth(who, key),
            )
            for who in confirmers
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    assert all(r.json()["code"] == "invalid_status" for r in responses if r.status_code == 409)
    assert len(_paper_rows(session, process.id)) == len(proposals)
