"""The HTTP edge against hostile input: timestamps out of range, client addresses that are no
addresses, forged log lines, cache and transport headers, and the 401 the OpenAPI document
owes every operation that takes an optional token."""

import asyncio
import logging
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.requests import Request

from app.main import create_app
from app.models.process import Phase
from app.models.user import Role
from app.openapi import _api_routes
from app.routers.deps import UNKNOWN_ADDRESS, get_client_address, get_optional_user
from tests.conftest import TEST_SECRET, make_settings
from tests.factories import PASSWORD, auth, make_process, make_user
from tests.helpers import API, assert_problem


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
        "0001-01-01T00:00:00+05:00",  # year 0 in UTC
    ],
)
@pytest.mark.parametrize("field", ["voting_opens_at", "voting_closes_at"])
def test_a_timestamp_beyond_utc_is_invalid_input(
    client: TestClient, session: Session, field: str, when: str
) -> None:
    admin = make_user(session, role=Role.admin)
    process = make_process(session, phase=Phase.submission)
    response = client.patch(
        f"{API}/processes/{process.id}", json={field: when}, headers=auth(admin, TEST_SECRET)
    )
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", field]


def _request_from(host: str) -> Request:
    return Request({"type": "http", "client": (host, 0), "headers": []})


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:DB8:0:0::1", "2001:db8::1"),  # one bucket per address, however written
        ("x" * 400, UNKNOWN_ADDRESS),
        ("203.0.113.7, 10.0.0.1", UNKNOWN_ADDRESS),
        ("fe80::1%" + "e" * 300, UNKNOWN_ADDRESS),
        ("", UNKNOWN_ADDRESS),
    ],
)
def test_the_client_address_is_an_ip_address_or_the_placeholder(host: str, expected: str) -> None:
    assert asyncio.run(get_client_address(_request_from(host))) == expected


def test_a_newline_in_the_path_cannot_forge_a_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "200 0.1ms request_id=x\nINFO wijkbudget.request GET /admin 200"
    with caplog.at_level(logging.INFO, logger="wijkbudget.request"):
        client.get(f"{API}/nothing%0A{forged.replace(' ', '%20').replace(chr(10), '%0A')}")
        client.get(f"{API}/bell%07%1B[31m%E2%80%AE")
    lines = [r.getMessage() for r in caplog.records if r.name == "wijkbudget.request"]
    assert len(lines) == 2
    for line in lines:
        assert line.isprintable(), line
        assert line.isascii(), line
    assert "/nothing\\n200 0.1ms request_id=x\\nINFO" in lines[0]
    assert "/bell\\x07\\x1b[31m\\u202e" in lines[1]


def test_an_unexpected_failure_logs_the_path_escaped(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    failing = create_app(make_settings(database_url))

    @failing.get("/boom/{anything}", tags=["test"])
    def boom(anything: str) -> None:
        raise RuntimeError("boom")

    try:
        with (
            TestClient(failing, raise_server_exceptions=False) as client,
            caplog.at_level(logging.ERROR, logger="wijkbudget"),
        ):
            # (Python's URL parsing drops newlines here; terminal escapes it keeps.)
            response = client.get("/boom/a%1B[2J%E2%80%AEforged")
    finally:
        failing.state.engine.dispose()
    assert response.status_code == 500
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert messages
    assert all(m.isprintable() for m in messages)
    assert any("/boom/a\\x1b[2J\\u202eforged" in m for m in messages), messages


def test_responses_to_a_token_or_a_write_are_never_stored(
    client: TestClient, session: Session
) -> None:
    user = make_user(session)
    process = make_process(session)
    token = client.post(f"{API}/auth/token", data={"username": user.email, "password": PASSWORD})
    assert token.status_code == 200
    assert token.headers["cache-control"] == "no-store"
    headers = auth(user, TEST_SECRET)
    for path in ("/users/me", "/users/me/export", f"/processes/{process.id}"):
        response = client.get(f"{API}{path}", headers=headers)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["cache-control"] == "no-store", path
    ballot = client.get(f"{API}/processes/{process.id}/ballot", headers=headers)
    assert ballot.headers["cache-control"] == "no-store"
    # A receipt is the voter's secret, asked for without a token.
    receipt = client.get(f"{API}/processes/{process.id}/receipts/abc")
    assert receipt.headers["cache-control"] == "no-store"
    failed = client.post(f"{API}/auth/register", json={})
    assert failed.status_code == 422
    assert failed.headers["cache-control"] == "no-store"


def test_anonymous_public_reads_may_be_cached(client: TestClient, session: Session) -> None:
    process = make_process(session)
    for path in (f"{API}/processes", f"{API}/processes/{process.id}", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200
        assert "cache-control" not in response.headers, path
        assert "strict-transport-security" not in response.headers


def test_production_sends_hsts(database_url: str) -> None:
    settings = make_settings(
        database_url, environment="production", smtp_url="smtp://mail.example.org:587"
    )
    production = create_app(settings)
    try:
        with TestClient(production) as client:
            for response in (client.get("/healthz"), client.get(f"{API}/nothing")):
                hsts = response.headers["strict-transport-security"]
                assert hsts == "max-age=63072000; includeSubDomains"
    finally:
        production.state.engine.dispose()


def _optional_token_operations(app: FastAPI) -> list[tuple[str, str]]:
    def calls(dependant: Any) -> set[Any]:
        found = set()
        for sub in dependant.dependencies:
            found.add(sub.call)
            found |= calls(sub)
        return found

    operations = []
    for route in _api_routes(app):
        if route.include_in_schema and get_optional_user in calls(route.dependant):
            operations += [(route.path, method.lower()) for method in route.methods or ()]
    return operations


def test_every_operation_with_an_optional_token_documents_401(app: FastAPI) -> None:
    document = app.openapi()
    operations = _optional_token_operations(app)
    # Public reads of processes, proposals, comments, results, rounds and receipts at least.
    assert len(operations) >= 9
    missing = []
    for path, method in operations:
        responses = document["paths"][path][method]["responses"]
        unauthenticated = responses.get("401", {})
        content = unauthenticated.get("content", {}).get("application/problem+json", {})
        codes = {content.get("example", {}).get("code")} | {
            example["value"]["code"] for example in content.get("examples", {}).values()
        }
        if "not_authenticated" not in codes:
            missing.append(f"{method.upper()} {path}")
    assert not missing, missing


def test_an_invalid_optional_token_is_answered_401(client: TestClient, session: Session) -> None:
    process = make_process(session)
    response = client.get(
        f"{API}/processes/{process.id}", headers={"Authorization": "Bearer not-a-token"}
    )
    assert_problem(response, 401, "not_authenticated")
