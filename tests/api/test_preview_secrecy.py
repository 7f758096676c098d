"""The tally preview never reveals a single ballot: closed only, before publication, audited."""

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.api.conftest import Actors
from tests.factories import make_voting_process
from tests.helpers import API, assert_problem


def test_no_preview_during_voting_so_two_previews_cannot_reveal_a_ballot(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, (first, *_) = make_voting_process(session, actors.author.user)
    tally = f"{API}/processes/{process.id}/tally"
    for staff in (actors.moderator, actors.admin):
        assert_problem(client.get(tally, headers=staff.headers), 409, "invalid_phase")
    cast = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [first.id]},
        headers=actors.resident.headers,
    )
    assert cast.status_code == 200, cast.text
    assert_problem(client.get(tally, headers=actors.moderator.headers), 409, "invalid_phase")
    # The live number of ballots stays public; only who chose what is kept back.
    assert client.get(f"{API}/processes/{process.id}").json()["ballot_count"] == 1


def test_a_preview_after_closing_is_audited_and_ends_with_publication(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, (first, *_) = make_voting_process(session, actors.author.user)
    base = f"{API}/processes/{process.id}"
    client.put(f"{base}/ballot", json={"proposal_ids": [first.id]}, headers=actors.resident.headers)
    closed = client.post(f"{base}/transition", json={"to": "closed"}, headers=actors.admin.headers)
    assert closed.status_code == 200, closed.text
    for staff in (actors.moderator, actors.admin):
        preview = client.get(f"{base}/tally", headers=staff.headers)
        assert preview.status_code == 200, preview.text
        assert preview.json()["ballot_count"] == 1
        assert preview.json()["published"] is False
    assert_problem(client.get(f"{base}/tally", headers=actors.resident.headers), 403, "forbidden")

    def previews() -> list[int | None]:
        entries = client.get(
            f"{API}/audit", params={"process_id": process.id}, headers=actors.admin.headers
        ).json()["items"]
        return [e["actor_id"] for e in entries if e["action"] == "results.previewed"]

    assert sorted(previews(), key=str) == sorted([actors.moderator.id, actors.admin.id], key=str)
    assert client.post(f"{base}/results", headers=actors.admin.headers).status_code == 201
    assert_problem(
        client.get(f"{base}/tally", headers=actors.moderator.headers),
        409,
        "results_already_published",
    )
    assert len(previews()) == 2  # a refused preview reads nothing and logs nothing
