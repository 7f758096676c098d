"""Who may do what: every cell of the README's authorization table, tested.

Each endpoint is called by each kind of caller against a process in a phase where the action
is possible, so the status shows the permission alone. `author` is the resident who wrote the
proposal; every account is eligible (postcode 9713, born 1990).
"""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.process import Phase
from app.models.proposal import ProposalStatus
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API

ROLES = ("anonymous", "resident", "author", "moderator", "admin")
NEW_PROCESS = {"title": "T", "budget": 1000, "ballot": {"type": "knapsack"}}
NEW_PROPOSAL = {"title": "T", "summary": "S", "estimated_cost": 100}

# endpoint: (method, path template, body, phase, expected status per role in ROLES order)
TABLE: dict[str, tuple[str, str, Any, Phase, tuple[int, ...]]] = {
    "create process": ("post", "/processes", NEW_PROCESS, Phase.submission, (401, 403, 403, 403, 201)),
    "list processes": ("get", "/processes", None, Phase.submission, (200, 200, 200, 200, 200)),
    "show draft process": ("get", "/processes/{process}", None, Phase.draft, (404, 404, 404, 404, 200)),
    "show process": ("get", "/processes/{process}", None, Phase.submission, (200, 200, 200, 200, 200)),
    "edit process": ("patch", "/processes/{process}", {"title": "New"}, Phase.submission, (401, 403, 403, 403, 200)),
    "transition": ("post", "/processes/{process}/transition", {"to": "review"}, Phase.submission, (401, 403, 403, 403, 200)),
    "submit proposal": ("post", "/processes/{process}/proposals", NEW_PROPOSAL, Phase.submission, (401, 201, 201, 201, 201)),
    "list proposals": ("get", "/processes/{process}/proposals", None, Phase.submission, (200, 200, 200, 200, 200)),
    "show proposal": ("get", "/proposals/{proposal}", None, Phase.submission, (200, 200, 200, 200, 200)),
    "edit proposal": ("patch", "/proposals/{proposal}", {"title": "New"}, Phase.submission, (401, 403, 200, 403, 403)),
    "withdraw proposal": ("post", "/proposals/{proposal}/withdraw", None, Phase.submission, (401, 403, 200, 403, 403)),
    "review proposal": ("post", "/proposals/{proposal}/review", {"decision": "accept", "cost": 10}, Phase.review, (401, 403, 403, 200, 200)),
    "support": ("post", "/proposals/{proposal}/support", None, Phase.submission, (401, 200, 200, 200, 200)),
    "remove support": ("delete", "/proposals/{proposal}/support", None, Phase.submission, (401, 200, 200, 200, 200)),
    "comment": ("post", "/proposals/{proposal}/comments", {"body": "Nice"}, Phase.submission, (401, 201, 201, 201, 201)),
    "list comments": ("get", "/proposals/{proposal}/comments", None, Phase.submission, (200, 200, 200, 200, 200)),
    "audit log": ("get", "/audit", None, Phase.submission, (401, 403, 403, 403, 200)),
    "change a role": ("patch", "/users/{other}/role", {"role": "moderator"}, Phase.submission, (401, 403, 403, 403, 200)),
    "own account": ("get", "/users/me", None, Phase.submission, (401, 200, 200, 200, 200)),
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
    process = make_process(session, phase=phase)
    proposal = make_proposal(session, process, actors.author.user, status=ProposalStatus.submitted)
    path = template.format(process=process.id, proposal=proposal.id, other=actors.outsider.id)
    headers = {} if role == "anonymous" else getattr(actors, role).headers
    call: Callable[..., Any] = getattr(client, method)
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    response = call(f"{API}{path}", **kwargs)
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert (
            response.json()["code"]
            == {401: "not_authenticated", 403: "forbidden", 404: "not_found"}[expected]
        )
