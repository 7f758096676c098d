"""Who may do what with paper batches: every endpoint x anonymous, resident, moderator,
admin (the batch is entered by another moderator, so neither is its enterer)."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.user import Role
from tests.api.conftest import Actors
from tests.factories import auth, make_user, make_voting_process
from tests.helpers import API

WHO = ("anonymous", "resident", "moderator", "admin")
# endpoint -> the status each caller gets, in WHO's order.
MATRIX: dict[str, tuple[int, int, int, int]] = {
    "enter": (401, 403, 201, 201),
    "list": (401, 403, 200, 200),
    "show": (401, 403, 200, 200),
    "confirm": (401, 403, 200, 200),
    "correct": (401, 403, 403, 403),  # only its enterer (or the second keyer, if mismatched)
    "void": (401, 403, 403, 200),
}


@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_authorization_matrix(
    endpoint: str, client: TestClient, actors: Actors, session: Session, settings: Settings
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    body = {"source": "Stadhuis", "ballots": [{"proposal_ids": [proposals[0].id]}]}
    enterer = make_user(session, role=Role.moderator)
    enterer_headers = auth(enterer, settings.signing_key())
    headers: dict[str, dict[str, str]] = {
        "anonymous": {},
        "resident": actors.resident.headers,
        "moderator": actors.moderator.headers,
        "admin": actors.admin.headers,
    }

    def fresh_batch() -> int:
        made = client.post(
            f"{API}/processes/{process.id}/paper-batches", json=body, headers=enterer_headers
        )
        assert made.status_code == 201, made.text
        batch_id: int = made.json()["id"]
        return batch_id

    calls: dict[str, Callable[[int, dict[str, str]], Any]] = {
        "enter": lambda _, h: client.post(
            f"{API}/processes/{process.id}/paper-batches", json=body, headers=h
        ),
        "list": lambda _, h: client.get(f"{API}/processes/{process.id}/paper-batches", headers=h),
        "show": lambda b, h: client.get(f"{API}/paper-batches/{b}", headers=h),
        "confirm": lambda b, h: client.post(
            f"{API}/paper-batches/{b}/confirm", json=body, headers=h
        ),
        "correct": lambda b, h: client.put(f"{API}/paper-batches/{b}", json=body, headers=h),
        "void": lambda b, h: client.post(
            f"{API}/paper-batches/{b}/void", json={"reason": "test"}, headers=h
        ),
    }
    got = {who: calls[endpoint](fresh_batch(), headers[who]).status_code for who in WHO}
    assert got == dict(zip(WHO, MATRIX[endpoint], strict=True))
    if endpoint == "correct":
        # ...and its enterer may.
        assert calls["correct"](fresh_batch(), enterer_headers).status_code == 200
