"""Explained results: explanations and fairness in the published document, the results page
and chart, old documents without explanations, and the what-if tally of a pabulib file."""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.result import PublishedResult, Results
from app.services import pabulib
from app.services.results_page import choose_language
from app.services.results_page_text import TEXT
from app.services.tally import explain_greedy, explain_mes
from tests.api.conftest import Actors
from tests.api.test_results import cast_all, close, voters
from tests.factories import make_voting_process
from tests.helpers import API, assert_problem


def published_process(
    client: TestClient, actors: Actors, session: Session, settings: Settings, rule: str = "greedy"
) -> tuple[int, list[int], dict[str, Any]]:
    process, proposals = make_voting_process(
        session,
        actors.author.user,
        costs=(10_000, 8_000, 5_000, 2_000, 1_000),
        budget=20_000,
        tally_rule=rule,
        title="Oosterpark <2026>",
    )
    ids = [p.id for p in proposals]
    assert all(ids)
    p1, p2, p3, p4, _p5 = ids
    crowd = voters(session, settings, 5)
    choices = [[p1, p2], [p1], [p2, p3], [p4], [p1, p3, p4]]
    cast_all(client, process.id, crowd, choices)
    base = f"{API}/processes/{process.id}"
    for suffix in ("results.html", "results.svg"):
        assert_problem(client.get(f"{base}/{suffix}"), 404, "results_not_published")
    close(client, process.id, actors.admin)
    published = client.post(f"{base}/results", headers=actors.admin.headers)
    assert published.status_code == 201, published.text
    assert process.id is not None
    return process.id, [i for i in ids if i is not None], published.json()


