"""Per-resident state and errors a UI can act on (contract v1.1): `GET /processes/{id}/me`,
`supported_by_me`, `GET /users/me/proposals`, `GET /users`, and the machine members of
`not_eligible`, `voting_closed` and validation problems."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.base import utcnow
from app.models.process import Phase
from app.models.proposal import ProposalStatus
from app.models.user import Role
from tests.api.conftest import Actors
from tests.factories import auth, make_process, make_proposal, make_user, make_voting_process
from tests.helpers import API, assert_problem

NEW = {"title": "A bench", "summary": "Somewhere to sit.", "estimated_cost": 500}


def me(client: TestClient, process_id: int | None, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{API}/processes/{process_id}/me", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(client: TestClient, process_id: int | None, headers: dict[str, str]) -> list[str]:
    response = client.post(
        f"{API}/processes/{process_id}/voting-codes", json={"count": 2}, headers=headers
    )
    assert response.status_code == 201, response.text
    lines: list[str] = response.text.splitlines()
    return lines[1:]


# --- GET /processes/{id}/me ---------------------------------------------------------------


def test_me_needs_a_token_and_hides_drafts(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session)
    assert_problem(client.get(f"{API}/processes/{process.id}/me"), 401, "not_authenticated")
    bad = {"Authorization": "Bearer not-a-token"}
    assert_problem(
        client.get(f"{API}/processes/{process.id}/me", headers=bad), 401, "not_authenticated"
    )
    draft = make_process(session, phase=Phase.draft)
    for who in (actors.resident, actors.moderator):
        assert_problem(
            client.get(f"{API}/processes/{draft.id}/me", headers=who.headers), 404, "not_found"
        )
    assert me(client, draft.id, actors.admin.headers)["reasons"] == ["phase"]
    assert_problem(
        client.get(f"{API}/processes/999999/me", headers=actors.resident.headers), 404, "not_found"
    )


def test_me_in_submission(
    client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process = make_process(session, eligibility={"postcode_prefixes": ["9713"], "min_age": 16})
    assert me(client, process.id, actors.resident.headers) == {
        "can_submit": True,
        "can_vote": False,
        "reasons": [],
        "has_ballot": False,
        "voting_code_required": False,
        "voting_code_claimed": False,
    }
    assert me(client, process.id, actors.outsider.headers)["reasons"] == ["postcode"]
    # Every reason at once, in the contract's order; moderators and admins are residents too.
    nobody = make_user(session, role=Role.admin, postcode=None, birth_year=None)
    state = me(client, process.id, auth(nobody, settings.signing_key()))
    assert (state["can_submit"], state["reasons"]) == (False, ["postcode", "age"])


def test_me_in_voting_with_a_code_and_a_ballot(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposals = make_voting_process(
        session,
        actors.author.user,
        eligibility={"require_voting_code": True, "postcode_prefixes": ["9713"]},
    )
    before = me(client, process.id, actors.resident.headers)
    assert before == {
        "can_submit": False,
        "can_vote": False,
        "reasons": ["voting_code"],
        "has_ballot": False,
        "voting_code_required": True,
        "voting_code_claimed": False,
    }
    # The cast refuses with the same reasons, as codes.
    cast = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[0].id]},
        headers=actors.resident.headers,
    )
    assert assert_problem(cast, 403, "not_eligible")["reasons"] == ["voting_code"]
    code = codes(client, process.id, actors.admin.headers)[0]
    claimed = client.post(
        f"{API}/processes/{process.id}/voting-codes/claim",
        json={"code": code},
        headers=actors.resident.headers,
    )
    assert claimed.status_code == 200, claimed.text
    middle = me(client, process.id, actors.resident.headers)
    assert (middle["can_vote"], middle["reasons"], middle["voting_code_claimed"]) == (
        True,
        [],
        True,
    )
    cast = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[0].id]},
        headers=actors.resident.headers,
    )
    assert cast.status_code == 200, cast.text
    assert me(client, process.id, actors.resident.headers)["has_ballot"] is True
    # An outsider without a code: both reasons.
    outsider = me(client, process.id, actors.outsider.headers)
    assert outsider["reasons"] == ["postcode", "voting_code"]


@pytest.mark.parametrize(
    ("phase", "window"),
    [
        (Phase.review, {}),
        (Phase.closed, {}),
        (Phase.voting, {"voting_opens_at": utcnow() + timedelta(days=2)}),
        (Phase.voting, {"voting_closes_at": utcnow() - timedelta(days=1)}),
    ],
)
def test_me_outside_submission_and_open_voting_says_phase(
    client: TestClient, actors: Actors, session: Session, phase: Phase, window: dict[str, Any]
) -> None:
    process = make_process(
        session, phase=phase, eligibility={"postcode_prefixes": ["9713"]}, **window
    )
    state = me(client, process.id, actors.resident.headers)
    assert (state["can_submit"], state["can_vote"], state["reasons"]) == (False, False, ["phase"])
    # Before voting, a resident also learns what else is missing.
    assert me(client, process.id, actors.outsider.headers)["reasons"] == ["postcode", "phase"]


def test_submission_not_eligible_lists_every_reason(
    client: TestClient, session: Session, settings: Settings
) -> None:
    process = make_process(session, eligibility={"postcode_prefixes": ["9713"], "min_age": 16})
    young_outsider = make_user(session, postcode="1011AB", birth_year=None)
    headers = auth(young_outsider, settings.signing_key())
    response = client.post(f"{API}/processes/{process.id}/proposals", json=NEW, headers=headers)
    body = assert_problem(response, 403, "not_eligible")
    assert body["reasons"] == ["postcode", "age"]
    assert body["reasons"] == me(client, process.id, headers)["reasons"]
    assert "9713" in body["detail"]


# --- voting_closed carries its reason and window ------------------------------------------


def test_claiming_after_close_says_closed_with_the_window(
    client: TestClient, actors: Actors, session: Session
) -> None:
    closes = utcnow() - timedelta(hours=1)
    process, _ = make_voting_process(
        session,
        actors.author.user,
        eligibility={"require_voting_code": True},
        voting_closes_at=closes,
    )
    response = client.post(
        f"{API}/processes/{process.id}/voting-codes/claim",
        json={"code": "ABCD-EFGH-JKMN-PQRS"},
        headers=actors.resident.headers,
    )
    body = assert_problem(response, 409, "voting_closed")
    assert body["reason"] == "closed"
    assert body["opens_at"] is None
    assert body["closes_at"].startswith(closes.strftime("%Y-%m-%dT%H:%M"))


def test_casting_before_the_window_says_not_open_yet(
    client: TestClient, actors: Actors, session: Session
) -> None:
    opens = utcnow() + timedelta(days=3)
    process, proposals = make_voting_process(session, actors.author.user, voting_opens_at=opens)
    response = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[0].id]},
        headers=actors.resident.headers,
    )
    body = assert_problem(response, 409, "voting_closed")
    assert (body["reason"], body["closes_at"]) == ("not_open_yet", None)
    assert body["opens_at"].startswith(opens.strftime("%Y-%m-%dT%H:%M"))


def test_field_errors_carry_type_and_limits(client: TestClient) -> None:
    response = client.post(
        f"{API}/auth/register",
        json={"email": "a@example.org", "password": "short", "display_name": "A"},
    )
    body = assert_problem(response, 422, "validation_error")
    [item] = body["errors"]
    assert item["loc"] == ["body", "password"]
    assert item["type"] == "string_too_short"
    assert item["ctx"] == {"min_length": 10}


# --- supported_by_me and the account's own proposals --------------------------------------


def test_supported_by_me_is_per_caller_and_null_when_anonymous(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process = make_process(session)
    proposal = make_proposal(session, process, actors.author.user)
    supported = client.post(
        f"{API}/proposals/{proposal.id}/support", headers=actors.resident.headers
    )
    assert supported.status_code == 200, supported.text
    detail = f"{API}/proposals/{proposal.id}"
    listing = f"{API}/processes/{process.id}/proposals"
    assert client.get(detail).json()["supported_by_me"] is None
    assert client.get(listing).json()["items"][0]["supported_by_me"] is None
    assert client.get(detail, headers=actors.resident.headers).json()["supported_by_me"] is True
    mine = client.get(listing, headers=actors.resident.headers).json()["items"][0]
    assert mine["supported_by_me"] is True
    assert client.get(detail, headers=actors.moderator.headers).json()["supported_by_me"] is False
    assert (
        client.get(listing, headers=actors.author.headers).json()["items"][0]["supported_by_me"]
        is False
    )


def test_my_proposals_span_every_process(
    client: TestClient, actors: Actors, session: Session
) -> None:
    first = make_process(session, title="First")
    second = make_process(session, phase=Phase.closed, title="Second")
    own = [
        make_proposal(session, first, actors.author.user, title="Mine 1"),
        make_proposal(
            session, second, actors.author.user, status=ProposalStatus.withdrawn, title="Mine 2"
        ),
    ]
    make_proposal(session, first, actors.resident.user, title="Not mine")
    assert_problem(client.get(f"{API}/users/me/proposals"), 401, "not_authenticated")
    page = client.get(f"{API}/users/me/proposals", headers=actors.author.headers).json()
    assert page["total"] == 2
    assert {p["id"] for p in page["items"]} == {p.id for p in own}
    assert {p["process_id"] for p in page["items"]} == {first.id, second.id}
    assert all(p["supported_by_me"] is False for p in page["items"])
    one = client.get(f"{API}/users/me/proposals?limit=1&offset=1", headers=actors.author.headers)
    assert (one.json()["total"], len(one.json()["items"])) == (2, 1)
    none = client.get(f"{API}/users/me/proposals", headers=actors.moderator.headers).json()
    assert (none["total"], none["items"]) == (0, [])


# --- GET /users (admin) -------------------------------------------------------------------


def test_only_admins_list_accounts(client: TestClient, actors: Actors) -> None:
    assert_problem(client.get(f"{API}/users"), 401, "not_authenticated")
    for who in (actors.resident, actors.moderator):
        assert_problem(client.get(f"{API}/users", headers=who.headers), 403, "forbidden")
    page = client.get(f"{API}/users", headers=actors.admin.headers)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] == 5
    assert [u["id"] for u in body["items"]] == sorted(u["id"] for u in body["items"])
    assert "password_hash" not in body["items"][0]


def test_admins_search_accounts_by_email_name_and_role(
    client: TestClient, actors: Actors, session: Session
) -> None:
    target = make_user(session, email="jan.de.boer@example.org", display_name="Jan")
    make_user(session, email="x100%@example.org", display_name="Percent")

    def ids(query: str) -> list[int]:
        response = client.get(f"{API}/users?{query}", headers=actors.admin.headers)
        assert response.status_code == 200, response.text
        return [u["id"] for u in response.json()["items"]]

    assert ids("q=DE.BOER") == [target.id]
    assert ids("q=jan") == [target.id]
    assert ids("q=%25") == [ids("q=percent")[0]]  # a literal %, not a wildcard
    assert ids("role=moderator") == [actors.moderator.id]
    assert ids("role=admin&q=admin") == [actors.admin.id]
    assert ids("role=admin&q=jan") == []
    assert_problem(
        client.get(f"{API}/users?role=king", headers=actors.admin.headers), 422, "validation_error"
    )
    # The id found is what the role change needs.
    promoted = client.patch(
        f"{API}/users/{target.id}/role", json={"role": "moderator"}, headers=actors.admin.headers
    )
    assert promoted.status_code == 200, promoted.text
    assert ids("role=moderator&q=boer") == [target.id]
