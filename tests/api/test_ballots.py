"""Ballots through the API: every rule and error code, replacement, withdrawal, receipts."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models.ballot import Ballot, Receipt
from app.models.base import utcnow
from app.models.process import Phase
from app.models.proposal import ProposalStatus
from app.models.result import PublishedResult
from tests.api.conftest import Actors
from tests.factories import make_proposal, make_voting_process
from tests.helpers import API, assert_problem, count_rows


def ballots_in(session: Session) -> int:
    return count_rows(session, Ballot)


def put(client: TestClient, process_id: int | None, body: Any, headers: dict[str, str]) -> Any:
    return client.put(f"{API}/processes/{process_id}/ballot", json=body, headers=headers)


def test_cast_read_replace_and_withdraw(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, (p1, p2, p3, p4) = make_voting_process(session, actors.author.user)
    first = put(client, process.id, {"proposal_ids": [p3.id, p1.id]}, actors.resident.headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["process_id"] == process.id
    assert body["proposal_ids"] == [p1.id, p3.id]
    assert body["points"] is None
    assert body["total_cost"] == 15_000
    assert len(body["receipt"]) >= 32
    assert body["cast_at"].endswith("Z")
    assert (
        client.get(f"{API}/processes/{process.id}/ballot", headers=actors.resident.headers).json()
        == body
    )
    second = put(
        client, process.id, {"proposal_ids": [p2.id, p4.id]}, actors.resident.headers
    ).json()
    assert second["receipt"] != body["receipt"]
    assert ballots_in(session) == 1
    assert (
        client.get(f"{API}/processes/{process.id}", headers=actors.admin.headers).json()[
            "ballot_count"
        ]
        == 1
    )
    assert (
        client.delete(
            f"{API}/processes/{process.id}/ballot", headers=actors.resident.headers
        ).status_code
        == 204
    )
    assert ballots_in(session) == 0
    assert_problem(
        client.get(f"{API}/processes/{process.id}/ballot", headers=actors.resident.headers),
        404,
        "no_ballot",
    )
    assert_problem(
        client.delete(f"{API}/processes/{process.id}/ballot", headers=actors.resident.headers),
        404,
        "no_ballot",
    )


def test_ballots_are_secret(client: TestClient, actors: Actors, session: Session) -> None:
    process, (p1, *_) = make_voting_process(session, actors.author.user)
    put(client, process.id, {"proposal_ids": [p1.id]}, actors.resident.headers)
    for other in (actors.admin, actors.moderator, actors.author):
        assert_problem(
            client.get(f"{API}/processes/{process.id}/ballot", headers=other.headers),
            404,
            "no_ballot",
        )
    assert_problem(client.get(f"{API}/processes/{process.id}/ballot"), 401, "not_authenticated")


def test_cumulative_ballots(client: TestClient, actors: Actors, session: Session) -> None:
    process, (p1, p2, *_) = make_voting_process(
        session,
        actors.author.user,
        ballot={"type": "cumulative", "points": 10, "max_points_per_project": 6},
    )
    body = put(
        client, process.id, {"points": {str(p2.id): 4, str(p1.id): 6}}, actors.resident.headers
    ).json()
    assert body["proposal_ids"] == [p1.id, p2.id]
    assert body["points"] == {str(p1.id): 6, str(p2.id): 4}
    assert body["total_cost"] == 18_000
    stored = session.exec(select(Ballot)).one()
    assert stored.items == [[p1.id, 6], [p2.id, 4]]


@pytest.mark.parametrize(
    ("ballot", "body", "code"),
    [
        ({"type": "knapsack"}, {"proposal_ids": [999]}, "unknown_proposal"),
        ({"type": "knapsack"}, {"proposal_ids": [1, 1]}, "duplicate_proposal"),
        ({"type": "knapsack"}, {"proposal_ids": []}, "too_few_projects"),
        ({"type": "knapsack", "max_projects": 1}, {"proposal_ids": [3, 4]}, "too_many_projects"),
        ({"type": "knapsack"}, {"proposal_ids": [1, 2, 3]}, "budget_exceeded"),
        (
            {"type": "knapsack", "min_budget_share": 0.5},
            {"proposal_ids": [4]},
            "below_min_budget_share",
        ),
        ({"type": "approval", "max_projects": 2}, {"proposal_ids": [1, 2, 3]}, "too_many_projects"),
        ({"type": "cumulative", "points": 5}, {"points": {"1": 0}}, "invalid_points"),
        ({"type": "cumulative", "points": 5}, {"points": {"1": 2.5}}, "invalid_points"),
        ({"type": "cumulative", "points": 5}, {"points": {"1": -3}}, "invalid_points"),
        ({"type": "cumulative", "points": 5}, {"points": {"1": 3, "2": 3}}, "points_exceeded"),
        (
            {"type": "cumulative", "points": 9, "max_points_per_project": 2},
            {"points": {"1": 3}},
            "points_exceeded",
        ),
        ({"type": "cumulative", "points": 5}, {"points": {"1": 1, "01": 1}}, "duplicate_proposal"),
        # validation_error: body shape, and fields foreign to the ballot type
        ({"type": "knapsack"}, {"points": {"1": 1}}, "validation_error"),
        ({"type": "cumulative", "points": 5}, {"proposal_ids": [1]}, "validation_error"),
        ({"type": "knapsack"}, {"proposal_ids": [1], "points": {"1": 1}}, "validation_error"),
        ({"type": "knapsack"}, {}, "validation_error"),
        ({"type": "knapsack"}, {"proposal_ids": ["1"]}, "validation_error"),
        ({"type": "knapsack"}, {"proposal_ids": [2**31]}, "validation_error"),
        ({"type": "knapsack"}, {"proposal_ids": [1], "note": "hi"}, "validation_error"),
        ({"type": "cumulative", "points": 5}, {"points": {"one": 1}}, "validation_error"),
        ({"type": "cumulative", "points": 5}, {"points": {"1": "3"}}, "validation_error"),
        ({"type": "knapsack"}, {"proposal_ids": list(range(501))}, "validation_error"),
    ],
)
def test_broken_rules_are_refused_and_store_nothing(
    client: TestClient,
    actors: Actors,
    session: Session,
    ballot: dict[str, Any],
    body: dict[str, Any],
    code: str,
) -> None:
    process, proposals = make_voting_process(
        session, actors.author.user, budget=20_000, ballot=ballot
    )
    assert [p.id for p in proposals] == [1, 2, 3, 4]  # the bodies above name these ids
    assert_problem(put(client, process.id, body, actors.resident.headers), 422, code)
    assert ballots_in(session) == 0


def test_a_rejected_ballot_leaves_the_earlier_one(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, (p1, p2, p3, _) = make_voting_process(session, actors.author.user, budget=20_000)
    good = put(client, process.id, {"proposal_ids": [p1.id]}, actors.resident.headers).json()
    assert_problem(
        put(client, process.id, {"proposal_ids": [p1.id, p2.id, p3.id]}, actors.resident.headers),
        422,
        "budget_exceeded",
    )
    assert (
        client.get(f"{API}/processes/{process.id}/ballot", headers=actors.resident.headers).json()
        == good
    )


def test_only_accepted_proposals_of_this_process(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, _ = make_voting_process(session, actors.author.user)
    rejected = make_proposal(session, process, actors.author.user, status=ProposalStatus.rejected)
    withdrawn = make_proposal(session, process, actors.author.user, status=ProposalStatus.withdrawn)
    _other, (foreign, *_) = make_voting_process(session, actors.author.user)
    for proposal in (rejected, withdrawn, foreign):
        assert_problem(
            put(client, process.id, {"proposal_ids": [proposal.id]}, actors.resident.headers),
            422,
            "unknown_proposal",
        )


@pytest.mark.parametrize("phase", [Phase.submission, Phase.review, Phase.closed])
def test_casting_outside_voting_is_voting_closed(
    client: TestClient, actors: Actors, session: Session, phase: Phase
) -> None:
    process, (p1, *_) = make_voting_process(session, actors.author.user, phase=phase)
    assert_problem(
        put(client, process.id, {"proposal_ids": [p1.id]}, actors.resident.headers),
        409,
        "voting_closed",
    )
    assert ballots_in(session) == 0


def test_the_voting_window(client: TestClient, actors: Actors, session: Session) -> None:
    now = utcnow()
    early, (e1, *_) = make_voting_process(
        session, actors.author.user, voting_opens_at=now + timedelta(hours=1)
    )
    late, (l1, *_) = make_voting_process(
        session, actors.author.user, voting_closes_at=now - timedelta(seconds=1)
    )
    inside, (i1, *_) = make_voting_process(
        session,
        actors.author.user,
        voting_opens_at=now - timedelta(hours=1),
        voting_closes_at=now + timedelta(hours=1),
    )
    assert_problem(
        put(client, early.id, {"proposal_ids": [e1.id]}, actors.resident.headers),
        409,
        "voting_closed",
    )
    assert_problem(
        put(client, late.id, {"proposal_ids": [l1.id]}, actors.resident.headers),
        409,
        "voting_closed",
    )
    assert (
        put(client, inside.id, {"proposal_ids": [i1.id]}, actors.resident.headers).status_code
        == 200
    )


def test_after_close_the_ballot_stays_readable_and_fixed(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, (p1, p2, *_) = make_voting_process(session, actors.author.user)
    cast = put(client, process.id, {"proposal_ids": [p1.id]}, actors.resident.headers).json()
    client.post(
        f"{API}/processes/{process.id}/transition",
        json={"to": "closed"},
        headers=actors.admin.headers,
    )
    assert (
        client.get(f"{API}/processes/{process.id}/ballot", headers=actors.resident.headers).json()
        == cast
    )
    assert_problem(
        put(client, process.id, {"proposal_ids": [p2.id]}, actors.resident.headers),
        409,
        "voting_closed",
    )
    assert_problem(
        client.delete(f"{API}/processes/{process.id}/ballot", headers=actors.resident.headers),
        409,
        "voting_closed",
    )
    assert ballots_in(session) == 1


def test_eligibility_for_voting(client: TestClient, actors: Actors, session: Session) -> None:
    process, (p1, *_) = make_voting_process(
        session, actors.author.user, eligibility={"postcode_prefixes": ["9713"], "min_age": 16}
    )
    assert_problem(
        put(client, process.id, {"proposal_ids": [p1.id]}, actors.outsider.headers),
        403,
        "not_eligible",
    )
    # Precedence: voting_closed comes before not_eligible.
    closed, (c1, *_) = make_voting_process(
        session, actors.author.user, phase=Phase.closed, eligibility={"postcode_prefixes": ["9713"]}
    )
    assert_problem(
        put(client, closed.id, {"proposal_ids": [c1.id]}, actors.outsider.headers),
        409,
        "voting_closed",
    )
    # not_eligible comes before the ballot's own rules.
    assert_problem(
        put(client, process.id, {"proposal_ids": [999]}, actors.outsider.headers),
        403,
        "not_eligible",
    )
    # Any role votes when eligible.
    for voter in (actors.moderator, actors.admin):
        assert put(client, process.id, {"proposal_ids": [p1.id]}, voter.headers).status_code == 200


def test_unknown_and_draft_processes_are_404(
    client: TestClient, actors: Actors, session: Session
) -> None:
    draft, _ = make_voting_process(session, actors.author.user, phase=Phase.draft)
    for process_id in (draft.id, 777, 2**40):
        assert_problem(
            put(client, process_id, {"proposal_ids": [1]}, actors.resident.headers),
            404,
            "not_found",
        )
    assert_problem(
        put(client, 777, {"proposal_ids": "x"}, actors.resident.headers), 422, "validation_error"
    )
    assert_problem(put(client, 777, {"proposal_ids": [1]}, {}), 401, "not_authenticated")


def test_receipts(client: TestClient, actors: Actors, session: Session) -> None:
    process, (p1, p2, *_) = make_voting_process(session, actors.author.user)
    first = put(client, process.id, {"proposal_ids": [p1.id]}, actors.resident.headers).json()[
        "receipt"
    ]
    second = put(client, process.id, {"proposal_ids": [p2.id]}, actors.resident.headers).json()[
        "receipt"
    ]

    def status(receipt: str, process_id: int | None = process.id) -> Any:
        return client.get(f"{API}/processes/{process_id}/receipts/{receipt}")

    assert status(first).json() == {"current": False, "counted": None}
    assert status(second).json() == {"current": True, "counted": None}
    assert set(status(second).json()) == {"current", "counted"}  # nothing about the content
    assert_problem(status("not-a-receipt"), 404, "unknown_receipt")
    other, _ = make_voting_process(session, actors.author.user)
    assert_problem(status(second, other.id), 404, "unknown_receipt")
    assert count_rows(session, Receipt) == 2
    client.delete(f"{API}/processes/{process.id}/ballot", headers=actors.resident.headers)
    assert status(second).json() == {"current": False, "counted": None}
    third = put(client, process.id, {"proposal_ids": [p1.id]}, actors.resident.headers).json()[
        "receipt"
    ]
    client.post(
        f"{API}/processes/{process.id}/transition",
        json={"to": "closed"},
        headers=actors.admin.headers,
    )
    assert process.id is not None
    session.add(PublishedResult(process_id=process.id, document={}, digest="0" * 64))
    session.commit()
    assert status(third).json() == {"current": True, "counted": True}
    assert status(first).json() == {"current": False, "counted": False}


def test_malformed_receipts_are_unknown(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, _ = make_voting_process(session, actors.author.user)
    for receipt in ("a%00b", "x" * 65, "semi;colon"):
        assert_problem(
            client.get(f"{API}/processes/{process.id}/receipts/{receipt}"), 404, "unknown_receipt"
        )
