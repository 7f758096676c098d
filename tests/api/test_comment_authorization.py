"""Who may remove, hide and report comments and list reported ones: each endpoint x
(anonymous, resident, author, moderator, admin), for an open process and a draft."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.process import Phase
from app.models.proposal import Comment
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API

ROLES = ("anonymous", "resident", "author", "moderator", "admin")
REASON = {"reason": "Personal attack."}

# endpoint: (method, path template, body, phase, status per role in ROLES order); the
# comment is written by `author`.
TABLE: dict[str, tuple[str, str, Any, Phase, tuple[int, ...]]] = {
    "remove": ("DELETE", "/comments/{comment}", None, Phase.review, (401, 403, 204, 403, 403)),
    "remove, draft": ("DELETE", "/comments/{comment}", None, Phase.draft, (401, 404, 404, 404, 403)),
    "hide": ("POST", "/comments/{comment}/hide", REASON, Phase.review, (401, 403, 403, 200, 200)),
    "hide, draft": ("POST", "/comments/{comment}/hide", REASON, Phase.draft, (401, 404, 404, 404, 200)),
    "report": ("POST", "/comments/{comment}/report", REASON, Phase.voting, (401, 204, 204, 204, 204)),
    "report, draft": ("POST", "/comments/{comment}/report", REASON, Phase.draft, (401, 404, 404, 404, 204)),
    "reported": ("GET", "/processes/{process}/reported-comments", None, Phase.closed, (401, 403, 403, 200, 200)),
    "reported, draft": ("GET", "/processes/{process}/reported-comments", None, Phase.draft, (401, 404, 404, 404, 200)),
}  # fmt: skip

CELLS = [
    pytest.param(name, role, expected[i], id=f"{name}-{role}")
    for name, (*_, expected) in TABLE.items()
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("endpoint", "role", "expected"), CELLS)
def test_permission(
    client: TestClient, actors: Actors, session: Session, endpoint: str, role: str, expected: int
) -> None:
    method, template, body, phase, _ = TABLE[endpoint]
    process = make_process(session, phase=phase)
    proposal = make_proposal(session, process, actors.author.user)
    assert proposal.id is not None
    comment = Comment(proposal_id=proposal.id, author_id=actors.author.id, body="Nonsense!")
    session.add(comment)
    session.commit()
    path = template.format(process=process.id, comment=comment.id)
    headers = {} if role == "anonymous" else getattr(actors, role).headers
    response = client.request(method, f"{API}{path}", json=body, headers=headers)
    assert response.status_code == expected, response.text
    if expected >= 400:
        codes = {401: "not_authenticated", 403: "forbidden", 404: "not_found"}
        assert response.json()["code"] == codes[expected]
    session.refresh(comment)
    changed = expected < 300 and method != "GET" and "report" not in endpoint
    assert (comment.status != "visible") == changed
