"""Who may call the per-resident endpoints: each x (anonymous, resident, author, moderator,
admin), plus an invalid token on an optional-auth read (401, as the document says)."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.process import Phase
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API, assert_problem

ROLES = ("anonymous", "resident", "author", "moderator", "admin")

# endpoint: (path template, phase of the process, status per role in ROLES order)
TABLE: dict[str, tuple[str, Phase, tuple[int, ...]]] = {
    "own standing": ("/processes/{process}/me", Phase.submission, (401, 200, 200, 200, 200)),
    "own standing, draft": ("/processes/{process}/me", Phase.draft, (401, 404, 404, 404, 200)),
    "own proposals": ("/users/me/proposals", Phase.submission, (401, 200, 200, 200, 200)),
    "list accounts": ("/users", Phase.submission, (401, 403, 403, 403, 200)),
    "search accounts": ("/users?q=a&role=resident", Phase.submission, (401, 403, 403, 403, 200)),
}  # fmt: skip

CELLS = [
    pytest.param(name, role, expected[i], id=f"{name}-{role}")
    for name, (_p, _ph, expected) in TABLE.items()
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("endpoint", "role", "expected"), CELLS)
def test_permission(
    client: TestClient, actors: Actors, session: Session, endpoint: str, role: str, expected: int
) -> None:
    template, phase, _ = TABLE[endpoint]
    process = make_process(session, phase=phase)
    path = template.format(process=process.id)
    headers = {} if role == "anonymous" else getattr(actors, role).headers
    call: Callable[..., Any] = client.get
    response = call(f"{API}{path}", headers=headers)
    assert response.status_code == expected, response.text
    if expected >= 400:
        codes = {401: "not_authenticated", 403: "forbidden", 404: "not_found"}
        assert response.json()["code"] == codes[expected]


@pytest.mark.parametrize(
    "path",
    [
        "/processes",
        "/processes/{process}",
        "/processes/{process}/proposals",
        "/proposals/{proposal}",
    ],
)
def test_optional_auth_reads_refuse_an_invalid_token(
    client: TestClient, actors: Actors, session: Session, path: str
) -> None:
    process = make_process(session)
    proposal = make_proposal(session, process, actors.author.user)
    url = API + path.format(process=process.id, proposal=proposal.id)
    assert client.get(url).status_code == 200
    response = client.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert_problem(response, 401, "not_authenticated")
