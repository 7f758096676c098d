"""A rolling upgrade: servers of the release before (0.9.0) still cast on this schema while
the new ones do. They write `ballot.voter_id` and know nothing of `ballot_voter`; a trigger
(revision 0015) links what they write, so a voter casting on both kinds of server has one
ballot, whatever the order."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from app.models.base import utcnow
from tests.api.conftest import Actors
from tests.factories import make_voting_process
from tests.helpers import API

# 0.9.0's cast, as it wrote it: one upsert on (process_id, voter_id).
_OLD_CAST = text(
    "INSERT INTO ballot (process_id, voter_id, items, total_cost, receipt, cast_at, channel) "
    "VALUES (:process_id, :voter_id, :items, :total_cost, :receipt, :cast_at, 'online') "
    "ON CONFLICT (process_id, voter_id) DO UPDATE SET items = excluded.items, "
    "total_cost = excluded.total_cost, receipt = excluded.receipt, cast_at = excluded.cast_at"
)


def _old_cast(
    engine: Engine, process_id: int, voter_id: int, proposal_id: int, cost: int, receipt: str
) -> None:
    with engine.begin() as connection:
        connection.execute(
            _OLD_CAST,
            {
                "process_id": process_id,
                "voter_id": voter_id,
                "items": f"[[{proposal_id}, 1]]",
                "total_cost": cost,
                "receipt": receipt,
                "cast_at": utcnow(),
            },
        )


def _ballots(engine: Engine, process_id: int) -> list[tuple[int, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, items FROM ballot WHERE process_id = :p ORDER BY id"),
            {"p": process_id},
        )
        return [(row[0], str(row[1])) for row in rows]


def test_a_voter_casting_on_old_and_new_servers_has_one_ballot(
    client: TestClient, engine: Engine, session: Session, actors: Actors
) -> None:
    voter = actors.resident
    process, proposals = make_voting_process(session, actors.author.user)
    assert process.id is not None
    url = f"{API}/processes/{process.id}/ballot"
    first, second, third = proposals[0], proposals[1], proposals[2]
    assert first.id is not None
    assert second.id is not None
    assert third.id is not None
    # New server first, then an old one: the old cast replaces the new one.
    assert (
        client.put(url, json={"proposal_ids": [first.id]}, headers=voter.headers).status_code == 200
    )
    _old_cast(engine, process.id, voter.id, second.id, second.cost or 0, "old-receipt-1")
    [(_, items)] = _ballots(engine, process.id)
    assert str(second.id) in items
    mine = client.get(url, headers=voter.headers)
    assert mine.status_code == 200
    assert mine.json()["proposal_ids"] == [second.id]
    # The old server again (it replaces its own row in place), then a new one.
    _old_cast(engine, process.id, voter.id, third.id, third.cost or 0, "old-receipt-2")
    assert len(_ballots(engine, process.id)) == 1
    assert (
        client.put(url, json={"proposal_ids": [first.id]}, headers=voter.headers).status_code == 200
    )
    assert len(_ballots(engine, process.id)) == 1
    assert client.get(url, headers=voter.headers).json()["proposal_ids"] == [first.id]
    # Withdrawn on a new server: nothing left for the tally.
    assert client.delete(url, headers=voter.headers).status_code == 204
    assert _ballots(engine, process.id) == []
