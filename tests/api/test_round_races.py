"""The per-group limit under concurrent requests, against a real server on a loopback port.

One voter casting in several districts at once must end with exactly `k` ballots in the
group, every other request refused with `group_limit_reached` naming them. On PostgreSQL
this exercises the (group, voter) advisory lock taken after the process row's KEY SHARE
lock; on SQLite writers queue on the database lock, and the same assertions hold.
"""

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.models.ballot import Ballot
from app.models.process import Process
from tests.factories import make_round, make_user, make_voting_process, token_for
from tests.helpers import all_at_once, ballots_with_voters, wait_until

DISTRICTS = 5
CASTS = 50


def stored(session: Session, process_ids: list[int]) -> dict[int, Ballot]:
    session.commit()
    found = {
        b.process_id: b
        for b in session.exec(select(Ballot).where(col(Ballot.process_id).in_(process_ids)))
    }
    session.commit()
    return found


@pytest.mark.parametrize("k", [1, 2])
def test_fifty_parallel_casts_over_five_districts_leave_exactly_k_ballots(
    base_url: str, http: httpx.Client, session: Session, settings: Settings, k: int
) -> None:
    author = make_user(session)
    new, (group,) = make_round(session, limits=(k,))
    districts = [
        make_voting_process(session, author, round_id=new.id, group_id=group.id)
        for _ in range(DISTRICTS)
    ]
    ids = [p.id for p, _ in districts if p.id is not None]
    voter = make_user(session)
    headers = {"Authorization": f"Bearer {token_for(voter, settings.signing_key())}"}

    def cast(n: int) -> tuple[int, httpx.Response]:
        process, proposals = districts[n % DISTRICTS]
        assert process.id is not None
        body = {"proposal_ids": [proposals[n // DISTRICTS % len(proposals)].id]}
        url = f"{base_url}/processes/{process.id}/ballot"
        return process.id, http.put(url, json=body, headers=headers)

    answers = all_at_once([partial(cast, n) for n in range(CASTS)])
    ballots = stored(session, ids)
    assert len(ballots) == k
    held = sorted(ballots)
    acked: dict[int, set[str]] = {}
    for process_id, response in answers:
        if response.status_code == 200:
            assert process_id in held
            acked.setdefault(process_id, set()).add(response.json()["receipt"])
            continue
        # Every refused request is told why, naming the processes that hold its place.
        assert response.status_code == 409, response.text
        body: dict[str, Any] = response.json()
        assert body["code"] == "group_limit_reached"
        assert body["processes"] == held
        assert process_id not in held
    # Each stored ballot is one that was acknowledged; nothing acknowledged elsewhere.
    assert set(acked) == set(held)
    for process_id, ballot in ballots.items():
        assert ballot.receipt in acked[process_id]


def test_closing_the_round_while_voters_cast_across_districts(
    base_url: str, http: httpx.Client, session: Session, settings: Settings
) -> None:
    """A round close (UPDATE locks on every process, in id order) against casts (KEY SHARE,
    then the group lock): no deadlock, no error, and nothing lands after the close."""
    author = make_user(session)
    admin = make_user(session, role="admin")  # type: ignore[arg-type]
    new, (group,) = make_round(session, limits=(1,))
    districts = [
        make_voting_process(session, author, round_id=new.id, group_id=group.id) for _ in range(3)
    ]
    key = settings.signing_key()
    voters = [make_user(session) for _ in range(12)]
    acked: dict[int, int] = {}
    stop = threading.Event()

    def keep_casting(n: int) -> list[int]:
        headers = {"Authorization": f"Bearer {token_for(voters[n], key)}"}
        statuses = []
        for round_ in range(2_000):  # a bound, never reached: the close comes first
            if stop.is_set():
                break
            process, proposals = districts[(n + round_) % len(districts)]
            response = http.put(
                f"{base_url}/processes/{process.id}/ballot",
                json={"proposal_ids": [proposals[0].id]},
                headers=headers,
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                acked[n] = acked.get(n, 0) + 1
            else:
                code = response.json()["code"]
                assert code in {"group_limit_reached", "voting_closed"}, response.text
                if code == "voting_closed":
                    break
        return statuses

    def close() -> list[int]:
        try:
            wait_until(lambda: len(acked) == len(voters), timeout=60, what="every voter cast")
        except AssertionError:
            stop.set()
            raise
        response = http.post(
            f"{base_url}/rounds/{new.id}/transition",
            json={"to": "closed"},
            headers={"Authorization": f"Bearer {token_for(admin, key)}"},
        )
        assert response.status_code == 200, response.text
        return [response.status_code]

    calls: list[Callable[[], list[int]]] = [partial(keep_casting, n) for n in range(len(voters))]
    results = all_at_once([*calls, close])
    assert all(statuses[-1] == 409 for statuses in results[:-1])
    session.commit()
    phases = session.exec(select(Process.phase).where(Process.round_id == new.id)).all()
    assert set(phases) == {"closed"}
    ids = [p.id for p, _ in districts if p.id is not None]
    per_voter: dict[int | None, int] = {}
    for voter_id, _ in ballots_with_voters(session, ids):
        per_voter[voter_id] = per_voter.get(voter_id, 0) + 1
    assert per_voter == {v.id: 1 for v in voters}
