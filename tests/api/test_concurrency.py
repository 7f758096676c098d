"""Ballots under concurrent requests, against a real server on a loopback port.

On PostgreSQL this exercises the row locks and the upsert; on SQLite the same assertions
hold because writers queue on the database lock.
"""

import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import httpx
from sqlmodel import Session, select

from app.core.config import Settings
from app.models.ballot import Ballot
from app.models.process import Process
from tests.factories import make_user, make_voting_process, token_for
from tests.helpers import all_at_once, ballots_with_voters, wait_until

T = TypeVar("T")
MAX_ROUNDS = 5_000  # casts per caster in the close race; a bound, never reached


def stored_ballots(session: Session, process_id: int | None) -> list[tuple[int | None, Ballot]]:
    """(voter, ballot) for every ballot of the process; the voter is None for an unlinked one."""
    return ballots_with_voters(session, [process_id])


def test_fifty_simultaneous_casts_by_one_voter_leave_one_of_them(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    author = make_user(session)
    process, proposals = make_voting_process(session, author, costs=tuple(range(100, 150)))
    voter = make_user(session)
    headers = {"Authorization": f"Bearer {token_for(voter, settings.signing_key())}"}
    url = f"{base_url}/processes/{process.id}/ballot"
    calls = [
        partial(http.put, url, json={"proposal_ids": [p.id]}, headers=headers) for p in proposals
    ]
    responses = all_at_once(calls)
    assert [r.status_code for r in responses] == [200] * 50
    acked = {r.json()["receipt"]: r.json()["proposal_ids"] for r in responses}
    ((voter_id, ballot),) = stored_ballots(session, process.id)
    assert voter_id == voter.id
    assert ballot.receipt in acked
    assert [pid for pid, _ in ballot.items] == acked[ballot.receipt]


def test_two_hundred_voters_casting_at_once_are_all_stored(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    author = make_user(session)
    process, (p1, p2, p3, _) = make_voting_process(session, author)
    key = settings.signing_key()
    voters = [make_user(session) for _ in range(200)]
    url = f"{base_url}/processes/{process.id}/ballot"

    def cast(n: int) -> httpx.Response:
        choice = [p1.id, p3.id] if n % 2 else [p2.id]
        return http.put(
            url,
            json={"proposal_ids": choice},
            headers={"Authorization": f"Bearer {token_for(voters[n], key)}"},
        )

    responses = all_at_once([partial(cast, n) for n in range(200)])
    assert [r.status_code for r in responses] == [200] * 200
    stored = dict(stored_ballots(session, process.id))
    assert len(stored) == 200
    for n, response in enumerate(responses):
        ballot = stored[voters[n].id]
        assert ballot.receipt == response.json()["receipt"]
        assert [pid for pid, _ in ballot.items] == response.json()["proposal_ids"]


def test_an_over_budget_ballot_is_never_stored_however_requests_interleave(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    author = make_user(session)
    process, (p1, p2, p3, _p4) = make_voting_process(session, author, budget=20_000)
    voter = make_user(session)
    headers = {"Authorization": f"Bearer {token_for(voter, settings.signing_key())}"}
    url = f"{base_url}/processes/{process.id}/ballot"
    valid, too_dear = [p1.id, p2.id], [p1.id, p2.id, p3.id]
    bodies = [{"proposal_ids": too_dear if n % 2 else valid} for n in range(40)]
    responses = all_at_once([partial(http.put, url, json=b, headers=headers) for b in bodies])
    for body, response in zip(bodies, responses, strict=True):
        expected = 422 if body["proposal_ids"] == too_dear else 200
        assert response.status_code == expected
    ((voter_id, ballot),) = stored_ballots(session, process.id)
    assert voter_id == voter.id
    assert ballot.total_cost <= 20_000
    assert [pid for pid, _ in ballot.items] == valid


def test_no_cast_lands_after_the_close_is_committed(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    author = make_user(session)
    admin = make_user(session, role="admin")  # type: ignore[arg-type]
    process, proposals = make_voting_process(session, author)
    key = settings.signing_key()
    voters = [make_user(session) for _ in range(20)]
    url = f"{base_url}/processes/{process.id}/ballot"
    closed = threading.Event()
    gave_up = threading.Event()
    snapshot: dict[int | None, str | None] = {}
    last_ack: dict[int | None, str] = {}

    def keep_casting(n: int) -> list[int]:
        headers = {"Authorization": f"Bearer {token_for(voters[n], key)}"}
        statuses = []
        # Bounded, and far beyond what a caster needs before the close comes: the close is
        # sent as soon as every caster has one acknowledged cast.
        for round_ in range(MAX_ROUNDS):
            if gave_up.is_set():
                break
            choice = [proposals[(n + round_) % len(proposals)].id]
            response = http.put(url, json={"proposal_ids": choice}, headers=headers)
            statuses.append(response.status_code)
            if response.status_code == 200:
                last_ack[voters[n].id] = response.json()["receipt"]
            else:
                assert response.status_code == 409
                assert response.json()["code"] == "voting_closed"
                break
        return statuses

    def close_soon() -> list[int]:
        # Ordered by state, not by a sleep: close while every caster is mid-stream.
        try:
            wait_until(
                lambda: len(last_ack) == len(voters),
                timeout=60,
                what="every caster has an acknowledged cast",
            )
        except AssertionError:
            gave_up.set()
            raise
        admin_headers = {"Authorization": f"Bearer {token_for(admin, key)}"}
        response = http.post(
            f"{base_url}/processes/{process.id}/transition",
            json={"to": "closed"},
            headers=admin_headers,
        )
        assert response.status_code == 200, response.text
        # Right after the close is committed: what is stored now must be final.
        snapshot.update({v: b.receipt for v, b in stored_ballots(session, process.id)})
        closed.set()
        return [response.status_code]

    calls: list[Callable[[], list[int]]] = [partial(keep_casting, n) for n in range(20)]
    results = all_at_once([*calls, close_soon])
    assert closed.is_set()
    assert all(statuses[-1] == 409 for statuses in results[:-1]), (
        "every caster ended on voting_closed"
    )
    final = {v: b.receipt for v, b in stored_ballots(session, process.id)}
    assert final == snapshot
    # Every acknowledged cast is the one stored: nothing acknowledged was lost.
    assert final == last_ack
    session.commit()
    assert session.exec(select(Process.phase).where(Process.id == process.id)).one() == "closed"
