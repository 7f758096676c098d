"""Who may upload, see and delete proposal images and list a process's categories: each
endpoint x (anonymous, resident, author, moderator, admin), open process and draft."""

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from app.models.process import Phase
from app.models.proposal import ProposalImage
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API, count_rows

ROLES = ("anonymous", "resident", "author", "moderator", "admin")

# endpoint: (method, path template, phase, status per role in ROLES order); the proposal is
# `author`'s and has one image, uploaded by the admin.
TABLE: dict[str, tuple[str, str, Phase, tuple[int, ...]]] = {
    "upload": ("POST", "/proposals/{proposal}/images", Phase.submission, (401, 403, 201, 201, 201)),
    "upload, review": ("POST", "/proposals/{proposal}/images", Phase.review, (401, 403, 409, 201, 201)),
    "upload, draft": ("POST", "/proposals/{proposal}/images", Phase.draft, (401, 404, 404, 404, 201)),
    "image": ("GET", "/proposals/{proposal}/images/{image}", Phase.voting, (200, 200, 200, 200, 200)),
    "image, draft": ("GET", "/proposals/{proposal}/images/{image}", Phase.draft, (404, 404, 404, 404, 200)),
    "delete": ("DELETE", "/proposals/{proposal}/images/{image}", Phase.submission, (401, 403, 204, 204, 204)),
    "delete, closed": ("DELETE", "/proposals/{proposal}/images/{image}", Phase.closed, (401, 403, 409, 204, 204)),
    "delete, draft": ("DELETE", "/proposals/{proposal}/images/{image}", Phase.draft, (401, 404, 404, 404, 204)),
    "categories": ("GET", "/processes/{process}/categories", Phase.submission, (200, 200, 200, 200, 200)),
    "categories, draft": ("GET", "/processes/{process}/categories", Phase.draft, (404, 404, 404, 404, 200)),
}  # fmt: skip

CELLS = [
    pytest.param(name, role, expected[i], id=f"{name}-{role}")
    for name, (*_, expected) in TABLE.items()
    for i, role in enumerate(ROLES)
]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(("endpoint", "role", "expected"), CELLS)
def test_permission(
    client: TestClient,
    actors: Actors,
    session: Session,
    workdir: Path,
    endpoint: str,
    role: str,
    expected: int,
) -> None:
    method, template, phase, _ = TABLE[endpoint]
    process = make_process(session, phase=phase)
    proposal = make_proposal(session, process, actors.author.user)
    first = client.post(
        f"{API}/proposals/{proposal.id}/images",
        files={"file": ("a.png", png(), "image/png")},
        headers=actors.admin.headers,
    )
    assert first.status_code == 201, first.text
    path = template.format(process=process.id, proposal=proposal.id, image=first.json()["id"])
    headers = {} if role == "anonymous" else getattr(actors, role).headers
    files = {"file": ("b.png", png(), "image/png")} if method == "POST" else None
    response = client.request(method, f"{API}{path}", files=files, headers=headers)
    assert response.status_code == expected, response.text
    if expected >= 400:
        codes = {401: "not_authenticated", 403: "forbidden", 404: "not_found", 409: "invalid_phase"}
        assert response.json()["code"] == codes[expected]
    images = {"POST": 2 if expected == 201 else 1, "DELETE": 0 if expected == 204 else 1}
    assert count_rows(session, ProposalImage) == images.get(method, 1)
