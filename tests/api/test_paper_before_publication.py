"""No paper ballot is lost by publishing: results wait until every keyed batch is settled."""

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.result import PublishedResult
from tests.api.conftest import Actors
from tests.api.test_paper_ballots import confirm, enter, ids
from tests.api.test_results import close
from tests.factories import make_voting_process
from tests.helpers import API, assert_problem, count_rows


def test_publication_waits_for_unconfirmed_batches(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user, budget=20_000)
    p1, p2, _, _ = ids(proposals)
    body = {"source": "Bibliotheek", "ballots": [{"proposal_ids": [p1]}, {"proposal_ids": [p2]}]}
    first = enter(client, process.id, body, actors.moderator).json()
    second = enter(client, process.id, {**body, "source": "Stadhuis"}, actors.moderator).json()
    close(client, process.id, actors.admin)
    publish = f"{API}/processes/{process.id}/results"

    refused = assert_problem(
        client.post(publish, headers=actors.admin.headers), 409, "paper_batches_pending"
    )
    assert refused["batches"] == [first["id"], second["id"]]
    assert count_rows(session, PublishedResult) == 0

    assert confirm(client, first["id"], body, actors.admin).status_code == 200
    voided = client.post(
        f"{API}/paper-batches/{second['id']}/void",
        json={"reason": "counted twice at the desk"},
        headers=actors.admin.headers,
    )
    assert voided.status_code == 200, voided.text
    published = client.post(publish, headers=actors.admin.headers)
    assert published.status_code == 201, published.text
    assert published.json()["ballots_by_channel"] == {"online": 0, "paper": 2}
