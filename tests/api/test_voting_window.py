"""The submission deadline and the voting window once voting started (issue 11, item 10):
`submission_closes_at` ends submissions; in `voting` the close may move later (never
earlier) and the opening may change while no ballot exists; both audited."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models.audit import AuditEntry
from app.models.base import utcnow
from app.models.paper import BatchStatus, PaperBatch
from app.models.process import Phase, Process
from app.models.proposal import Proposal
from tests.api.conftest import Actors
from tests.factories import make_process, make_voting_process
from tests.helpers import API, assert_problem, count_rows

PROPOSAL = {"title": "Benches", "summary": "Two benches by the pond.", "estimated_cost": 900}


def iso(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def patch(client: TestClient, actors: Actors, process: Process, body: dict[str, Any]) -> Any:
    return client.patch(f"{API}/processes/{process.id}", json=body, headers=actors.admin.headers)


def window_audits(session: Session, process: Process) -> list[AuditEntry]:
    return list(
        session.exec(
            select(AuditEntry)
            .where(AuditEntry.process_id == process.id, AuditEntry.action == "process.updated")
            .order_by(col(AuditEntry.id))
        ).all()
    )


def test_submissions_after_the_deadline_are_refused(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session, submission_closes_at=utcnow() - timedelta(minutes=1))
    url = f"{API}/processes/{process.id}/proposals"
    body = assert_problem(
        client.post(url, json=PROPOSAL, headers=actors.resident.headers), 409, "invalid_phase"
    )
    assert "closed" in body["detail"]
    assert count_rows(session, Proposal) == 0
    me = client.get(f"{API}/processes/{process.id}/me", headers=actors.resident.headers).json()
    assert me["can_submit"] is False
    assert "phase" in me["reasons"]


def test_submissions_before_the_deadline_pass_and_the_deadline_is_shown(
    client: TestClient, actors: Actors, session: Session
) -> None:
    deadline = utcnow() + timedelta(days=3)
    process = make_process(session, submission_closes_at=deadline)
    url = f"{API}/processes/{process.id}/proposals"
    response = client.post(url, json=PROPOSAL, headers=actors.resident.headers)
    assert response.status_code == 201, response.text
    shown = client.get(f"{API}/processes/{process.id}").json()
    assert datetime.fromisoformat(shown["submission_closes_at"]) == deadline
    # The admin may move or remove the deadline; null means until the phase ends.
    moved = patch(client, actors, process, {"submission_closes_at": None})
    assert moved.status_code == 200, moved.text
    assert moved.json()["submission_closes_at"] is None


def test_the_close_moves_later_while_voting_and_is_audited(
    client: TestClient, actors: Actors, session: Session
) -> None:
    closes = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    process, _ = make_voting_process(session, actors.author.user, voting_closes_at=closes)
    later = closes + timedelta(days=7)
    response = patch(client, actors, process, {"voting_closes_at": iso(later)})
    assert response.status_code == 200, response.text
    assert response.json()["voting_closes_at"] == iso(later)
    (entry,) = window_audits(session, process)
    assert entry.actor_id == actors.admin.id
    assert entry.before == {"voting_closes_at": iso(closes)}
    assert entry.after == {"voting_closes_at": iso(later)}


@pytest.mark.parametrize("earlier", [timedelta(seconds=-1), timedelta(days=-1)])
def test_the_close_never_moves_earlier(
    client: TestClient, actors: Actors, session: Session, earlier: timedelta
) -> None:
    closes = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    process, _ = make_voting_process(session, actors.author.user, voting_closes_at=closes)
    assert_problem(
        patch(client, actors, process, {"voting_closes_at": iso(closes + earlier)}),
        409,
        "process_locked",
    )
    session.refresh(process)
    assert process.voting_closes_at == closes
    assert window_audits(session, process) == []


def test_removing_the_close_is_an_extension_and_setting_one_is_not(
    client: TestClient, actors: Actors, session: Session
) -> None:
    closes = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    process, _ = make_voting_process(session, actors.author.user, voting_closes_at=closes)
    response = patch(client, actors, process, {"voting_closes_at": None})
    assert response.status_code == 200, response.text
    assert response.json()["voting_closes_at"] is None
    # From "no end" every date is earlier.
    assert_problem(
        patch(client, actors, process, {"voting_closes_at": iso(closes)}), 409, "process_locked"
    )


def test_an_extension_after_the_clock_closed_voting_reopens_it(
    client: TestClient, actors: Actors, session: Session
) -> None:
    closes = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    process, (p1, *_) = make_voting_process(session, actors.author.user, voting_closes_at=closes)
    ballot_url = f"{API}/processes/{process.id}/ballot"
    cast = {"proposal_ids": [p1.id]}
    late = client.put(ballot_url, json=cast, headers=actors.resident.headers)
    assert assert_problem(late, 409, "voting_closed")["reason"] == "closed"
    later = utcnow() + timedelta(days=1)
    assert patch(client, actors, process, {"voting_closes_at": iso(later)}).status_code == 200
    assert client.put(ballot_url, json=cast, headers=actors.resident.headers).status_code == 200


def test_the_window_is_fixed_once_the_process_is_closed(
    client: TestClient, actors: Actors, session: Session
) -> None:
    closes = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    process, _ = make_voting_process(
        session, actors.author.user, phase=Phase.closed, voting_closes_at=closes
    )
    for change in (
        {"voting_closes_at": iso(closes + timedelta(days=1))},
        {"voting_opens_at": iso(closes - timedelta(days=9))},
    ):
        assert_problem(patch(client, actors, process, change), 409, "process_locked")
    assert window_audits(session, process) == []


def test_the_opening_changes_while_no_ballot_exists(
    client: TestClient, actors: Actors, session: Session
) -> None:
    opens = (utcnow() + timedelta(days=10)).replace(microsecond=0)  # the typo
    process, _ = make_voting_process(session, actors.author.user, voting_opens_at=opens)
    fixed = opens - timedelta(days=9)
    response = patch(client, actors, process, {"voting_opens_at": iso(fixed)})
    assert response.status_code == 200, response.text
    assert response.json()["voting_opens_at"] == iso(fixed)
    (entry,) = window_audits(session, process)
    assert entry.before == {"voting_opens_at": iso(opens)}
    assert entry.after == {"voting_opens_at": iso(fixed)}


def test_the_opening_is_fixed_once_a_ballot_is_cast(
    client: TestClient, actors: Actors, session: Session
) -> None:
    opens = (utcnow() - timedelta(days=1)).replace(microsecond=0)
    closes = opens + timedelta(days=5)
    process, (p1, *_) = make_voting_process(
        session, actors.author.user, voting_opens_at=opens, voting_closes_at=closes
    )
    cast = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [p1.id]},
        headers=actors.resident.headers,
    )
    assert cast.status_code == 200, cast.text
    body = assert_problem(
        patch(client, actors, process, {"voting_opens_at": iso(opens - timedelta(days=1))}),
        409,
        "process_locked",
    )
    assert "voting_opens_at" in body["detail"]
    session.refresh(process)
    assert process.voting_opens_at == opens
    # Extending the close is still possible with ballots.
    extended = patch(client, actors, process, {"voting_closes_at": iso(closes + timedelta(1))})
    assert extended.status_code == 200, extended.text


@pytest.mark.parametrize(
    ("status", "locked"),
    [(BatchStatus.entered, True), (BatchStatus.confirmed, True), (BatchStatus.voided, False)],
)
def test_a_paper_batch_counts_as_ballots_unless_voided(
    client: TestClient, actors: Actors, session: Session, status: BatchStatus, locked: bool
) -> None:
    opens = (utcnow() - timedelta(days=1)).replace(microsecond=0)
    process, _ = make_voting_process(session, actors.author.user, voting_opens_at=opens)
    assert process.id is not None
    session.add(
        PaperBatch(
            process_id=process.id, source="Stadhuis", status=status, entered_by=actors.moderator.id
        )
    )
    session.commit()
    response = patch(client, actors, process, {"voting_opens_at": iso(opens - timedelta(1))})
    assert response.status_code == (409 if locked else 200), response.text
