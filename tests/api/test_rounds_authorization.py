"""Who may do what with rounds: every new endpoint x (anonymous, resident, moderator, admin).

Each call targets a round whose processes are in a phase where the action is possible, so
the status shows the permission alone.
"""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.process import Phase
from tests.api.conftest import Actors
from tests.factories import make_process, make_round
from tests.helpers import API

ROLES = ("anonymous", "resident", "moderator", "admin")
NEW_ROUND = {"title": "T", "groups": [{"name": "Districts", "max_processes_per_voter": 1}]}

# endpoint: (method, path template, body, phase of the round's process, status per role)
TABLE: dict[str, tuple[str, str, Any, Phase, tuple[int, ...]]] = {
    "create round": ("post", "/rounds", NEW_ROUND, Phase.submission, (401, 403, 403, 201)),
    "list rounds": ("get", "/rounds", None, Phase.submission, (200, 200, 200, 200)),
    "show round": ("get", "/rounds/{round}", None, Phase.submission, (200, 200, 200, 200)),
    "delete round": ("delete", "/rounds/{round}", None, Phase.draft, (401, 403, 403, 204)),
    "move round": ("post", "/rounds/{round}/transition", {"to": "review"}, Phase.submission, (401, 403, 403, 200)),
    "own standing": ("get", "/rounds/{round}/me", None, Phase.voting, (401, 200, 200, 200)),
    "round results": ("get", "/rounds/{round}/results", None, Phase.closed, (200, 200, 200, 200)),
    "place a process": ("patch", "/processes/{other}", {"group_id": "{group}"}, Phase.draft, (401, 403, 403, 200)),
}  # fmt: skip

CELLS = [
    pytest.param(name, role, expected[i], id=f"{name}-{role}")
    for name, (_m, _p, _b, _ph, expected) in TABLE.items()
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("endpoint", "role", "expected"), CELLS)
def test_permission(
    client: TestClient, actors: Actors, session: Session, endpoint: str, role: str, expected: int
) -> None:
    method, template, body, phase, _ = TABLE[endpoint]
    new, (group,) = make_round(session)
    make_process(session, phase=phase, round_id=new.id, group_id=group.id)
    # A process outside the round, for placing: a draft for the admin; for everyone else a
    # visible one (a draft would be 404 to them, which comes before 403).
    other = make_process(session, phase=Phase.draft if role == "admin" else Phase.submission)
    path = template.format(round=new.id, other=other.id)
    if body == {"group_id": "{group}"}:
        body = {"group_id": group.id}
    headers = {} if role == "anonymous" else getattr(actors, role).headers
    call: Callable[..., Any] = getattr(client, method)
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    response = call(f"{API}{path}", **kwargs)
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.json()["code"] == {401: "not_authenticated", 403: "forbidden"}[expected]