def test_published_results_explain_both_rules(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process_id, (p1, p2, p3, p4, p5), body = published_process(client, actors, session, settings)
    # votes p1 3, p2 2, p3 2, p4 2, p5 0: greedy order p1, p4, p3, p2, p5; budget 20,000
    greedy = body["rules"]["greedy"]["explanations"]
    assert greedy[str(p1)] == {
        "outcome": "selected",
        "budget_left_when_considered": 20_000,
        "would_win_at_cost": None,
    }
    assert greedy[str(p4)]["budget_left_when_considered"] == 10_000
    assert greedy[str(p3)]["budget_left_when_considered"] == 8_000
    # p2 (8,000) meets 3,000 left. At 5,000 it ties p3 on votes and cost and goes first
    # (lower id), after p1 and p4: 8,000 left, so it wins; above 5,000 it comes after p3
    # with 3,000 left.
    assert greedy[str(p2)] == {
        "outcome": "did_not_fit",
        "budget_left_when_considered": 3_000,
        "would_win_at_cost": 5_000,
    }
    assert greedy[str(p5)] == {"outcome": "no_votes", "would_win_at_cost": None}
    # The project items carry the official rule's explanation.
    by_id = {p["proposal_id"]: p for p in body["projects"]}
    assert by_id[p1]["explanation"] == greedy[str(p1)]
    assert by_id[p2]["explanation"] == greedy[str(p2)]
    mes = body["rules"]["mes"]["explanations"]
    assert set(mes) == {str(i) for i in (p1, p2, p3, p4, p5)}
    for pid in body["rules"]["mes"]["selected_ids"]:
        e = mes[str(pid)]
        assert e["outcome"] == "selected"
        num, den = (int(x) for x in e["price_per_support"]["fraction"].split("/"))
        assert e["price_per_support"]["decimal"] == pytest.approx(num / den)
        assert e["supporters_paid_in_full"] + e["supporters_paid_all_they_had"] >= 1
    for pid, e in mes.items():
        if e["outcome"] == "underfunded":
            assert set(e) == {
                "outcome",
                "supporters_money_left",
                "shortfall",
                "would_win_at_cost",
            }
            cost = by_id[int(pid)]["cost"]
            assert e["supporters_money_left"] + e["shortfall"] == pytest.approx(cost)
    # Fairness: ballots by funded choices; shares of chosen cost that is funded.
    fairness = body["rules"]["greedy"]["fairness"]
    # funded p1, p4, p3: ballots [p1,p2] 1, [p1] 1, [p2,p3] 1, [p4] 1, [p1,p3,p4] 3
    assert fairness["funded_choices_histogram"] == {"0": 0, "1": 4, "2": 0, "3": 1}
    shares = [10 / 18, 1, 5 / 13, 1, 1]
    mean = sum(shares) / 5
    assert fairness["mean_funded_share"] == round(mean, 4)
    gini = sum(abs(a - b) for a in shares for b in shares) / (2 * 25 * mean)
    assert fairness["gini_funded_share"] == round(gini, 4)
    # Served from storage, the same.
    assert client.get(f"{API}/processes/{process_id}/results").json() == body


def test_results_published_before_explanations_still_read(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process_id, _, body = published_process(client, actors, session, settings)
    row = session.get(PublishedResult, process_id)
    assert row is not None
    old = dict(row.document)
    old["projects"] = [{k: v for k, v in p.items() if k != "explanation"} for p in old["projects"]]
    old["rules"] = {
        name: {k: v for k, v in r.items() if k not in ("explanations", "fairness")}
        for name, r in old["rules"].items()
    }
    row.document = old
    session.add(row)
    session.commit()
    assert Results.model_validate(old).rules["greedy"].explanations is None
    shown = client.get(f"{API}/processes/{process_id}/results")
    assert shown.status_code == 200
    assert shown.json()["projects"][0]["explanation"] is None
    page = client.get(f"{API}/processes/{process_id}/results.html?lang=en")
    assert page.status_code == 200
    assert TEXT["en"]["explanations_missing"] in page.text
    assert body["digest"] in page.text


def test_results_page_and_chart(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process_id, _, body = published_process(client, actors, session, settings, rule="mes")
    base = f"{API}/processes/{process_id}"
    page = client.get(f"{base}/results.html")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-language"] == "nl"
    assert "Accept-Language" in page.headers["vary"]
    assert '<html lang="nl">' in page.text
    assert "Uitslag: Oosterpark &lt;2026&gt;" in page.text  # escaped
    assert "<script" not in page.text
    assert body["digest"] in page.text
    for link in ('href="results.csv"', 'href="results.pb"', 'href="results"'):
        assert link in page.text
    assert page.text.count("<caption>") == 3
    assert "Methode van Gelijke Delen" in page.text
    english = client.get(f"{base}/results.html", headers={"Accept-Language": "en-GB,nl;q=0.5"})
    assert '<html lang="en">' in english.text
    assert "Why did a project win or lose?" in english.text
    assert "€\u00a010,000" in english.text
    assert "€\u00a010.000" in page.text
    forced = client.get(f"{base}/results.html?lang=nl", headers={"Accept-Language": "en"})
    assert '<html lang="nl">' in forced.text
    assert_problem(client.get(f"{base}/results.html?lang=de"), 422, "validation_error")
    chart = client.get(f"{base}/results.svg?lang=en")
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/svg+xml"
    assert chart.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns=')
    assert "<title" in chart.text
    assert "<desc" in chart.text
    assert len(re.findall(r"<rect [^>]*height=\"16\"", chart.text)) == 2 * len(body["projects"])
    assert_problem(client.get(f"{API}/processes/999999/results.html"), 404, "not_found")


def test_choose_language() -> None:
    assert choose_language(None, None) == "nl"
    assert choose_language("en", "nl") == "en"
    assert choose_language(None, "de-DE, en;q=0.8, nl;q=0.9") == "nl"
    assert choose_language(None, "en-US,en;q=0.9") == "en"
    assert choose_language(None, "nl;q=0, en;q=0.1") == "en"
    assert choose_language(None, "fr, de") == "nl"
    assert choose_language(None, "en;q=abc") == "nl"


def test_page_text_has_every_key_in_both_languages() -> None:
    assert set(TEXT) == {"nl", "en"}
    assert set(TEXT["nl"]) == set(TEXT["en"])
    for key in TEXT["nl"]:
        fields = {lang: set(re.findall(r"{(\w+)}", TEXT[lang][key])) for lang in ("nl", "en")}
        assert fields["nl"] == fields["en"], key


SMALL_PB = """META
key;value
description;Test
num_projects;3
num_votes;4
budget;10
vote_type;approval
rule;greedy
PROJECTS
project_id;cost;votes
a;6;3
b;5;2
c;4;2
VOTES
voter_id;vote
1;a,b
2;a,b
3;a,c
4;c
"""


def test_what_if_tally_of_a_pabulib_file(client: TestClient) -> None:
    response = client.post(
        f"{API}/analysis/tally", content=SMALL_PB, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["budget"] == 10
    assert set(body["rules"]) == {"greedy", "mes"}
    greedy = body["rules"]["greedy"]
    assert greedy["selected_ids"] == ["a", "c"]
    assert greedy["spent"] == 10
    assert greedy["explanations"]["b"] == {
        "outcome": "did_not_fit",
        "budget_left_when_considered": 0,
        "would_win_at_cost": 4,
    }
    election = pabulib.parse(SMALL_PB).election()
    assert greedy["explanations"]["b"]["would_win_at_cost"] == (
        explain_greedy(election)[1][1].would_win_at_cost
    )
    mes = body["rules"]["mes"]
    assert mes["selected_ids"] == [["a", "b", "c"][i] for i in explain_mes(election)[0].selected]
    assert mes["fairness"]["funded_choices_histogram"]
    # multipart gives the same answer
    upload = client.post(
        f"{API}/analysis/tally", files={"file": ("x.pb", SMALL_PB.encode(), "text/plain")}
    )
    assert upload.json() == body


def test_what_if_tally_refuses_bad_files_with_the_line(client: TestClient) -> None:
    bad = SMALL_PB.replace("a;6;3", "a;six;3")
    problem = assert_problem(
        client.post(f"{API}/analysis/tally", content=bad), 422, "invalid_pabulib"
    )
    assert problem["line"] == 11
    not_utf8 = SMALL_PB.encode().replace(b"b;5;2", b"b;5;2\xff")
    problem = assert_problem(
        client.post(f"{API}/analysis/tally", content=not_utf8), 422, "invalid_pabulib"
    )
    assert problem["line"] == 12


def test_what_if_tally_limits(database_url: str) -> None:
    from app.main import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        database_url, analysis_max_per_address=2, analysis_max_votes=3, max_body_bytes=1024
    )
    with TestClient(create_app(settings)) as client:
        # Above MAX_BODY_BYTES but within its own limit: read, and refused for its 4 votes.
        padded = SMALL_PB + "\n" * 2000
        refused = assert_problem(
            client.post(f"{API}/analysis/tally", content=padded), 413, "payload_too_large"
        )
        assert "4 votes" in refused["detail"]
        three = SMALL_PB.replace("4;c\n", "").replace("num_votes;4", "num_votes;3")
        assert client.post(f"{API}/analysis/tally", content=three).status_code == 200
        # The third analysis from this address within the window is refused.
        assert_problem(
            client.post(f"{API}/analysis/tally", content=three), 429, "too_many_attempts"
        )
        # Other paths keep the global limit.
        assert_problem(
            client.post(f"{API}/auth/register", content="x" * 2000), 413, "payload_too_large"
        )
    big = make_settings(database_url, analysis_max_bytes=2048)
    with TestClient(create_app(big)) as client:
        assert_problem(
            client.post(f"{API}/analysis/tally", content=SMALL_PB + "\n" * 3000),
            413,
            "payload_too_large",
        )
