"""Processes through the API: spec validation, visibility, edits, locks and phases."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models.audit import AuditEntry
from app.models.process import Phase, Process
from app.models.proposal import ProposalStatus
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API, assert_problem, count_rows

SPEC: dict[str, Any] = {
    "title": "Oosterpark 2019",
    "description": "Residents of Oosterpark divide EUR 25,000.",
    "area": "Oosterpark",
    "budget": 25000,
    "ballot": {"type": "knapsack", "min_projects": 1, "max_projects": None,
               "min_budget_share": 0.0, "points": None, "max_points_per_project": None},
    "eligibility": {
        "postcode_prefixes": ["9713"],
        "min_age": 16,
        "require_voting_code": False,
        "require_verified_email": False,
        "require_voting_code_on_paper": False,
    },
    "tally_rule": "greedy",
    "voting_opens_at": None,
    "voting_closes_at": None,
}  # fmt: skip


def process_count(session: Session) -> int:
    return count_rows(session, Process)


def test_admin_creates_a_draft(client: TestClient, actors: Actors, session: Session) -> None:
    response = client.post(f"{API}/processes", json=SPEC, headers=actors.admin.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["phase"] == "draft"
    assert body["proposal_count"] == 0
    assert body["ballot_count"] == 0
    for key in ("title", "budget", "eligibility", "tally_rule"):
        assert body[key] == SPEC[key]
    # A process shows the settings of its own ballot type; other types' (sent as null) are
    # not part of it, so the document's union of settings stays exact.
    assert body["ballot"] == {
        "type": "knapsack",
        "min_projects": 1,
        "max_projects": None,
        "min_budget_share": 0.0,
    }
    entry = session.exec(select(AuditEntry)).one()
    assert entry.action == "process.created"
    assert entry.actor_id == actors.admin.id
    assert entry.after is not None
    assert entry.after["budget"] == 25000


def test_timestamps_and_prefixes_are_normalised(client: TestClient, actors: Actors) -> None:
    spec = dict(
        SPEC,
        eligibility={"postcode_prefixes": ["9713 a", "9713a", "9714"]},
        voting_opens_at="2019-10-01T11:00:00+02:00",
        voting_closes_at="2019-10-20T22:00:00",
    )
    body = client.post(f"{API}/processes", json=spec, headers=actors.admin.headers).json()
    assert body["eligibility"]["postcode_prefixes"] == ["9713A", "9714"]
    assert body["voting_opens_at"] == "2019-10-01T09:00:00Z"
    assert body["voting_closes_at"] == "2019-10-20T22:00:00Z"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"budget": 0}, "budget"),
        ({"budget": -5}, "budget"),
        ({"budget": 2**31}, "budget"),
        ({"budget": 2.5}, "budget"),
        ({"budget": "lots"}, "budget"),
        ({"title": ""}, "title"),
        ({"title": "x\x00y"}, "title"),
        ({"ballot": {"type": "ranked"}}, "ballot"),  # the union's tag: loc ends at ballot
        ({"ballot": {"type": "approval"}}, "ballot"),
        ({"ballot": {"type": "cumulative"}}, "ballot"),
        ({"ballot": {"type": "knapsack", "min_projects": 3, "max_projects": 2}}, "ballot"),
        ({"ballot": {"type": "knapsack", "min_budget_share": 1.5}}, "min_budget_share"),
        ({"ballot": {"type": "knapsack", "points": 10}}, "ballot"),
        ({"ballot": {"type": "approval", "max_projects": 3, "min_budget_share": 0.5}}, "ballot"),
        ({"ballot": {"type": "knapsack", "colour": "red"}}, "colour"),
        ({"eligibility": {"postcode_prefixes": ["97#3"]}}, "postcode_prefixes"),
        ({"eligibility": {"min_age": -1}}, "min_age"),
        ({"tally_rule": "borda"}, "tally_rule"),
        (
            {"voting_opens_at": "2019-10-02T00:00:00Z", "voting_closes_at": "2019-10-01T00:00:00Z"},
            "body",
        ),
        ({"voting_opens_at": "yesterday"}, "voting_opens_at"),
        ({"secret": True}, "secret"),
    ],
)
def test_invalid_specs_are_422_and_store_nothing(
    client: TestClient, actors: Actors, session: Session, change: dict[str, Any], where: str
) -> None:
    response = client.post(
        f"{API}/processes", json=dict(SPEC, **change), headers=actors.admin.headers
    )
    body = assert_problem(response, 422, "validation_error")
    assert any(where in error["loc"] for error in body["errors"]), body
    assert process_count(session) == 0


def test_valid_ballot_types(client: TestClient, actors: Actors) -> None:
    for ballot in (
        {"type": "approval", "max_projects": 3},
        {"type": "cumulative", "points": 10, "max_points_per_project": 5},
        {"type": "knapsack", "min_projects": 2, "max_projects": 5, "min_budget_share": 0.5},
    ):
        response = client.post(
            f"{API}/processes", json=dict(SPEC, ballot=ballot), headers=actors.admin.headers
        )
        assert response.status_code == 201, response.text
        assert {k: v for k, v in response.json()["ballot"].items() if k in ballot} == ballot


def test_drafts_are_visible_to_admins_only(
    client: TestClient, actors: Actors, session: Session
) -> None:
    draft = make_process(session, phase=Phase.draft, title="Draft")
    public = make_process(session, phase=Phase.submission, title="Open")
    for headers in ({}, actors.resident.headers, actors.moderator.headers):
        assert_problem(client.get(f"{API}/processes/{draft.id}", headers=headers), 404, "not_found")
        listed = client.get(f"{API}/processes", headers=headers).json()
        assert [p["id"] for p in listed["items"]] == [public.id]
        assert listed["total"] == 1
    assert (
        client.get(f"{API}/processes/{draft.id}", headers=actors.admin.headers).status_code == 200
    )
    assert client.get(f"{API}/processes", headers=actors.admin.headers).json()["total"] == 2


def test_list_filters_and_pages(client: TestClient, session: Session) -> None:
    for n in range(5):
        make_process(session, phase=Phase.voting if n % 2 else Phase.submission, title=f"P{n}")
    page = client.get(f"{API}/processes", params={"limit": 2, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [p["title"] for p in page["items"]] == ["P3", "P2"]
    voting = client.get(f"{API}/processes", params={"phase": "voting"}).json()
    assert {p["title"] for p in voting["items"]} == {"P1", "P3"}
    for params in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"phase": "later"}):
        assert_problem(client.get(f"{API}/processes", params=params), 422, "validation_error")


def test_the_phase_machine(client: TestClient, actors: Actors, session: Session) -> None:
    process_id = client.post(f"{API}/processes", json=SPEC, headers=actors.admin.headers).json()[
        "id"
    ]
    url = f"{API}/processes/{process_id}/transition"

    def move(to: str) -> Any:
        return client.post(url, json={"to": to}, headers=actors.admin.headers)

    assert_problem(move("review"), 409, "invalid_transition")
    assert_problem(move("draft"), 409, "invalid_transition")
    assert move("submission").json()["phase"] == "submission"
    assert move("review").json()["phase"] == "review"
    assert_problem(move("submission"), 409, "invalid_transition")
    # Voting needs an accepted proposal.
    assert_problem(move("voting"), 409, "invalid_transition")
    process = session.get(Process, process_id)
    assert process is not None
    make_proposal(session, process, actors.author.user, status=ProposalStatus.accepted, cost=4800)
    voting = move("voting").json()
    assert voting["phase"] == "voting"
    assert voting["voting_started_at"] is not None
    assert move("closed").json()["phase"] == "closed"
    assert_problem(move("closed"), 409, "invalid_transition")
    assert_problem(move("nowhere"), 422, "validation_error")
    actions = session.exec(
        select(AuditEntry.action, AuditEntry.after).order_by(col(AuditEntry.id))
    ).all()
    assert [a for a, _ in actions].count("process.transitioned") == 4
    assert actions[-1][1] == {"phase": "closed"}


def test_transition_errors_follow_the_precedence(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session, phase=Phase.submission)
    url = f"{API}/processes/{process.id}/transition"
    assert_problem(client.post(url, json={"to": "review"}), 401, "not_authenticated")
    assert_problem(
        client.post(url, json={"to": 5}, headers=actors.resident.headers), 422, "validation_error"
    )
    assert_problem(
        client.post(
            f"{API}/processes/999/transition",
            json={"to": "review"},
            headers=actors.resident.headers,
        ),
        404,
        "not_found",
    )
    assert_problem(
        client.post(url, json={"to": "draft"}, headers=actors.moderator.headers), 403, "forbidden"
    )
    session.refresh(process)
    assert process.phase == "submission"


def test_patch_merges_nested_objects(client: TestClient, actors: Actors, session: Session) -> None:
    process = make_process(
        session, phase=Phase.draft, ballot={"type": "approval", "max_projects": 3}
    )
    url = f"{API}/processes/{process.id}"
    response = client.patch(
        url, json={"ballot": {"max_projects": 5}, "title": "Renamed"}, headers=actors.admin.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ballot"]["type"] == "approval"
    assert body["ballot"]["max_projects"] == 5
    assert body["title"] == "Renamed"
    # The merged spec is validated as a whole.
    bad = client.patch(url, json={"ballot": {"type": "cumulative"}}, headers=actors.admin.headers)
    assert_problem(bad, 422, "validation_error")
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "process.updated")).one()
    assert entry.before == {
        "title": "Oosterpark 2019",
        "ballot": {**body["ballot"], "max_projects": 3},
    }


def test_budget_cannot_drop_below_an_accepted_cost(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session, phase=Phase.review)
    make_proposal(session, process, actors.author.user, status=ProposalStatus.accepted, cost=9000)
    url = f"{API}/processes/{process.id}"
    assert_problem(
        client.patch(url, json={"budget": 8999}, headers=actors.admin.headers),
        422,
        "validation_error",
    )
    assert (
        client.patch(url, json={"budget": 9000}, headers=actors.admin.headers).json()["budget"]
        == 9000
    )


@pytest.mark.parametrize(
    "change",
    [
        {"budget": 30000},
        {"ballot": {"max_projects": 3}},
        {"eligibility": {"min_age": 18}},
        {"tally_rule": "mes"},
        {"voting_closes_at": "2030-01-01T00:00:00Z"},
    ],
)
def test_rules_are_frozen_once_voting_started(
    client: TestClient, actors: Actors, session: Session, change: dict[str, Any]
) -> None:
    process = make_process(session, phase=Phase.voting)
    url = f"{API}/processes/{process.id}"
    assert_problem(
        client.patch(url, json=change, headers=actors.admin.headers), 409, "process_locked"
    )
    session.refresh(process)
    assert process.budget == 25_000
    assert process.tally_rule == "greedy"
    assert process.min_age is None


def test_unfrozen_fields_and_unchanged_values_pass_in_voting(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session, phase=Phase.voting)
    url = f"{API}/processes/{process.id}"
    response = client.patch(
        url, json={"title": "New title", "budget": 25000}, headers=actors.admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "New title"
