"""Paper ballots: entered twice by different staff, judged like online ones, counted once."""

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models.audit import AuditEntry
from app.models.ballot import Ballot, VotingCode
from app.models.paper import PaperBatch, PaperEntry
from app.models.process import Phase, Process
from app.models.proposal import Proposal
from app.models.user import Role
from tests.api.conftest import Actor, Actors
from tests.api.test_voting_codes import claim, generate
from tests.factories import auth, make_user, make_voting_process
from tests.helpers import API, assert_problem, count_rows, recompute_digest


def enter(client: TestClient, process_id: int | None, body: dict[str, Any], who: Actor) -> Any:
    return client.post(
        f"{API}/processes/{process_id}/paper-batches", json=body, headers=who.headers
    )


def confirm(client: TestClient, batch_id: int, body: dict[str, Any], who: Actor) -> Any:
    return client.post(f"{API}/paper-batches/{batch_id}/confirm", json=body, headers=who.headers)


def paper_rows(session: Session, process_id: int | None) -> list[Ballot]:
    session.commit()
    rows = list(
        session.exec(
            select(Ballot).where(Ballot.process_id == process_id, Ballot.channel == "paper")
        )
    )
    session.commit()
    return rows


def ids(proposals: list[Proposal]) -> list[int]:
    return [p.id for p in proposals if p.id is not None]


def test_every_ballot_is_judged_by_the_online_rules_and_nothing_counts_before_confirmation(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user, budget=20_000)
    p1, p2, p3, _ = ids(proposals)
    body = {
        "source": "Stadhuis, box 3",
        "ballots": [
            {"proposal_ids": [p1, p2]},
            {"proposal_ids": [p1, p2, p3]},  # 23,000 > 20,000
            {"proposal_ids": [p3, 99_999]},
            {"proposal_ids": [p3, p3]},
            {"proposal_ids": []},
        ],
    }
    response = enter(client, process.id, body, actors.moderator)
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["status"] == "entered"
    assert batch["source"] == "Stadhuis, box 3"
    assert batch["entered_by"] == actors.moderator.id
    assert batch["counts"] == {"ballots": 5, "valid": 1, "invalid": 4, "duplicate": 0}
    assert [(b["status"], b["reason"]) for b in batch["ballots"]] == [
        ("valid", None),
        ("invalid", "budget_exceeded"),
        ("invalid", "unknown_proposal"),
        ("invalid", "duplicate_proposal"),
        ("invalid", "too_few_projects"),
    ]
    assert paper_rows(session, process.id) == []
    shown = client.get(f"{API}/processes/{process.id}", headers=actors.admin.headers).json()
    assert shown["ballot_count"] == 0


