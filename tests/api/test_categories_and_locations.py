"""Process categories and proposal locations (issue 11, item 8): a process may fix its
categories, a proposal's category must then be one of them; GET categories counts proposals;
a proposal may carry a location."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.process import Phase
from app.models.proposal import Proposal, ProposalStatus
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API, assert_problem, count_rows

PROPOSAL: dict[str, Any] = {
    "title": "Benches",
    "summary": "Two benches by the pond.",
    "estimated_cost": 900,
}
SPEC: dict[str, Any] = {"title": "Oosterpark 2026", "budget": 25000, "ballot": {"type": "knapsack"}}


def categories(client: TestClient, process_id: int | None) -> list[dict[str, Any]]:
    response = client.get(f"{API}/processes/{process_id}/categories")
    assert response.status_code == 200, response.text
    return list(response.json())


def test_fixed_categories_are_kept_in_order_and_counted(
    client: TestClient, actors: Actors, session: Session
) -> None:
    created = client.post(
        f"{API}/processes",
        json={**SPEC, "categories": [" Greenery ", "Play", "Traffic"]},
        headers=actors.admin.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["categories"] == ["Greenery", "Play", "Traffic"]
    process_id = created.json()["id"]
    client.post(
        f"{API}/processes/{process_id}/transition",
        json={"to": "submission"},
        headers=actors.admin.headers,
    )
    url = f"{API}/processes/{process_id}/proposals"
    for category in ("play", "Play", "Greenery", None):
        response = client.post(
            url, json={**PROPOSAL, "category": category}, headers=actors.resident.headers
        )
        assert response.status_code == 201, response.text
    # Stored as the process spells it.
    assert response.json()["category"] is None
    names = [p["category"] for p in client.get(url).json()["items"]]
    assert sorted(n for n in names if n) == ["Greenery", "Play", "Play"]
    # A withdrawn proposal is not counted.
    first = client.get(url + "?category=Greenery").json()["items"][0]["id"]
    client.post(f"{API}/proposals/{first}/withdraw", headers=actors.resident.headers)
    assert categories(client, process_id) == [
        {"name": "Greenery", "proposal_count": 0},
        {"name": "Play", "proposal_count": 2},
        {"name": "Traffic", "proposal_count": 0},
    ]


def test_a_category_outside_the_list_is_refused(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session, categories=["Greenery", "Play"])
    url = f"{API}/processes/{process.id}/proposals"
    body = assert_problem(
        client.post(url, json={**PROPOSAL, "category": "Parking"}, headers=actors.resident.headers),
        422,
        "validation_error",
    )
    assert body["errors"][0]["loc"][-1] == "category"
    assert count_rows(session, Proposal) == 0
    proposal = make_proposal(session, process, actors.author.user, category="Play")
    edit_url = f"{API}/proposals/{proposal.id}"
    assert_problem(
        client.patch(edit_url, json={"category": "Parking"}, headers=actors.author.headers),
        422,
        "validation_error",
    )
    session.refresh(proposal)
    assert proposal.category == "Play"
    edited = client.patch(edit_url, json={"category": "greenery"}, headers=actors.author.headers)
    assert edited.json()["category"] == "Greenery"


def test_without_a_fixed_list_the_categories_in_use_are_listed(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session)
    for category in ("Play", "greenery", "Play", None):
        make_proposal(session, process, actors.author.user, category=category)
    make_proposal(
        session, process, actors.author.user, category="Gone", status=ProposalStatus.withdrawn
    )
    assert categories(client, process.id) == [
        {"name": "greenery", "proposal_count": 1},
        {"name": "Play", "proposal_count": 2},
    ]
    assert categories(client, make_process(session).id) == []


@pytest.mark.parametrize(
    "value",
    [
        ["Play", "play"],
        ["Play", ""],
        ["two\nlines"],
        ["x" * 51],
        ["a\x00b"],
        [f"c{n}" for n in range(51)],
        "Play",
    ],
)
def test_bad_category_lists_are_refused(
    client: TestClient, actors: Actors, session: Session, value: Any
) -> None:
    assert_problem(
        client.post(
            f"{API}/processes", json={**SPEC, "categories": value}, headers=actors.admin.headers
        ),
        422,
        "validation_error",
    )
    process = make_process(session, phase=Phase.draft)
    assert_problem(
        client.patch(
            f"{API}/processes/{process.id}",
            json={"categories": value},
            headers=actors.admin.headers,
        ),
        422,
        "validation_error",
    )
    session.refresh(process)
    assert process.categories is None


def test_an_admin_sets_and_clears_the_list(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session)
    url = f"{API}/processes/{process.id}"
    response = client.patch(url, json={"categories": ["Play"]}, headers=actors.admin.headers)
    assert response.json()["categories"] == ["Play"]
    response = client.patch(url, json={"categories": None}, headers=actors.admin.headers)
    assert response.json()["categories"] is None


def test_categories_of_a_draft_are_hidden(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session, phase=Phase.draft, categories=["Play"])
    url = f"{API}/processes/{process.id}/categories"
    assert_problem(client.get(url), 404, "not_found")
    assert_problem(client.get(url, headers=actors.moderator.headers), 404, "not_found")
    assert client.get(url, headers=actors.admin.headers).json() == [
        {"name": "Play", "proposal_count": 0}
    ]
    assert_problem(client.get(f"{API}/processes/0/categories"), 404, "not_found")


def test_a_location_is_submitted_edited_and_removed(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session)
    location = {"lat": 53.2194, "lon": 6.5665, "address": " Oosterpark, by the pond "}
    created = client.post(
        f"{API}/processes/{process.id}/proposals",
        json={**PROPOSAL, "location": location},
        headers=actors.author.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["location"] == {**location, "address": "Oosterpark, by the pond"}
    assert created.json()["images"] == []
    url = f"{API}/proposals/{created.json()['id']}"
    moved = client.patch(
        url, json={"location": {"lat": -1.5, "lon": 179.0}}, headers=actors.author.headers
    )
    assert moved.json()["location"] == {"lat": -1.5, "lon": 179.0, "address": ""}
    # Leaving it out keeps it; null removes it.
    kept = client.patch(url, json={"title": "Three benches"}, headers=actors.author.headers)
    assert kept.json()["location"] == {"lat": -1.5, "lon": 179.0, "address": ""}
    removed = client.patch(url, json={"location": None}, headers=actors.author.headers)
    assert removed.json()["location"] is None
    assert client.get(url).json()["location"] is None


@pytest.mark.parametrize(
    "location",
    [
        {"lat": 91, "lon": 0},
        {"lat": 0, "lon": -180.5},
        {"lat": "NaN", "lon": 0},
        {"lon": 0},
        {"lat": 0, "lon": 0, "address": "x" * 201},
        {"lat": 0, "lon": 0, "extra": 1},
    ],
)
def test_bad_locations_are_refused(
    client: TestClient, actors: Actors, session: Session, location: dict[str, Any]
) -> None:
    process = make_process(session)
    assert_problem(
        client.post(
            f"{API}/processes/{process.id}/proposals",
            json={**PROPOSAL, "location": location},
            headers=actors.author.headers,
        ),
        422,
        "validation_error",
    )
    assert count_rows(session, Proposal) == 0
