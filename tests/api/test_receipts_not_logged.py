"""A receipt is the voter's secret: the request log never holds one."""

import logging

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.api.conftest import Actors
from tests.factories import make_voting_process
from tests.helpers import API


def test_a_receipt_lookup_is_logged_without_the_receipt(
    client: TestClient, actors: Actors, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    process, proposals = make_voting_process(session, actors.author.user)
    cast = client.put(
        f"{API}/processes/{process.id}/ballot",
        json={"proposal_ids": [proposals[0].id]},
        headers=actors.resident.headers,
    )
    receipt = cast.json()["receipt"]
    with caplog.at_level(logging.INFO, logger="wijkbudget.request"):
        answer = client.get(f"{API}/processes/{process.id}/receipts/{receipt}")
    assert answer.status_code == 200
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "wijkbudget.request" and "/receipts/" in r.getMessage()
    ]
    assert len(lines) == 1
    assert receipt not in lines[0]
    assert f"/processes/{process.id}/receipts/*** 200" in lines[0]