def test_a_second_different_account_confirms_and_then_the_valid_ballots_count(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    p1, p2, p3, p4 = ids(proposals)
    body = {
        "source": "Bibliotheek",
        "ballots": [{"proposal_ids": [p1, p2]}, {"proposal_ids": [p4, p3]}, {"proposal_ids": []}],
    }
    batch = enter(client, process.id, body, actors.moderator).json()
    own = confirm(client, batch["id"], body, actors.moderator)
    assert_problem(own, 403, "forbidden")
    # The second keyer types the ids in another order: a ballot is a set of proposals.
    second = {**body, "ballots": [{"proposal_ids": [p2, p1]}, *body["ballots"][1:]]}
    confirmed = confirm(client, batch["id"], second, actors.admin)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["confirmed_by"] == actors.admin.id
    assert confirmed.json()["counts"] == {"ballots": 3, "valid": 2, "invalid": 1, "duplicate": 0}
    rows = paper_rows(session, process.id)
    assert sorted(r.items for r in rows) == sorted([[[p1, 1], [p2, 1]], [[p3, 1], [p4, 1]]])
    assert all(r.voter_id is None and r.receipt is None for r in rows)
    assert {r.paper_batch_id for r in rows} == {batch["id"]}
    again = confirm(client, batch["id"], body, actors.admin)
    assert_problem(again, 409, "invalid_status")
    assert len(paper_rows(session, process.id)) == 2  # entered twice, counted once
    listed = client.get(
        f"{API}/processes/{process.id}/paper-batches", headers=actors.moderator.headers
    ).json()
    assert listed["total"] == 1
    assert listed["items"][0]["status"] == "confirmed"


def test_a_mismatch_keeps_both_entries_counts_neither_and_a_correction_compares_again(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    p1, p2, p3, _ = ids(proposals)
    first = {
        "source": "Stadhuis, box 3",
        "ballots": [{"proposal_ids": [p1]}, {"proposal_ids": [p2]}, {"proposal_ids": [p3]}],
    }
    second = {
        "source": "Stadhuis, box 4",
        "ballots": [{"proposal_ids": [p1]}, {"proposal_ids": [p3]}],
    }
    batch = enter(client, process.id, first, actors.moderator).json()
    mismatch = assert_problem(
        confirm(client, batch["id"], second, actors.admin), 409, "entry_mismatch"
    )
    assert mismatch["differences"] == [
        {
            "index": None,
            "first": {"source": "Stadhuis, box 3"},
            "second": {"source": "Stadhuis, box 4"},
        },
        {
            "index": 1,
            "first": {"proposal_ids": [p2], "voting_code": None},
            "second": {"proposal_ids": [p3], "voting_code": None},
        },
        {"index": 2, "first": {"proposal_ids": [p3], "voting_code": None}, "second": None},
    ]
    shown = client.get(f"{API}/paper-batches/{batch['id']}", headers=actors.moderator.headers)
    assert shown.json()["status"] == "mismatched"
    assert len(shown.json()["differences"]) == 3
    session.commit()
    assert (
        len(session.exec(select(PaperEntry).where(PaperEntry.batch_id == batch["id"])).all()) == 2
    )
    assert paper_rows(session, process.id) == []
    assert_problem(confirm(client, batch["id"], first, actors.admin), 409, "invalid_status")
    outsider = Actor(
        user=(staff := make_user(session, role=Role.moderator)),
        headers=auth(staff, client.app.state.signing_key),  # type: ignore[attr-defined]
    )
    url = f"{API}/paper-batches/{batch['id']}"
    assert_problem(client.put(url, json=first, headers=outsider.headers), 403, "forbidden")
    # The second keyer corrects part of it: still different, stored, listed.
    partly = {**first, "ballots": first["ballots"][:2]}
    still = client.put(url, json=partly, headers=actors.admin.headers)
    assert still.status_code == 200, still.text
    assert still.json()["status"] == "mismatched"
    assert [d["index"] for d in still.json()["differences"]] == [2]
    assert paper_rows(session, process.id) == []
    done = client.put(url, json=first, headers=actors.admin.headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "confirmed"
    assert done.json()["differences"] is None
    assert len(paper_rows(session, process.id)) == 3
    actions = session.exec(
        select(AuditEntry.action)
        .where(AuditEntry.target_id == batch["id"])
        .order_by(col(AuditEntry.id))
    ).all()
    assert actions == [
        "paper_batch.entered",
        "paper_batch.mismatched",
        "paper_batch.corrected",
        "paper_batch.corrected",
        "paper_batch.confirmed",
    ]


def test_one_person_one_vote_across_channels(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    p1, p2, *_ = ids(proposals)
    a, b, c = generate(client, process.id, 3, actors.admin.headers)
    assert claim(client, process.id, a, actors.resident.headers).status_code == 200
    cast = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [p1]},
        headers=actors.resident.headers,
    )
    assert cast.status_code == 200
    body = {
        "source": "Wijkcentrum",
        "ballots": [
            {"proposal_ids": [p2], "voting_code": a},  # used online
            {"proposal_ids": [p2], "voting_code": b.lower().replace("-", " ")},
            {"proposal_ids": [p1], "voting_code": b},  # the same form twice
            {"proposal_ids": [p1], "voting_code": "AAAA-BBBB-CCCC-DDDD"},
            {"proposal_ids": [99_999], "voting_code": c},  # invalid: keeps its code free
        ],
    }
    batch = enter(client, process.id, body, actors.moderator).json()
    done = confirm(client, batch["id"], body, actors.admin)
    assert done.status_code == 200, done.text
    assert [(x["status"], x["reason"]) for x in done.json()["ballots"]] == [
        ("duplicate", "code_used"),
        ("valid", None),
        ("duplicate", "code_used"),
        ("invalid", "invalid_code"),
        ("invalid", "unknown_proposal"),
    ]
    assert len(paper_rows(session, process.id)) == 1
    late = make_user(session)
    late_headers = auth(late, client.app.state.signing_key)  # type: ignore[attr-defined]
    assert_problem(claim(client, process.id, b, late_headers), 409, "code_used")
    assert claim(client, process.id, c, late_headers).status_code == 200
    # A later batch cannot reuse a code taken on paper.
    again = {"source": "Wijkcentrum, again", "ballots": [{"proposal_ids": [p2], "voting_code": b}]}
    second = enter(client, process.id, again, actors.moderator).json()
    assert second["counts"]["duplicate"] == 1
    assert confirm(client, second["id"], again, actors.admin).json()["counts"]["duplicate"] == 1
    assert len(paper_rows(session, process.id)) == 1


def test_a_process_may_require_codes_on_paper_forms(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(
        session, actors.author.user, eligibility={"require_voting_code_on_paper": True}
    )
    (code,) = generate(client, process.id, 1, actors.admin.headers)
    p1 = ids(proposals)[0]
    body = {
        "source": "Stadhuis",
        "ballots": [{"proposal_ids": [p1]}, {"proposal_ids": [p1], "voting_code": code}],
    }
    batch = enter(client, process.id, body, actors.moderator).json()
    assert [(x["status"], x["reason"]) for x in batch["ballots"]] == [
        ("invalid", "voting_code_required"),
        ("valid", None),
    ]
    shown = client.get(f"{API}/processes/{process.id}", headers=actors.admin.headers).json()
    assert shown["eligibility"]["require_voting_code_on_paper"] is True


def test_bad_entries_are_refused_whole_and_change_nothing(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    p1 = ids(proposals)[0]
    foreign = {"source": "S", "ballots": [{"proposal_ids": [p1]}, {"points": {str(p1): 3}}]}
    body = assert_problem(
        enter(client, process.id, foreign, actors.moderator), 422, "validation_error"
    )
    assert body["errors"][0]["loc"][:3] == ["body", "ballots", 1]
    for bad in (
        {"source": "S", "ballots": []},
        {"source": "", "ballots": [{"proposal_ids": [p1]}]},
        {"source": "S", "ballots": [{"proposal_ids": [p1], "extra": 1}]},
        {"source": "S\nT", "ballots": [{"proposal_ids": [p1]}]},
    ):
        assert_problem(enter(client, process.id, bad, actors.moderator), 422, "validation_error")
    assert count_rows(session, PaperBatch) == 0
    assert_problem(
        client.post(
            f"{API}/paper-batches/2147483648/confirm", json=foreign, headers=actors.admin.headers
        ),
        404,
        "not_found",
    )
    good = {"source": "S", "ballots": [{"proposal_ids": [p1]}]}
    assert_problem(
        client.get(f"{API}/paper-batches/2147483647", headers=actors.admin.headers),
        404,
        "not_found",
    )
    assert_problem(confirm(client, 2_147_483_647, good, actors.admin), 404, "not_found")


def test_phases_and_publication_bound_every_change(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user, phase=Phase.review)
    p1 = ids(proposals)[0]
    body = {"source": "S", "ballots": [{"proposal_ids": [p1]}]}
    assert_problem(enter(client, process.id, body, actors.moderator), 409, "invalid_phase")
    draft, _ = make_voting_process(session, actors.author.user, phase=Phase.draft)
    assert_problem(enter(client, draft.id, body, actors.moderator), 404, "not_found")
    row = session.get(Process, process.id)
    assert row is not None
    row.phase = Phase.closed
    session.add(row)
    session.commit()
    entered = enter(client, process.id, body, actors.moderator)  # closed: still allowed
    assert entered.status_code == 201
    pending = enter(client, process.id, body, actors.moderator).json()
    assert confirm(client, entered.json()["id"], body, actors.admin).status_code == 200
    publish = f"{API}/processes/{process.id}/results"
    assert_problem(client.post(publish, headers=actors.admin.headers), 409, "paper_batches_pending")
    voided = client.post(
        f"{API}/paper-batches/{pending['id']}/void",
        json={"reason": "keyed by mistake"},
        headers=actors.admin.headers,
    )
    assert voided.status_code == 200, voided.text
    published = client.post(publish, headers=actors.admin.headers)
    assert published.status_code == 201, published.text
    assert published.json()["ballots_by_channel"] == {"online": 0, "paper": 1}
    assert_problem(
        enter(client, process.id, body, actors.moderator), 409, "results_already_published"
    )
    assert_problem(
        confirm(client, pending["id"], body, actors.admin), 409, "results_already_published"
    )
    void = client.post(
        f"{API}/paper-batches/{entered.json()['id']}/void",
        json={"reason": "x"},
        headers=actors.admin.headers,
    )
    assert_problem(void, 409, "results_already_published")


def test_results_digest_and_export_include_confirmed_paper_ballots_only(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    p1, p2, p3, p4 = ids(proposals)
    for voter, choice in ((actors.resident, [p1]), (actors.author, [p1, p3])):
        cast = client.put(
            f"{API}/processes/{process.id}/ballot",
            json={"proposal_ids": choice},
            headers=voter.headers,
        )
        assert cast.status_code == 200
    counted = {
        "source": "Stadhuis",
        "ballots": [
            {"proposal_ids": [p4]},
            {"proposal_ids": [p4, p3]},
            {"proposal_ids": [p4, 99_999]},
        ],
    }
    batch = enter(client, process.id, counted, actors.moderator).json()
    assert confirm(client, batch["id"], counted, actors.admin).status_code == 200
    unconfirmed = {"source": "Bieb", "ballots": [{"proposal_ids": [p2]}] * 5}
    never = enter(client, process.id, unconfirmed, actors.moderator).json()
    closed = client.post(
        f"{API}/processes/{process.id}/transition",
        json={"to": "closed"},
        headers=actors.admin.headers,
    )
    assert closed.status_code == 200
    voided = client.post(
        f"{API}/paper-batches/{never['id']}/void",
        json={"reason": "the box was opened early"},
        headers=actors.admin.headers,
    )
    assert voided.status_code == 200, voided.text
    results = client.post(
        f"{API}/processes/{process.id}/results", headers=actors.admin.headers
    ).json()
    assert results["ballot_count"] == 4
    assert results["ballots_by_channel"] == {"online": 2, "paper": 2}
    assert results["paper_rejected"] == {"invalid": 1, "duplicate": 0}
    votes = {p["proposal_id"]: p["votes"] for p in results["projects"]}
    assert votes == {p1: 2, p2: 0, p3: 2, p4: 2}
    pb = client.get(f"{API}/processes/{process.id}/results.pb").text
    assert "num_votes;4" in pb
    assert recompute_digest(pb, results["rule"], results["selected_ids"]) == results["digest"]
    assert client.get(f"{API}/processes/{process.id}/results").json() == results
    # Receipts stay online only: the paper rows carry none.
    assert all(r.receipt is None for r in paper_rows(session, process.id))


def test_voiding_removes_the_ballots_frees_the_codes_and_is_audited(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    p1 = ids(proposals)[0]
    (code,) = generate(client, process.id, 1, actors.admin.headers)
    body = {"source": "Box 9", "ballots": [{"proposal_ids": [p1], "voting_code": code}]}
    batch = enter(client, process.id, body, actors.moderator).json()
    assert confirm(client, batch["id"], body, actors.admin).status_code == 200
    assert len(paper_rows(session, process.id)) == 1
    url = f"{API}/paper-batches/{batch['id']}/void"
    assert_problem(
        client.post(url, json={"reason": "wrong box"}, headers=actors.moderator.headers),
        403,
        "forbidden",
    )
    assert_problem(client.post(url, json={}, headers=actors.admin.headers), 422, "validation_error")
    voided = client.post(
        url, json={"reason": "entered in the wrong process"}, headers=actors.admin.headers
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "voided"
    assert voided.json()["void_reason"] == "entered in the wrong process"
    assert paper_rows(session, process.id) == []
    session.commit()
    row = session.exec(select(VotingCode).where(VotingCode.process_id == process.id)).one()
    assert row.claimed_at is None
    assert row.paper_batch_id is None
    assert_problem(
        client.post(url, json={"reason": "again"}, headers=actors.admin.headers),
        409,
        "invalid_status",
    )
    assert_problem(confirm(client, batch["id"], body, actors.admin), 409, "invalid_status")
    # The freed code counts again when the forms are entered as a new batch.
    redo = enter(client, process.id, body, actors.moderator).json()
    assert redo["counts"]["valid"] == 1
    session.commit()
    entries = session.exec(
        select(AuditEntry)
        .where(AuditEntry.target_type == "paper_batch")
        .order_by(col(AuditEntry.id))
    ).all()
    assert [(e.action, e.actor_id) for e in entries] == [
        ("paper_batch.entered", actors.moderator.id),
        ("paper_batch.confirmed", actors.admin.id),
        ("paper_batch.voided", actors.admin.id),
        ("paper_batch.entered", actors.moderator.id),
    ]
    assert entries[2].after is not None
    assert entries[2].after["reason"] == "entered in the wrong process"
    assert entries[2].after["ballots_removed"] == 1
    assert entries[2].after["codes_freed"] == 1


def test_sealing_keeps_paper_ballots_and_their_channel(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    p1, p2, *_ = ids(proposals)
    body = {"source": "S", "ballots": [{"proposal_ids": [p1]}, {"proposal_ids": [p1]}]}
    batch = enter(client, process.id, body, actors.moderator).json()
    assert confirm(client, batch["id"], body, actors.admin).status_code == 200
    client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [p2]},
        headers=actors.resident.headers,
    )
    client.post(
        f"{API}/processes/{process.id}/transition",
        json={"to": "closed"},
        headers=actors.admin.headers,
    )
    client.post(f"{API}/processes/{process.id}/results", headers=actors.admin.headers)
    before = client.get(f"{API}/processes/{process.id}/results.pb").text
    sealed = client.post(f"{API}/processes/{process.id}/seal", headers=actors.admin.headers)
    assert sealed.status_code == 200, sealed.text
    assert len(paper_rows(session, process.id)) == 2
    assert client.get(f"{API}/processes/{process.id}/results.pb").text == before
