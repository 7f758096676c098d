"""Problems in Dutch or English: `Accept-Language: nl` gives Dutch `title`, `detail` and field
`msg`, anything else English, and `Content-Language` says which."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.base import utcnow
from tests.api.conftest import Actors
from tests.factories import make_voting_process
from tests.helpers import API, assert_problem

NL = {"Accept-Language": "nl"}


def _ballot(client: TestClient, process_id: int | None, body: Any, headers: dict[str, str]) -> Any:
    return client.put(f"{API}/processes/{process_id}/ballot", json=body, headers=headers)


def test_a_domain_error_in_dutch_with_its_placeholders_filled(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, (p1, p2, p3, _) = make_voting_process(session, actors.author.user, budget=20_000)
    body = {"proposal_ids": [p1.id, p2.id, p3.id]}
    dutch = _ballot(client, process.id, body, {**actors.resident.headers, **NL})
    problem = assert_problem(dutch, 422, "budget_exceeded")
    assert dutch.headers["content-language"] == "nl"
    assert problem["title"] == "Boven het budget"
    assert problem["detail"] == "De gekozen voorstellen kosten 23000, het budget is 20000."

    english = _ballot(client, process.id, body, actors.resident.headers)
    problem = assert_problem(english, 422, "budget_exceeded")
    assert english.headers["content-language"] == "en"
    assert problem["title"] == "Over the budget"
    assert problem["detail"] == "The chosen proposals cost 23000, the budget is 20000."


def test_a_detail_built_from_translated_parts(
    client: TestClient, actors: Actors, session: Session
) -> None:
    opens = utcnow() + timedelta(hours=1)
    process, (p1, *_) = make_voting_process(session, actors.author.user, voting_opens_at=opens)
    response = _ballot(
        client, process.id, {"proposal_ids": [p1.id]}, {**actors.resident.headers, **NL}
    )
    problem = assert_problem(response, 409, "voting_closed")
    assert problem["title"] == "Stemmen is niet mogelijk"
    assert problem["detail"].startswith("Het stemmen begint op ")
    assert problem["reason"] == "not_open_yet"  # machine-readable members stay as they are

    outside = _ballot(
        client,
        make_voting_process(
            session, actors.author.user, eligibility={"postcode_prefixes": ["9713"]}
        )[0].id,
        {"proposal_ids": []},
        {**actors.outsider.headers, **NL},
    )
    problem = assert_problem(outside, 403, "not_eligible")
    assert problem["title"] == "Niet stemgerechtigd"
    assert problem["detail"] == "Dit traject is open voor postcodes die beginnen met 9713."


def test_field_messages_in_dutch(client: TestClient) -> None:
    body = {
        "email": "anna@example.org",
        "password": "short",
        "display_name": "Anna\nB.",
        "birth_year": 1800,
        "favourite": "blue",
    }
    response = client.post(f"{API}/auth/register", json=body, headers=NL)
    problem = assert_problem(response, 422, "validation_error")
    assert response.headers["content-language"] == "nl"
    assert problem["title"] == "Ongeldige invoer"
    messages = {tuple(e["loc"]): (e["type"], e["msg"]) for e in problem["errors"]}
    assert messages == {
        ("body", "password"): ("string_too_short", "Moet minstens 10 tekens bevatten"),
        ("body", "display_name"): ("value_error", "moet één regel zijn zonder stuurtekens"),
        ("body", "birth_year"): ("greater_than_equal", "Moet 1900 of meer zijn"),
        ("body", "favourite"): ("extra_forbidden", "Dit veld is niet toegestaan"),
    }
    first = problem["errors"][0]
    assert problem["detail"] == (
        f"{'.'.join(first['loc'])}: {first['msg']} (en nog {len(problem['errors']) - 1})"
    )

    english = client.post(f"{API}/auth/register", json=body)
    problem = assert_problem(english, 422, "validation_error")
    assert english.headers["content-language"] == "en"
    by_loc = {tuple(e["loc"]): e["msg"] for e in problem["errors"]}
    assert by_loc[("body", "password")] == "String should have at least 10 characters"
    assert by_loc[("body", "favourite")] == "Extra inputs are not permitted"


def test_choices_and_unparsable_json_in_dutch(client: TestClient, actors: Actors) -> None:
    response = client.patch(
        f"{API}/users/me", json={"language": "de"}, headers={**actors.resident.headers, **NL}
    )
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["msg"] == "Moet 'nl' of 'en' zijn"

    broken = client.post(
        f"{API}/auth/register",
        content=b'{"email": ',
        headers={"Content-Type": "application/json", **NL},
    )
    problem = assert_problem(broken, 422, "validation_error")
    assert problem["errors"][0]["msg"] == "Ongeldige JSON"


def test_errors_outside_the_routes_in_dutch(client: TestClient) -> None:
    missing = client.get(f"{API}/no-such-thing", headers=NL)
    problem = assert_problem(missing, 404, "not_found")
    assert (problem["title"], problem["detail"]) == ("Niet gevonden", "Niet gevonden")
    assert missing.headers["content-language"] == "nl"

    anonymous = client.get(f"{API}/users/me", headers=NL)
    problem = assert_problem(anonymous, 401, "not_authenticated")
    assert problem["title"] == "Niet ingelogd"
    assert problem["detail"].startswith("Log in en stuur het token mee")

    too_large = client.post(
        f"{API}/auth/register",
        content=b"x" * 2_000_000,
        headers={"Content-Type": "application/json", **NL},
    )
    problem = assert_problem(too_large, 413, "payload_too_large")
    assert problem["title"] == "Verzoek te groot"
    assert problem["detail"].startswith("Het verzoek is groter dan ")
    assert too_large.headers["content-language"] == "nl"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("nl", "nl"),
        ("nl-NL", "nl"),
        ("nl-BE,nl;q=0.9,en;q=0.8", "nl"),
        ("en-GB,en;q=0.9,nl;q=0.8", "en"),
        ("en;q=0.5, nl-NL;q=0.9", "nl"),
        ("fr-FR, de;q=0.9", "en"),
        ("nl;q=0, en;q=0.1", "en"),
        ("*", "en"),
        ("", "en"),
        ("garbage;;;q=x,", "en"),
    ],
)
def test_the_language_follows_accept_language(
    client: TestClient, header: str, language: str
) -> None:
    response = client.get(f"{API}/users/me", headers={"Accept-Language": header})
    problem = assert_problem(response, 401, "not_authenticated")
    assert response.headers["content-language"] == language
    assert problem["title"] == {"nl": "Niet ingelogd", "en": "Not authenticated"}[language]
