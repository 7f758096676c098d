"""Failures a client can act on: a database that cannot serve the request now is 503
`database_unavailable` with Retry-After, and every error answer (503, 500, 413, 408) keeps
the keep-alive connection open and carries the request id and CORS headers.

The database is made unavailable for real: another transaction holds the lock the request
needs (a row lock on PostgreSQL, SQLite's write lock), and the server's lock timeout is
short, so the request fails after it instead of waiting for ever."""

import http.client
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.main import create_app
from app.models.user import User
from app.services import processes
from tests.api.conftest import Actors, in_process_server
from tests.conftest import make_settings
from tests.helpers import API

ORIGIN = "https://stem.example.org"  # allowed by the test settings


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[tuple[str, int]]:
    settings = make_settings(database_url, db_lock_timeout_seconds=0.5, body_timeout_seconds=0.5)
    with in_process_server(settings) as address:
        yield address


@contextmanager
def lock_held(engine: Engine, user_id: int) -> Iterator[None]:
    """Another transaction holds what a write of the user's row needs."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(
                text("SELECT id FROM user_account WHERE id = :id FOR UPDATE"), {"id": user_id}
            )
            yield
            connection.rollback()
        return
    database = make_url(str(engine.url)).database
    assert database
    raw = sqlite3.connect(database, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        yield
        raw.execute("ROLLBACK")
    finally:
        raw.close()


def _request(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    connection.request(method, path, body=body, headers={"Origin": ORIGIN, **headers})
    response = connection.getresponse()
    return response, response.read()


def _assert_edge_headers(response: http.client.HTTPResponse) -> None:
    assert response.getheader("X-Request-ID")
    assert response.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def _display_name(session: Session, user_id: int) -> str:
    session.rollback()
    user = session.get(User, user_id)
    assert user is not None
    session.refresh(user)
    return user.display_name


def test_a_locked_database_is_503_and_the_connection_stays_open(
    server: tuple[str, int], engine: Engine, session: Session, actors: Actors
) -> None:
    resident = actors.resident
    connection = http.client.HTTPConnection(*server, timeout=30)
    headers = {**resident.headers, "Content-Type": "application/json"}
    body = b'{"display_name": "Changed"}'
    with lock_held(engine, resident.id):
        response, payload = _request(connection, "PATCH", f"{API}/users/me", headers, body)
        assert response.status == 503, payload
        assert response.getheader("Content-Type") == "application/problem+json"
        assert b'"code":"database_unavailable"' in payload
        assert response.getheader("Retry-After") == "5"
        _assert_edge_headers(response)
        socket_used = connection.sock
        assert socket_used is not None
    # Nothing was changed, and the same connection serves the retry.
    assert _display_name(session, resident.id) == "Resident"
    response, payload = _request(connection, "PATCH", f"{API}/users/me", headers, body)
    assert response.status == 200, payload
    assert connection.sock is socket_used
    assert _display_name(session, resident.id) == "Changed"
    connection.close()


def test_an_unexpected_failure_is_500_with_the_edge_headers_and_keeps_the_connection(
    server: tuple[str, int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(processes, "list_visible", broken)
    connection = http.client.HTTPConnection(*server, timeout=30)
    with caplog.at_level("ERROR", logger="wijkbudget"):
        response, payload = _request(connection, "GET", f"{API}/processes", {})
    assert response.status == 500, payload
    assert b'"code":"internal_error"' in payload
    _assert_edge_headers(response)
    request_id = response.getheader("X-Request-ID") or "missing"
    logged = [r for r in caplog.records if "unhandled error" in r.getMessage()]
    assert len(logged) == 1
    assert request_id in logged[0].getMessage()
    assert logged[0].exc_info is not None  # one traceback, with the request id beside it
    socket_used = connection.sock
    monkeypatch.undo()
    response, _ = _request(connection, "GET", f"{API}/processes", {})
    assert response.status == 200
    assert connection.sock is socket_used
    connection.close()


def test_a_body_over_the_limit_carries_cors_and_the_request_id(client: TestClient) -> None:
    response = client.post(
        f"{API}/auth/register",
        content=b"{}",
        headers={"Origin": ORIGIN, "Content-Length": str(10 * 1024 * 1024)},
    )
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["x-request-id"]


def test_a_body_too_slow_carries_cors_and_the_request_id(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=30) as sock:
        sock.sendall(
            f"POST {API}/auth/register HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\n"
            'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"em'.encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert head.startswith("http/1.1 408")
    assert f"access-control-allow-origin: {ORIGIN}" in head
    assert "x-request-id:" in head


def test_the_servers_statements_have_timeouts(database_url: str) -> None:
    """Nothing a request runs waits for a lock or runs for ever (DB_LOCK_TIMEOUT_SECONDS,
    DB_STATEMENT_TIMEOUT_SECONDS), so a stuck request ends and a SIGTERM can drain."""
    app = create_app(
        make_settings(database_url, db_lock_timeout_seconds=2, db_statement_timeout_seconds=7)
    )
    engine: Engine = app.state.engine
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "2s"
                assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "7s"
            else:
                assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2000
    finally:
        engine.dispose()
