"""Results: previews, publication once, exports that anyone can recompute."""

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.process import Phase, Process
from app.services import pabulib
from app.services.tally import greedy, mes
from tests.api.conftest import Actor, Actors
from tests.factories import auth, make_user, make_voting_process
from tests.helpers import API, assert_problem, checker_errors, recompute_digest


def cast_all(
    client: TestClient, process_id: int | None, voters: list[Actor], choices: list[list[int | None]]
) -> list[str]:
    receipts = []
    for voter, choice in zip(voters, choices, strict=True):
        response = client.put(
            f"{API}/processes/{process_id}/ballot",
            json={"proposal_ids": choice},
            headers=voter.headers,
        )
        assert response.status_code == 200, response.text
        receipts.append(response.json()["receipt"])
    return receipts


def close(client: TestClient, process_id: int | None, admin: Actor) -> None:
    response = client.post(
        f"{API}/processes/{process_id}/transition", json={"to": "closed"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text


def voters(session: Session, settings: Settings, count: int) -> list[Actor]:
    key = settings.signing_key()
    made = [make_user(session) for _ in range(count)]
    return [Actor(user=user, headers=auth(user, key)) for user in made]


def test_publish_once_and_recompute_from_the_export(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process, (p1, p2, p3, p4) = make_voting_process(
        session,
        actors.author.user,
        costs=(10_000, 8_000, 5_000, 2_000),
        budget=20_000,
        voting_opens_at="2026-10-01T08:00:00Z",
    )
    crowd = voters(session, settings, 5)
    choices = [[p1.id, p2.id], [p1.id], [p2.id, p3.id], [p4.id], [p1.id, p3.id, p4.id]]
    receipts = cast_all(client, process.id, crowd, choices)
    replaced = receipts[0]
    receipts[0] = cast_all(client, process.id, crowd[:1], [[p1.id, p2.id]])[0]
    base = f"{API}/processes/{process.id}"
    for suffix in ("results", "results.csv", "results.pb"):
        assert_problem(client.get(f"{base}/{suffix}"), 404, "results_not_published")
    assert_problem(
        client.post(f"{base}/results", headers=actors.admin.headers), 409, "invalid_phase"
    )
    close(client, process.id, actors.admin)
    preview = client.get(f"{base}/tally", headers=actors.moderator.headers).json()
    assert preview["published"] is False
    assert_problem(
        client.post(f"{base}/results", headers=actors.moderator.headers), 403, "forbidden"
    )
    published = client.post(f"{base}/results", headers=actors.admin.headers)
    assert published.status_code == 201, published.text
    body = published.json()
    assert body["published"] is True
    assert body["published_at"].endswith("Z")
    assert_problem(
        client.post(f"{base}/results", headers=actors.admin.headers),
        409,
        "results_already_published",
    )
    assert client.get(f"{base}/results").json() == body
    assert {k: v for k, v in preview.items() if k not in ("published", "published_at")} == {
        k: v for k, v in body.items() if k not in ("published", "published_at")
    }
    # votes: p1 3, p2 2, p3 2, p4 2 -> greedy order p1, p4 (cheapest of the 2s), p3, p2
    assert [p["proposal_id"] for p in body["projects"]] == [p1.id, p4.id, p3.id, p2.id]
    assert [p["rank"] for p in body["projects"]] == [1, 2, 3, 4]
    assert body["selected_ids"] == [p1.id, p4.id, p3.id]
    assert (body["spent"], body["remaining"], body["ballot_count"]) == (17_000, 3_000, 5)
    shares = ("selected_ids", "spent", "voters_with_a_funded_choice", "funded_choices_per_voter")
    assert {k: body["rules"]["greedy"][k] for k in shares} == {
        "selected_ids": [p1.id, p4.id, p3.id],
        "spent": 17_000,
        "voters_with_a_funded_choice": 1.0,
        "funded_choices_per_voter": 1.4,  # 1 + 1 + 1 + 1 + 3 over 5
    }
    assert set(body["rules"]) == {"greedy", "mes"}
    # The export: anyone recomputes the outcome and the digest from it.
    pb_text = client.get(f"{base}/results.pb").text
    election = pabulib.parse(pb_text)
    assert election.meta["rule"] == "greedy-threshold"
    assert election.meta["instance"] == "2026"
    assert sorted(election.voter_ids) == ["1", "2", "3", "4", "5"]
    ids = [int(p.project_id) for p in election.projects]
    assert sorted(ids[i] for i in greedy(election.election()).selected) == sorted(
        body["selected_ids"]
    )
    assert sorted(ids[i] for i in mes(election.election()).selected) == sorted(
        body["rules"]["mes"]["selected_ids"]
    )
    assert recompute_digest(pb_text, "greedy", body["selected_ids"]) == body["digest"]
    assert checker_errors(pb_text) == {}
    # CSV
    rows = list(csv.DictReader(io.StringIO(client.get(f"{base}/results.csv").text)))
    assert list(rows[0]) == ["rank", "proposal_id", "title", "cost", "votes", "selected"]
    assert [(r["proposal_id"], r["selected"]) for r in rows] == [
        (str(p1.id), "true"),
        (str(p4.id), "true"),
        (str(p3.id), "true"),
        (str(p2.id), "false"),
    ]
    # Receipts now say whether they were counted.
    assert client.get(f"{base}/receipts/{receipts[0]}").json() == {"current": True, "counted": True}
    assert client.get(f"{base}/receipts/{replaced}").json() == {"current": False, "counted": False}
    # Immutable: later edits do not touch what was published.
    client.patch(base, json={"title": "Renamed later"}, headers=actors.admin.headers)
    assert client.get(f"{base}/results").json() == body
    assert client.get(f"{base}/results.pb").text == pb_text


def test_results_with_no_ballots(client: TestClient, actors: Actors, session: Session) -> None:
    process, _ = make_voting_process(session, actors.author.user, tally_rule="mes")
    close(client, process.id, actors.admin)
    body = client.post(f"{API}/processes/{process.id}/results", headers=actors.admin.headers).json()
    assert (body["rule"], body["selected_ids"], body["spent"], body["ballot_count"]) == (
        "mes",
        [],
        0,
        0,
    )
    for rule in ("greedy", "mes"):
        assert body["rules"][rule]["voters_with_a_funded_choice"] == 0.0
        assert body["rules"][rule]["funded_choices_per_voter"] == 0.0


def test_mes_is_official_when_chosen_and_shares_round_half_even(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process, (p1, p2, p3, _p4) = make_voting_process(
        session, actors.author.user, costs=(3, 3, 3, 3), budget=9, tally_rule="mes"
    )
    crowd = voters(session, settings, 3)
    cast_all(client, process.id, crowd, [[p1.id, p2.id], [p1.id, p2.id], [p3.id]])
    close(client, process.id, actors.admin)
    body = client.post(f"{API}/processes/{process.id}/results", headers=actors.admin.headers).json()
    assert body["rule"] == "mes"
    assert body["selected_ids"] == body["rules"]["mes"]["selected_ids"]
    assert body["rules"]["greedy"]["selected_ids"] == [p1.id, p2.id, p3.id]
    assert body["rules"]["mes"]["voters_with_a_funded_choice"] == 1.0
    # 2 + 2 + 1 funded choices over 3 ballots = 1.66666... -> 1.6667
    assert body["rules"]["greedy"]["funded_choices_per_voter"] == 1.6667


def test_cumulative_export_has_points_and_scores(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process, (p1, p2, *_) = make_voting_process(
        session, actors.author.user, ballot={"type": "cumulative", "points": 10}
    )
    crowd = voters(session, settings, 2)
    for voter, points in zip(
        crowd, [{str(p1.id): 7, str(p2.id): 3}, {str(p2.id): 10}], strict=True
    ):
        assert (
            client.put(
                f"{API}/processes/{process.id}/ballot",
                json={"points": points},
                headers=voter.headers,
            ).status_code
            == 200
        )
    close(client, process.id, actors.admin)
    body = client.post(f"{API}/processes/{process.id}/results", headers=actors.admin.headers).json()
    votes = {p["proposal_id"]: p["votes"] for p in body["projects"]}
    assert (votes[p1.id], votes[p2.id]) == (7, 13)
    pb_text = client.get(f"{API}/processes/{process.id}/results.pb").text
    election = pabulib.parse(pb_text)
    assert election.meta["vote_type"] == "cumulative"
    assert election.meta["max_sum_points"] == "10"
    by_id = {p.project_id: p.fields for p in election.projects}
    assert (by_id[str(p2.id)]["votes"], by_id[str(p2.id)]["score"]) == ("2", "13")
    assert recompute_digest(pb_text, "greedy", body["selected_ids"]) == body["digest"]
    assert not [k for k in checker_errors(pb_text) if "rule" not in k]


def test_preview_rules(client: TestClient, actors: Actors, session: Session) -> None:
    review = make_voting_process(session, actors.author.user, phase=Phase.review)[0]
    assert_problem(
        client.get(f"{API}/processes/{review.id}/tally", headers=actors.admin.headers),
        409,
        "invalid_phase",
    )
    voting: Process = make_voting_process(session, actors.author.user)[0]
    assert_problem(
        client.get(f"{API}/processes/{voting.id}/tally", headers=actors.resident.headers),
        403,
        "forbidden",
    )
    assert_problem(client.get(f"{API}/processes/{voting.id}/tally"), 401, "not_authenticated")
    # During voting a preview would reveal single ballots (see test_preview_secrecy.py).
    assert_problem(
        client.get(f"{API}/processes/{voting.id}/tally", headers=actors.admin.headers),
        409,
        "invalid_phase",
    )
    close(client, voting.id, actors.admin)
    assert (
        client.get(f"{API}/processes/{voting.id}/tally", headers=actors.admin.headers).json()[
            "ballot_count"
        ]
        == 0
    )


def test_a_failing_publication_stores_nothing(
    client: TestClient, actors: Actors, session: Session, monkeypatch: Any
) -> None:
    from app.services import audit

    process, (p1, *_) = make_voting_process(session, actors.author.user)
    client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [p1.id]},
        headers=actors.resident.headers,
    )
    close(client, process.id, actors.admin)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full, say")

    # The failure comes after the result row was written, before the commit.
    monkeypatch.setattr(audit, "record", broken)
    failing = TestClient(client.app, raise_server_exceptions=False)
    assert_problem(
        failing.post(f"{API}/processes/{process.id}/results", headers=actors.admin.headers),
        500,
        "internal_error",
    )
    assert_problem(
        client.get(f"{API}/processes/{process.id}/results"), 404, "results_not_published"
    )
    monkeypatch.undo()
    assert (
        client.post(
            f"{API}/processes/{process.id}/results", headers=actors.admin.headers
        ).status_code
        == 201
    )
