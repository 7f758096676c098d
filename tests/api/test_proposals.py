"""Proposals, reviews, supports and comments through the API."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.models.audit import AuditEntry
from app.models.process import Phase
from app.models.proposal import Proposal, ProposalStatus, Support
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal, make_user
from tests.helpers import API, assert_problem, count_rows

NEW: dict[str, Any] = {
    "title": "A play area in the Oosterpark",
    "summary": "Swings and a climbing frame.",
    "description": "Next to the pond.",
    "estimated_cost": 5000,
    "category": "play",
}


def proposal_count(session: Session) -> int:
    return count_rows(session, Proposal)


def test_an_eligible_resident_submits(client: TestClient, actors: Actors, session: Session) -> None:
    process = make_process(session, eligibility={"postcode_prefixes": ["9713"], "min_age": 16})
    response = client.post(
        f"{API}/processes/{process.id}/proposals", json=NEW, headers=actors.author.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "submitted"
    assert body["author"] == {"id": actors.author.id, "display_name": "Author"}
    assert body["cost"] is None
    assert (body["support_count"], body["comment_count"]) == (0, 0)
    shown = client.get(f"{API}/proposals/{body['id']}", headers=actors.author.headers).json()
    assert shown == body


@pytest.mark.parametrize(
    ("eligibility", "postcode", "birth_year"),
    [
        ({"postcode_prefixes": ["9713"]}, "1011AB", 1990),
        ({"postcode_prefixes": ["9713"]}, None, 1990),
        ({"min_age": 16}, "9713AB", None),
        ({"min_age": 16}, "9713AB", 2100),
    ],
)
def test_ineligible_residents_cannot_submit(
    client: TestClient, session: Session, settings: Any, eligibility: dict[str, Any],
    postcode: str | None, birth_year: int | None,
) -> None:  # fmt: skip
    from tests.factories import auth

    process = make_process(session, eligibility=eligibility)
    user = make_user(session, postcode=postcode, birth_year=birth_year)
    response = client.post(
        f"{API}/processes/{process.id}/proposals",
        json=NEW,
        headers=auth(user, settings.signing_key()),
    )
    assert_problem(response, 403, "not_eligible")
    assert proposal_count(session) == 0


def test_age_counts_in_the_year_voting_opens(
    client: TestClient, session: Session, settings: Any
) -> None:
    from tests.factories import auth

    process = make_process(
        session, eligibility={"min_age": 16}, voting_opens_at="2031-03-01T00:00:00Z"
    )
    turns_16_in_2031 = make_user(session, birth_year=2015)
    url = f"{API}/processes/{process.id}/proposals"
    assert (
        client.post(
            url, json=NEW, headers=auth(turns_16_in_2031, settings.signing_key())
        ).status_code
        == 201
    )
    too_young = make_user(session, birth_year=2016)
    assert_problem(
        client.post(url, json=NEW, headers=auth(too_young, settings.signing_key())),
        403,
        "not_eligible",
    )


@pytest.mark.parametrize("phase", [Phase.review, Phase.voting, Phase.closed])
def test_submitting_outside_the_submission_phase_is_409(
    client: TestClient, actors: Actors, session: Session, phase: Phase
) -> None:
    process = make_process(session, phase=phase)
    # The phase conflict comes before eligibility, even for an outsider.
    for actor in (actors.author, actors.outsider):
        response = client.post(
            f"{API}/processes/{process.id}/proposals", json=NEW, headers=actor.headers
        )
        assert_problem(response, 409, "invalid_phase")
    assert proposal_count(session) == 0


@pytest.mark.parametrize(
    "change",
    [{"estimated_cost": 0}, {"estimated_cost": -100}, {"estimated_cost": 2**31}, {"title": "t" * 201},
     {"summary": ""}, {"category": "c" * 51}, {"votes": 10}, {"title": None}],
)  # fmt: skip
def test_invalid_proposals_are_422(
    client: TestClient, actors: Actors, session: Session, change: dict[str, Any]
) -> None:
    process = make_process(session)
    response = client.post(
        f"{API}/processes/{process.id}/proposals",
        json=dict(NEW, **change),
        headers=actors.author.headers,
    )
    assert_problem(response, 422, "validation_error")
    assert proposal_count(session) == 0


def test_unknown_and_draft_processes_are_404(
    client: TestClient, actors: Actors, session: Session
) -> None:
    draft = make_process(session, phase=Phase.draft)
    for process_id in (draft.id, 4242, 2**40):
        response = client.post(
            f"{API}/processes/{process_id}/proposals", json=NEW, headers=actors.author.headers
        )
        assert_problem(response, 404, "not_found")
        assert_problem(client.get(f"{API}/processes/{process_id}/proposals"), 404, "not_found")


def test_listing_filters_sorts_and_pages(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session)
    a = make_proposal(
        session,
        process,
        actors.author.user,
        title="Play area",
        estimated_cost=5000,
        category="play",
    )
    b = make_proposal(
        session,
        process,
        actors.author.user,
        title="Benches",
        summary="100% oak",
        estimated_cost=1000,
    )
    c = make_proposal(
        session,
        process,
        actors.author.user,
        title="Party",
        status=ProposalStatus.accepted,
        cost=800,
        estimated_cost=2000,
    )
    assert b.id is not None
    assert c.id is not None
    session.add(Support(proposal_id=b.id, user_id=actors.resident.id))
    session.add(Support(proposal_id=b.id, user_id=actors.admin.id))
    session.add(Support(proposal_id=c.id, user_id=actors.resident.id))
    session.commit()
    url = f"{API}/processes/{process.id}/proposals"

    def ids(**params: Any) -> list[int | None]:
        return [p["id"] for p in client.get(url, params=params).json()["items"]]

    assert ids() == [c.id, b.id, a.id]
    assert ids(sort="cost") == [c.id, b.id, a.id]
    assert ids(sort="supports") == [b.id, c.id, a.id]
    assert ids(status="accepted") == [c.id]
    assert ids(category="PLAY") == [a.id]
    assert ids(q="BENCH") == [b.id]
    assert ids(q="100%") == [b.id]
    assert ids(q="%") == [b.id]
    assert ids(q="nothing like it") == []
    page = client.get(url, params={"limit": 1, "offset": 1, "sort": "supports"}).json()
    assert (page["total"], [p["id"] for p in page["items"]]) == (3, [c.id])
    assert page["items"][0]["support_count"] == 1
    assert_problem(client.get(url, params={"sort": "random"}), 422, "validation_error")
    assert_problem(client.get(url, params={"status": "lost"}), 422, "validation_error")


def test_the_author_edits_while_submitted(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session)
    proposal = make_proposal(session, process, actors.author.user)
    url = f"{API}/proposals/{proposal.id}"
    edited = client.patch(
        url, json={"title": "Better benches", "estimated_cost": 3500}, headers=actors.author.headers
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["title"], edited.json()["estimated_cost"]) == ("Better benches", 3500)
    for other in (actors.resident, actors.moderator, actors.admin):
        assert_problem(
            client.patch(url, json={"title": "Mine"}, headers=other.headers), 403, "forbidden"
        )
    assert_problem(
        client.patch(url, json={"estimated_cost": 0}, headers=actors.author.headers),
        422,
        "validation_error",
    )
    session.refresh(proposal)
    assert proposal.title == "Better benches"


def test_editing_needs_the_submission_phase_and_status(
    client: TestClient, actors: Actors, session: Session
) -> None:
    open_process = make_process(session)
    accepted = make_proposal(
        session, open_process, actors.author.user, status=ProposalStatus.accepted
    )
    assert_problem(
        client.patch(
            f"{API}/proposals/{accepted.id}", json={"title": "x"}, headers=actors.author.headers
        ),
        409,
        "invalid_status",
    )
    in_review = make_process(session, phase=Phase.review)
    submitted = make_proposal(session, in_review, actors.author.user)
    assert_problem(
        client.patch(
            f"{API}/proposals/{submitted.id}", json={"title": "x"}, headers=actors.author.headers
        ),
        409,
        "invalid_phase",
    )


def test_withdrawal(client: TestClient, actors: Actors, session: Session) -> None:
    process = make_process(session, phase=Phase.review)
    accepted = make_proposal(session, process, actors.author.user, status=ProposalStatus.accepted)
    url = f"{API}/proposals/{accepted.id}/withdraw"
    assert_problem(client.post(url, headers=actors.resident.headers), 403, "forbidden")
    assert client.post(url, headers=actors.author.headers).json()["status"] == "withdrawn"
    assert_problem(client.post(url, headers=actors.author.headers), 409, "invalid_status")
    rejected = make_proposal(session, process, actors.author.user, status=ProposalStatus.rejected)
    assert_problem(
        client.post(f"{API}/proposals/{rejected.id}/withdraw", headers=actors.author.headers),
        409,
        "invalid_status",
    )
    voting = make_process(session, phase=Phase.voting)
    on_ballot = make_proposal(session, voting, actors.author.user, status=ProposalStatus.accepted)
    assert_problem(
        client.post(f"{API}/proposals/{on_ballot.id}/withdraw", headers=actors.author.headers),
        409,
        "invalid_phase",
    )
    session.refresh(on_ballot)
    assert on_ballot.status == "accepted"


def test_review_accept_reject_and_again(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session, budget=25_000)
    proposal = make_proposal(session, process, actors.author.user)
    url = f"{API}/proposals/{proposal.id}/review"
    accepted = client.post(
        url, json={"decision": "accept", "cost": 4800}, headers=actors.moderator.headers
    ).json()
    assert (accepted["status"], accepted["cost"], accepted["review_reason"]) == (
        "accepted",
        4800,
        None,
    )
    reason = "The square is not municipal ground."
    rejected = client.post(
        url, json={"decision": "reject", "reason": reason}, headers=actors.admin.headers
    ).json()
    assert (rejected["status"], rejected["cost"], rejected["review_reason"]) == (
        "rejected",
        None,
        reason,
    )
    # The author and the public read the reason.
    assert client.get(f"{API}/proposals/{proposal.id}").json()["review_reason"] == reason
    entries = session.exec(
        select(AuditEntry)
        .where(AuditEntry.action == "proposal.reviewed")
        .order_by(col(AuditEntry.id))
    ).all()
    assert [(e.actor_id, e.before, e.after) for e in entries] == [
        (actors.moderator.id, {"status": "submitted", "cost": None, "review_reason": None},
         {"status": "accepted", "cost": 4800, "review_reason": None}),
        (actors.admin.id, {"status": "accepted", "cost": 4800, "review_reason": None},
         {"status": "rejected", "cost": None, "review_reason": reason}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "decision",
    [
        {"decision": "accept", "cost": 0},
        {"decision": "accept", "cost": -5},
        {"decision": "accept", "cost": 25_001},
        {"decision": "accept"},
        {"decision": "reject"},
        {"decision": "reject", "reason": "   "},
        {"decision": "maybe"},
        {"decision": "accept", "cost": 100, "reason": "extra"},
    ],
)
def test_invalid_reviews_are_422_and_change_nothing(
    client: TestClient, actors: Actors, session: Session, decision: dict[str, Any]
) -> None:
    process = make_process(session, budget=25_000)
    proposal = make_proposal(session, process, actors.author.user)
    assert_problem(
        client.post(
            f"{API}/proposals/{proposal.id}/review", json=decision, headers=actors.moderator.headers
        ),
        422,
        "validation_error",
    )
    session.refresh(proposal)
    assert (proposal.status, proposal.cost) == ("submitted", None)


def test_review_refusals(client: TestClient, actors: Actors, session: Session) -> None:
    process = make_process(session, phase=Phase.review)
    withdrawn = make_proposal(session, process, actors.author.user, status=ProposalStatus.withdrawn)
    accept = {"decision": "accept", "cost": 100}
    assert_problem(
        client.post(
            f"{API}/proposals/{withdrawn.id}/review", json=accept, headers=actors.moderator.headers
        ),
        409,
        "invalid_status",
    )
    fresh = make_proposal(session, process, actors.author.user)
    assert_problem(
        client.post(
            f"{API}/proposals/{fresh.id}/review", json=accept, headers=actors.author.headers
        ),
        403,
        "forbidden",
    )
    voting = make_process(session, phase=Phase.voting)
    late = make_proposal(session, voting, actors.author.user)
    assert_problem(
        client.post(
            f"{API}/proposals/{late.id}/review", json=accept, headers=actors.moderator.headers
        ),
        409,
        "invalid_phase",
    )


def test_supports_are_idempotent_and_counted(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session)
    proposal = make_proposal(session, process, actors.author.user)
    url = f"{API}/proposals/{proposal.id}/support"
    for _ in range(2):
        state = client.post(url, headers=actors.resident.headers).json()
        assert state == {"proposal_id": proposal.id, "supported": True, "support_count": 1}
    assert client.post(url, headers=actors.admin.headers).json()["support_count"] == 2
    assert client.get(f"{API}/proposals/{proposal.id}").json()["support_count"] == 2
    for _ in range(2):
        state = client.delete(url, headers=actors.resident.headers).json()
        assert state == {"proposal_id": proposal.id, "supported": False, "support_count": 1}
    assert_problem(client.post(url), 401, "not_authenticated")


def test_one_support_per_user_is_a_database_constraint(actors: Actors, session: Session) -> None:
    proposal = make_proposal(session, make_process(session), actors.author.user)
    assert proposal.id is not None
    session.add(Support(proposal_id=proposal.id, user_id=actors.resident.id))
    session.commit()
    session.add(Support(proposal_id=proposal.id, user_id=actors.resident.id))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_supports_need_an_open_process_and_a_live_proposal(
    client: TestClient, actors: Actors, session: Session
) -> None:
    closed = make_process(session, phase=Phase.closed)
    old = make_proposal(session, closed, actors.author.user, status=ProposalStatus.accepted)
    assert_problem(
        client.post(f"{API}/proposals/{old.id}/support", headers=actors.resident.headers),
        409,
        "invalid_phase",
    )
    rejected = make_proposal(
        session, make_process(session), actors.author.user, status=ProposalStatus.rejected
    )
    assert_problem(
        client.post(f"{API}/proposals/{rejected.id}/support", headers=actors.resident.headers),
        409,
        "invalid_status",
    )


def test_comments(client: TestClient, actors: Actors, session: Session) -> None:
    proposal = make_proposal(session, make_process(session), actors.author.user)
    url = f"{API}/proposals/{proposal.id}/comments"
    assert_problem(client.post(url, json={"body": "Anonymous"}), 401, "not_authenticated")
    for n in range(3):
        created = client.post(
            url, json={"body": f"  Comment {n} "}, headers=actors.resident.headers
        )
        assert created.status_code == 201, created.text
    assert created.json()["author"] == {"id": actors.resident.id, "display_name": "Resident"}
    assert created.json()["body"] == "Comment 2"
    page = client.get(url, params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 3
    assert [c["body"] for c in page["items"]] == ["Comment 1", "Comment 2"]
    assert client.get(f"{API}/proposals/{proposal.id}").json()["comment_count"] == 3
    for bad in ({"body": ""}, {"body": "x" * 5001}, {"text": "hi"}, {"body": "a\x00b"}):
        assert_problem(
            client.post(url, json=bad, headers=actors.resident.headers), 422, "validation_error"
        )
    assert_problem(client.get(f"{API}/proposals/987654/comments"), 404, "not_found")


def test_audit_log_is_admin_only_filterable_and_read_only(
    client: TestClient, actors: Actors, session: Session
) -> None:
    first = make_process(session, phase=Phase.submission)
    second = make_process(session, phase=Phase.submission)
    for process in (first, second):
        client.post(
            f"{API}/processes/{process.id}/transition",
            json={"to": "review"},
            headers=actors.admin.headers,
        )
    client.patch(
        f"{API}/users/{actors.resident.id}/role",
        json={"role": "moderator"},
        headers=actors.admin.headers,
    )
    everything = client.get(f"{API}/audit", headers=actors.admin.headers).json()
    assert everything["total"] == 3
    role_change = everything["items"][0]
    assert role_change["action"] == "user.role_changed"
    assert (role_change["before"], role_change["after"]) == (
        {"role": "resident"},
        {"role": "moderator"},
    )
    only_first = client.get(
        f"{API}/audit", params={"process_id": first.id}, headers=actors.admin.headers
    ).json()
    assert [e["process_id"] for e in only_first["items"]] == [first.id]
    assert_problem(client.get(f"{API}/audit", headers=actors.moderator.headers), 403, "forbidden")
    assert_problem(client.get(f"{API}/audit"), 401, "not_authenticated")
    for method in ("put", "patch", "delete", "post"):
        assert_problem(
            getattr(client, method)(f"{API}/audit", headers=actors.admin.headers),
            405,
            "method_not_allowed",
        )


def test_audit_filter_beyond_a_column_is_422(client: TestClient, actors: Actors) -> None:
    # Found by the schema fuzzer on PostgreSQL: an id beyond 32 bits reached the database.
    response = client.get(
        f"{API}/audit", params={"process_id": 2**31}, headers=actors.admin.headers
    )
    assert_problem(response, 422, "validation_error")


def test_search_text_with_nul_is_422(client: TestClient, session: Session) -> None:
    process = make_process(session)
    for params in ({"q": "a\x00b"}, {"category": "\x00"}):
        assert_problem(
            client.get(f"{API}/processes/{process.id}/proposals", params=params),
            422,
            "validation_error",
        )
