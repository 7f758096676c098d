"""Several machines on one database: two separate `wijkbudget serve` processes, each with
its own workers and connection pool, on the same PostgreSQL database. Every invariant that
holds on one server must hold across both, because the database is the only thing they
share: one ballot per voter, the wrong-code limit, and publication once.

Requests are released together by a barrier, split evenly over the two servers, bounded
in number, and every wait has a deadline. SQLite is single-machine by design (one file, one
host), so these tests need TEST_DATABASE_URL.
"""

from collections.abc import Iterator
from functools import partial
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.core.config import Settings
from app.models.ballot import Ballot
from app.models.process import Phase
from app.models.user import Role
from tests.conftest import TEST_SECRET
from tests.factories import make_process, make_user, make_voting_process, token_for
from tests.helpers import all_at_once, assert_problem
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

T = TypeVar("T")


@pytest.fixture(scope="module")
def machines(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two servers on one database; yields their API base URLs."""
    if not database_url.startswith("postgresql"):
        pytest.skip("several machines share a PostgreSQL database; SQLite is one file on one host")
    logs = tmp_path_factory.mktemp("machines")
    servers = [ServerProcess(database_url, logs, name=f"wb-machine-{n}") for n in (1, 2)]
    try:
        for server in servers:  # one after the other: migrations run once, then are no-ops
            server.start()
        yield [server.base for server in servers]
    finally:
        for server in servers:
            server.stop()


def test_one_ballot_per_voter_across_machines(
    machines: list[str], http: httpx.Client, session: Session, engine: Engine
) -> None:
    author = make_user(session)
    process, proposals = make_voting_process(session, author, costs=tuple(range(100, 140)))
    voter = make_user(session)
    headers = {"Authorization": f"Bearer {token_for(voter, TEST_SECRET)}"}

    def cast(n: int) -> httpx.Response:
        base = machines[n % 2]
        body = {"proposal_ids": [proposals[n].id]}
        return http.put(f"{base}/processes/{process.id}/ballot", json=body, headers=headers)

    responses = all_at_once([partial(cast, n) for n in range(len(proposals))])
    assert [r.status_code for r in responses] == [200] * len(proposals)
    acked = {r.json()["receipt"]: r.json()["proposal_ids"] for r in responses}
    assert len(acked) == len(proposals)
    session.commit()
    (ballot,) = session.exec(select(Ballot).where(Ballot.process_id == process.id)).all()
    session.commit()
    assert [pid for pid, _ in ballot.items] == acked[ballot.receipt]
    # Every acknowledged receipt resolves on either machine, and exactly one is current.
    current = []
    for n, receipt in enumerate(acked):
        status = http.get(f"{machines[n % 2]}/processes/{process.id}/receipts/{receipt}")
        assert status.status_code == 200, status.text
        if status.json()["current"]:
            current.append(receipt)
    assert current == [ballot.receipt]


def test_the_wrong_code_limit_holds_across_machines(
    machines: list[str], http: httpx.Client, session: Session, settings: Settings
) -> None:
    process = make_process(session, phase=Phase.voting, eligibility={"require_voting_code": True})
    guesser = make_user(session)
    headers = {"Authorization": f"Bearer {token_for(guesser, TEST_SECRET)}"}
    limit = settings.code_claim_max_failures
    attempts = 4 * limit

    def guess(n: int) -> httpx.Response:
        return http.post(
            f"{machines[n % 2]}/processes/{process.id}/voting-codes/claim",
            json={"code": f"WRNG-CODE-{n:04d}-XXXX"},
            headers=headers,
        )

    responses = all_at_once([partial(guess, n) for n in range(attempts)])
    codes = [r.json()["code"] for r in responses]  # each invalid_code is a code checked
    assert set(codes) <= {"invalid_code", "too_many_attempts"}, codes
    assert codes.count("invalid_code") <= limit, (
        f"{codes.count('invalid_code')} wrong codes were tried, the limit is {limit}"
    )
    # And the account stays refused on both machines.
    for n in range(2):
        assert_problem(guess(n), 429, "too_many_attempts")


def test_results_are_published_once_across_machines(
    machines: list[str], http: httpx.Client, session: Session
) -> None:
    admin = make_user(session, role=Role.admin)
    process, proposals = make_voting_process(session, admin)
    voters = [make_user(session) for _ in range(30)]
    assert process.id is not None
    for n, voter in enumerate(voters):
        session.add(
            Ballot(
                process_id=process.id,
                voter_id=voter.id,
                items=[[proposals[n % len(proposals)].id or 0, 1]],
                total_cost=0,
                receipt=f"m{n}",
            )
        )
    process.phase = "closed"
    session.add(process)
    session.commit()
    headers = {"Authorization": f"Bearer {token_for(admin, TEST_SECRET)}"}

    def publish(base: str) -> httpx.Response:
        return http.post(f"{base}/processes/{process.id}/results", headers=headers)

    responses = all_at_once([partial(publish, base) for base in machines])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409], [r.text for r in responses]
    (winner,) = [r for r in responses if r.status_code == 201]
    (loser,) = [r for r in responses if r.status_code == 409]
    assert_problem(loser, 409, "results_already_published")
    for base in machines:
        shown = http.get(f"{base}/processes/{process.id}/results")
        assert shown.status_code == 200
        assert shown.json()["digest"] == winner.json()["digest"]
        assert shown.json()["ballot_count"] == len(voters)
