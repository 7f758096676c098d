"""Rounds: district budgets beside a city-wide budget, and the per-group limit on ballots."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.main import create_app
from app.models.audit import AuditEntry
from app.models.ballot import Ballot, BallotVoter
from app.models.process import Phase, Process
from app.models.proposal import Proposal
from app.models.round import Round, RoundGroup
from app.services import pabulib
from app.services.rounds import group_limit_refusal
from tests.api.conftest import Actor, Actors
from tests.conftest import make_settings
from tests.factories import make_process, make_proposal, make_round, make_voting_process
from tests.helpers import API, assert_problem, checker_errors, count_rows

ROUND = {
    "title": "Groningen 2026",
    "description": "A city-wide budget and one per district.",
    "groups": [{"name": "Districts", "max_processes_per_voter": 1}],
}


def cast(client: TestClient, voter: Actor, process: Process, proposal_ids: list[int | None]) -> Any:
    return client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": proposal_ids},
        headers=voter.headers,
    )


def ballots_of(session: Session, voter: Actor) -> dict[int, Ballot]:
    session.commit()
    found = {
        b.process_id: b
        for b in session.exec(
            select(Ballot)
            .join(BallotVoter, col(BallotVoter.ballot_id) == col(Ballot.id))
            .where(BallotVoter.voter_id == voter.id)
        )
    }
    session.commit()
    return found


@pytest.fixture
def city(session: Session, actors: Actors) -> dict[str, Any]:
    """A round with a group of three districts (limit 1) and a city-wide process, in voting."""
    new, (group,) = make_round(session, limits=(1,))
    made: dict[str, Any] = {"round": new, "group": group}
    for name, group_id in [("north", group.id), ("east", group.id), ("west", group.id)]:
        made[name] = make_voting_process(
            session, actors.author.user, title=name, round_id=new.id, group_id=group_id
        )
    made["city"] = make_voting_process(
        session, actors.author.user, title="city", budget=100_000, round_id=new.id
    )
    return made


# --- creating rounds and placing processes ---------------------------------------------


def test_admin_creates_a_round_with_group_ids(
    client: TestClient, actors: Actors, session: Session
) -> None:
    response = client.post(f"{API}/rounds", json=ROUND, headers=actors.admin.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    (group,) = body["groups"]
    assert group["name"] == "Districts"
    assert group["max_processes_per_voter"] == 1
    assert isinstance(group["id"], int)
    assert body["processes"] == []
    assert (body["total_budget"], body["ballot_count"], body["voter_count"]) == (0, 0, 0)
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "round.created")).one()
    assert entry.target_id == body["id"]
    assert client.get(f"{API}/rounds/{body['id']}").json() == body
    listed = client.get(f"{API}/rounds").json()
    assert listed["total"] == 1
    assert listed["items"] == [body]


@pytest.mark.parametrize(
    "change",
    [
        {"groups": [{"name": "Districts", "max_processes_per_voter": 0}]},
        {"groups": [{"name": "Districts", "max_processes_per_voter": 2**31}]},
        {"groups": [{"name": "Districts"}]},
        {"groups": [{"name": "", "max_processes_per_voter": 1}]},
        {"groups": [{"name": "D", "max_processes_per_voter": 1, "color": "red"}]},
        {"title": ""},
        {"title": "a\nb"},
        {"description": "x\x00y"},
        {"extra": True},
    ],
)
def test_an_invalid_round_is_refused_and_nothing_stored(
    client: TestClient, actors: Actors, session: Session, change: dict[str, Any]
) -> None:
    response = client.post(f"{API}/rounds", json=ROUND | change, headers=actors.admin.headers)
    assert_problem(response, 422, "validation_error")
    assert count_rows(session, Round) == 0
    assert count_rows(session, RoundGroup) == 0


def test_a_draft_joins_a_group_and_its_round_with_one_field(
    client: TestClient, actors: Actors, session: Session
) -> None:
    new, (group,) = make_round(session)
    process = make_process(session, phase=Phase.draft, budget=20_000)
    response = client.patch(
        f"{API}/processes/{process.id}", json={"group_id": group.id}, headers=actors.admin.headers
    )
    assert response.status_code == 200, response.text
    assert (response.json()["round_id"], response.json()["group_id"]) == (new.id, group.id)
    admin_view = client.get(f"{API}/rounds/{new.id}", headers=actors.admin.headers).json()
    assert [p["id"] for p in admin_view["processes"]] == [process.id]
    assert admin_view["processes"][0]["group_id"] == group.id
    assert admin_view["total_budget"] == 20_000
    # A draft stays hidden from everyone else, in a round too.
    public = client.get(f"{API}/rounds/{new.id}").json()
    assert public["processes"] == []
    assert public["total_budget"] == 0
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "process.updated")).one()
    assert entry.after == {"round_id": new.id, "group_id": group.id}


def test_a_process_leaves_or_changes_round_only_as_a_draft(
    client: TestClient, actors: Actors, session: Session
) -> None:
    new, (group,) = make_round(session)
    other, _ = make_round(session, title="Other")
    process = make_process(session, phase=Phase.draft, round_id=new.id, group_id=group.id)
    # Moving to another round takes the process out of its old group.
    moved = client.patch(
        f"{API}/processes/{process.id}", json={"round_id": other.id}, headers=actors.admin.headers
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["round_id"], moved.json()["group_id"]) == (other.id, None)
    started = make_process(session, phase=Phase.submission, round_id=new.id, group_id=group.id)
    for change in ({"round_id": None}, {"group_id": None}, {"round_id": other.id}):
        response = client.patch(
            f"{API}/processes/{started.id}", json=change, headers=actors.admin.headers
        )
        assert_problem(response, 409, "process_locked")
    # The current values are not a change.
    same = client.patch(
        f"{API}/processes/{started.id}",
        json={"round_id": new.id, "group_id": group.id},
        headers=actors.admin.headers,
    )
    assert same.status_code == 200, same.text
    session.expire_all()
    assert session.get(Process, started.id).group_id == group.id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"round_id": 999}, "round_id"),
        ({"group_id": 999}, "group_id"),
        ({"round_id": 2**31}, "round_id"),
        ({"round_id": 0}, "round_id"),
        ("group of the other round", "group_id"),
    ],
)
def test_a_placement_must_name_an_existing_round_and_one_of_its_groups(
    client: TestClient, actors: Actors, session: Session, change: Any, field: str
) -> None:
    new, _ = make_round(session)
    _, (foreign,) = make_round(session, title="Other")
    process = make_process(session, phase=Phase.draft)
    if change == "group of the other round":
        change = {"round_id": new.id, "group_id": foreign.id}
    response = client.patch(
        f"{API}/processes/{process.id}", json=change, headers=actors.admin.headers
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"][-1] == field
    session.expire_all()
    stored = session.get(Process, process.id)
    assert stored is not None
    assert (stored.round_id, stored.group_id) == (None, None)


def test_a_process_can_be_created_in_a_group(
    client: TestClient, actors: Actors, session: Session
) -> None:
    new, (group,) = make_round(session)
    spec = {"title": "T", "budget": 1000, "ballot": {"type": "knapsack"}, "group_id": group.id}
    response = client.post(f"{API}/processes", json=spec, headers=actors.admin.headers)
    assert response.status_code == 201, response.text
    assert (response.json()["round_id"], response.json()["group_id"]) == (new.id, group.id)
    bad = client.post(
        f"{API}/processes", json=spec | {"group_id": 999}, headers=actors.admin.headers
    )
    assert_problem(bad, 422, "validation_error")
    assert count_rows(session, Process) == 1


def test_the_round_counts_budgets_ballots_and_voters(
    client: TestClient, actors: Actors, session: Session, city: dict[str, Any]
) -> None:
    north, north_props = city["north"]
    town, town_props = city["city"]
    for voter in (actors.resident, actors.moderator):
        assert cast(client, voter, north, [north_props[-1].id]).status_code == 200
        assert cast(client, voter, town, [town_props[-1].id]).status_code == 200
    body = client.get(f"{API}/rounds/{city['round'].id}").json()
    assert body["total_budget"] == 3 * 25_000 + 100_000
    assert body["ballot_count"] == 4  # a voter in two processes counts twice, as ballots
    assert body["voter_count"] == 2
    counts = {p["id"]: p["ballot_count"] for p in body["processes"]}
    assert counts[north.id] == 2
    assert counts[town.id] == 2
    assert {p["proposal_count"] for p in body["processes"]} == {4}


def test_unknown_rounds_are_404(client: TestClient, actors: Actors) -> None:
    for rid in (999, 2**31, 0):
        for method, path in [
            ("get", ""),
            ("get", "/me"),
            ("get", "/results"),
            ("delete", ""),
        ]:
            response = client.request(
                method.upper(), f"{API}/rounds/{rid}{path}", headers=actors.admin.headers
            )
            assert_problem(response, 404, "not_found")
        response = client.post(
            f"{API}/rounds/{rid}/transition", json={"to": "review"}, headers=actors.admin.headers
        )
        assert_problem(response, 404, "not_found")


# --- the group limit -------------------------------------------------------------------


def test_pure_rule() -> None:
    assert group_limit_refusal(1, [], 1) is None
    assert group_limit_refusal(1, [1], 1) is None  # replacing one's own ballot
    assert group_limit_refusal(2, [1], 1) == [1]
    assert group_limit_refusal(3, [2, 1], 3) is None
    assert group_limit_refusal(3, [2, 1], 2) == [1, 2]


def test_one_district_of_choice_plus_the_city_wide_budget(
    client: TestClient, actors: Actors, session: Session, city: dict[str, Any]
) -> None:
    (north, n_props), (east, e_props) = city["north"], city["east"]
    town, t_props = city["city"]
    voter = actors.resident
    first = cast(client, voter, north, [n_props[0].id])
    assert first.status_code == 200, first.text
    refused = cast(client, voter, east, [e_props[0].id])
    body = assert_problem(refused, 409, "group_limit_reached")
    assert body["processes"] == [north.id]
    assert str(north.id) in body["detail"]
    # The city-wide process is outside the group: voted independently.
    assert cast(client, voter, town, [t_props[0].id]).status_code == 200
    # Replacing the ballot in one's own district is never refused.
    assert cast(client, voter, north, [n_props[1].id]).status_code == 200
    assert set(ballots_of(session, voter)) == {north.id, town.id}
    # Withdrawing while voting is open frees the place.
    gone = client.delete(f"{API}/processes/{north.id}/ballot", headers=voter.headers)
    assert gone.status_code == 204
    assert cast(client, voter, east, [e_props[0].id]).status_code == 200
    assert set(ballots_of(session, voter)) == {east.id, town.id}
    # Another voter is not limited by this one.
    assert cast(client, actors.moderator, north, [n_props[0].id]).status_code == 200


def test_a_group_of_two_allows_two_districts(
    client: TestClient, actors: Actors, session: Session
) -> None:
    new, (group,) = make_round(session, limits=(2,))
    made = [
        make_voting_process(session, actors.author.user, round_id=new.id, group_id=group.id)
        for _ in range(3)
    ]
    voter = actors.resident
    assert cast(client, voter, made[1][0], [made[1][1][0].id]).status_code == 200
    assert cast(client, voter, made[0][0], [made[0][1][0].id]).status_code == 200
    body = assert_problem(
        cast(client, voter, made[2][0], [made[2][1][0].id]), 409, "group_limit_reached"
    )
    assert body["processes"] == sorted(p.id for p, _ in made[:2] if p.id is not None)
    assert body["max_processes_per_voter"] == 2
    assert len(ballots_of(session, voter)) == 2


def test_a_ballot_in_a_closed_district_keeps_its_place(
    client: TestClient, actors: Actors, session: Session, city: dict[str, Any]
) -> None:
    (north, n_props), (east, e_props) = city["north"], city["east"]
    voter = actors.resident
    assert cast(client, voter, north, [n_props[0].id]).status_code == 200
    closed = client.post(
        f"{API}/processes/{north.id}/transition",
        json={"to": "closed"},
        headers=actors.admin.headers,
    )
    assert closed.status_code == 200
    assert_problem(cast(client, voter, east, [e_props[0].id]), 409, "group_limit_reached")
    gone = client.delete(f"{API}/processes/{north.id}/ballot", headers=voter.headers)
    assert_problem(gone, 409, "voting_closed")
    assert set(ballots_of(session, voter)) == {north.id}


def test_precedence_of_the_group_limit(
    client: TestClient, actors: Actors, session: Session, city: dict[str, Any]
) -> None:
    """Chosen order: 422 body shape, 404, voting_closed, not_eligible, group_limit_reached,
    then the ballot's own 422 codes. A voter the process would refuse anyway is told why
    (withdrawing elsewhere would not help); a ballot's content is judged only where the
    voter may vote at all."""
    (north, n_props), (east, e_props), (west, _) = city["north"], city["east"], city["west"]
    voter = actors.resident
    assert cast(client, voter, north, [n_props[0].id]).status_code == 200
    # Body shape first.
    shape = client.put(
        f"{API}/processes/{east.id}/ballot", json={"proposal_ids": "x"}, headers=voter.headers
    )
    assert_problem(shape, 422, "validation_error")
    # The ballot rules come after the limit.
    assert_problem(cast(client, voter, east, [999_999]), 409, "group_limit_reached")
    assert_problem(cast(client, voter, east, []), 409, "group_limit_reached")
    # Eligibility before the limit.
    session.expire_all()
    stored = session.get(Process, east.id)
    assert stored is not None
    stored.postcode_prefixes = ["1011"]
    session.add(stored)
    session.commit()
    assert_problem(cast(client, voter, east, [e_props[0].id]), 403, "not_eligible")
    # A closed process says so first.
    client.post(
        f"{API}/processes/{west.id}/transition", json={"to": "closed"}, headers=actors.admin.headers
    )
    assert_problem(cast(client, voter, west, [999_999]), 409, "voting_closed")
    assert set(ballots_of(session, voter)) == {north.id}


# --- one view of the round -------------------------------------------------------------


def test_me_tells_where_the_account_voted_and_where_it_still_may(
    client: TestClient, actors: Actors, session: Session, city: dict[str, Any]
) -> None:
    (north, n_props), (east, _), (west, _) = city["north"], city["east"], city["west"]
    town = city["city"][0]
    url = f"{API}/rounds/{city['round'].id}/me"
    before = client.get(url, headers=actors.resident.headers).json()
    assert all(p["can_vote"] and not p["has_ballot"] for p in before["processes"])
    assert before["groups"] == [
        {
            "group_id": city["group"].id,
            "name": "District group 1",
            "used": 0,
            "max": 1,
            "processes": [],
        }
    ]
    assert cast(client, actors.resident, north, [n_props[0].id]).status_code == 200
    after = client.get(url, headers=actors.resident.headers).json()
    by_id = {p["process_id"]: p for p in after["processes"]}
    assert by_id[north.id] == {
        "process_id": north.id,
        "group_id": city["group"].id,
        "can_vote": True,
        "has_ballot": True,
        "reasons": [],
    }
    for other in (east.id, west.id):
        assert (by_id[other]["can_vote"], by_id[other]["reasons"]) == (False, ["group_limit"])
    assert by_id[town.id]["can_vote"] is True
    assert by_id[town.id]["group_id"] is None
    assert after["groups"][0]["used"] == 1
    assert after["groups"][0]["processes"] == [north.id]
    # The outsider (postcode elsewhere) is told why, per process.
    outsider = client.get(url, headers=actors.outsider.headers).json()
    assert outsider["processes"][0]["can_vote"] is True  # no postcode rule in this round
    assert_problem(client.get(url), 401, "not_authenticated")


# --- moving a round --------------------------------------------------------------------


def test_a_round_moves_all_or_none(client: TestClient, actors: Actors, session: Session) -> None:
    new, (group,) = make_round(session)
    ready = make_process(session, phase=Phase.review, round_id=new.id, group_id=group.id)
    make_proposal(session, ready, actors.author.user, status="accepted")  # type: ignore[arg-type]
    empty = make_process(session, phase=Phase.review, round_id=new.id)
    url = f"{API}/rounds/{new.id}/transition"
    refused = client.post(url, json={"to": "voting"}, headers=actors.admin.headers)
    body = assert_problem(refused, 409, "invalid_transition")
    assert body["process_id"] == empty.id
    assert str(empty.id) in body["detail"]
    session.expire_all()
    assert {p.phase for p in session.exec(select(Process))} == {"review"}
    assert (
        session.exec(select(AuditEntry).where(AuditEntry.action == "process.transitioned")).all()
        == []
    )
    make_proposal(session, empty, actors.author.user, status="accepted")  # type: ignore[arg-type]
    moved = client.post(url, json={"to": "voting"}, headers=actors.admin.headers)
    assert moved.status_code == 200, moved.text
    assert {p["phase"] for p in moved.json()["processes"]} == {"voting"}
    entries = session.exec(
        select(AuditEntry).where(AuditEntry.action == "process.transitioned")
    ).all()
    assert sorted(e.target_id for e in entries if e.target_id) == sorted([ready.id, empty.id])  # type: ignore[type-var]
    # Not one step on for every process: refused, naming the one that cannot.
    behind = make_process(session, phase=Phase.review, round_id=new.id)
    again = client.post(url, json={"to": "closed"}, headers=actors.admin.headers)
    assert assert_problem(again, 409, "invalid_transition")["process_id"] == behind.id
    session.expire_all()
    assert session.get(Process, ready.id).phase == "voting"  # type: ignore[union-attr]


def test_an_empty_round_cannot_move(client: TestClient, actors: Actors, session: Session) -> None:
    new, _ = make_round(session)
    response = client.post(
        f"{API}/rounds/{new.id}/transition", json={"to": "submission"}, headers=actors.admin.headers
    )
    assert_problem(response, 409, "invalid_transition")
    bad = client.post(
        f"{API}/rounds/{new.id}/transition", json={"to": "later"}, headers=actors.admin.headers
    )
    assert_problem(bad, 422, "validation_error")


def test_a_round_of_drafts_is_deleted_and_its_processes_stay(
    client: TestClient, actors: Actors, session: Session
) -> None:
    new, (group,) = make_round(session)
    draft = make_process(session, phase=Phase.draft, round_id=new.id, group_id=group.id)
    started = make_process(session, phase=Phase.submission, round_id=new.id)
    refused = client.delete(f"{API}/rounds/{new.id}", headers=actors.admin.headers)
    assert assert_problem(refused, 409, "invalid_phase")["processes"] == [started.id]
    assert count_rows(session, Round) == 1
    session.expire_all()
    stored = session.get(Process, started.id)
    assert stored is not None
    stored.round_id = None
    session.add(stored)
    session.commit()
    gone = client.delete(f"{API}/rounds/{new.id}", headers=actors.admin.headers)
    assert gone.status_code == 204
    assert count_rows(session, Round) == 0
    assert count_rows(session, RoundGroup) == 0
    session.expire_all()
    kept = session.get(Process, draft.id)
    assert kept is not None
    assert (kept.round_id, kept.group_id) == (None, None)


# --- results ---------------------------------------------------------------------------


def test_round_results_gather_the_published_processes(
    client: TestClient, actors: Actors, session: Session, city: dict[str, Any]
) -> None:
    (north, n_props), (east, e_props) = city["north"], city["east"]
    town, t_props = city["city"]
    assert cast(client, actors.resident, north, [n_props[0].id]).status_code == 200
    assert cast(client, actors.moderator, east, [e_props[1].id]).status_code == 200
    assert cast(client, actors.author, east, [e_props[2].id]).status_code == 200
    assert cast(client, actors.resident, town, [t_props[0].id]).status_code == 200
    closed = client.post(
        f"{API}/rounds/{city['round'].id}/transition",
        json={"to": "closed"},
        headers=actors.admin.headers,
    )
    assert closed.status_code == 200, closed.text
    for process in (north, town):
        published = client.post(
            f"{API}/processes/{process.id}/results", headers=actors.admin.headers
        )
        assert published.status_code == 201, published.text
    body = client.get(f"{API}/rounds/{city['round'].id}/results").json()
    outcomes = {o["process_id"]: o for o in body["processes"]}
    assert outcomes[north.id]["published"] is True
    assert outcomes[north.id]["results"] == client.get(f"{API}/processes/{north.id}/results").json()
    assert outcomes[north.id]["district"] == "District group 1"
    assert outcomes[town.id]["district"] == "city-wide"
    assert outcomes[east.id]["results"] is None
    assert (outcomes[east.id]["published"], outcomes[east.id]["exports"]) == (False, None)
    assert outcomes[east.id]["ballot_count"] == 2
    assert body["ballot_count"] == 4
    assert body["published_count"] == 2
    turnout = {g["district"]: g["ballot_count"] for g in body["groups"]}
    assert turnout == {"city-wide": 1, "District group 1": 3}
    # Each published process's exports, with pabulib's district and subunit filled.
    pb = client.get(outcomes[north.id]["exports"]["pb"])
    assert pb.status_code == 200
    meta = pabulib.parse(pb.text).meta
    assert (meta["district"], meta["subunit"]) == ("District group 1", "Oosterpark")
    assert checker_errors(pb.text) == {}
    town_pb = client.get(outcomes[town.id]["exports"]["pb"]).text
    assert pabulib.parse(town_pb).meta["district"] == "city-wide"
    csv = client.get(outcomes[town.id]["exports"]["csv"])
    assert csv.status_code == 200


def test_a_process_outside_rounds_exports_no_district(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, _ = make_voting_process(session, actors.author.user, phase=Phase.closed)
    client.post(f"{API}/processes/{process.id}/results", headers=actors.admin.headers)
    meta = pabulib.parse(client.get(f"{API}/processes/{process.id}/results.pb").text).meta
    assert "district" not in meta
    assert "subunit" not in meta
    assert count_rows(session, Proposal) == 4


def test_the_openapi_document_names_the_new_error_and_endpoints(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    cast_conflicts = doc["paths"][f"{API}/processes/{{process_id}}/ballot"]["put"]["responses"]
    assert "group_limit_reached" in cast_conflicts["409"]["description"]
    for path in (
        "",
        "/{round_id}",
        "/{round_id}/transition",
        "/{round_id}/me",
        "/{round_id}/results",
    ):
        assert f"{API}/rounds{path}" in doc["paths"]


def test_in_production_a_round_with_one_unverified_process_does_not_move(
    actors: Actors, session: Session, settings: Settings
) -> None:
    production = create_app(
        make_settings(
            settings.database_url, environment="production", smtp_url="smtp://127.0.0.1:9"
        )
    )
    new, (group,) = make_round(session)
    coded, _ = make_voting_process(
        session,
        actors.author.user,
        phase=Phase.review,
        round_id=new.id,
        group_id=group.id,
        eligibility={"require_voting_code": True},
    )
    open_to_all, _ = make_voting_process(
        session, actors.author.user, phase=Phase.review, round_id=new.id
    )
    with TestClient(production) as client:
        response = client.post(
            f"{API}/rounds/{new.id}/transition",
            json={"to": "voting"},
            headers=actors.admin.headers,
        )
        body = assert_problem(response, 409, "unverified_voters")
        # The one with codes comes first (lower id) and could move: all or none.
        assert body["process_id"] == open_to_all.id
        assert (coded.id or 0) < (open_to_all.id or 0)
    session.expire_all()
    assert {p.phase for p in session.exec(select(Process))} == {"review"}
    production.state.engine.dispose()
