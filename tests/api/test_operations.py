"""Probes, request ids, security headers, CORS, body limits and the generic error shapes."""

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.api.test_accounts import NEW_USER
from tests.conftest import make_settings
from tests.helpers import API, assert_problem
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


def test_health_and_readiness(client: TestClient) -> None:
    from importlib.metadata import version

    assert client.get("/healthz").json() == {"status": "ok", "version": version("wijkbudget")}
    assert client.get("/readyz").status_code == 200


def test_readiness_is_503_when_the_database_is_unreachable(tmp_path: Any) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    app = create_app(make_settings(url))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    hostile = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert hostile.headers["x-request-id"] != "x" * 500


def test_security_headers_on_every_response(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get(f"{API}/users/me"), client.get("/nowhere")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_served_api_sends_no_server_banner(database_url: str, tmp_path: Path) -> None:
    """The banner is uvicorn's, so only the real `wijkbudget serve` can show it (the test
    client never sends one): every kind of response of a running server lacks it."""
    server = ServerProcess(database_url, tmp_path, name="wb-banner")
    server.start()
    try:
        with httpx.Client(timeout=30) as http:
            responses = [
                http.get(f"{server.root}/healthz"),
                http.get(f"{server.root}/docs"),
                http.get(f"{server.base}/users/me"),
                http.get(f"{server.root}/nowhere"),
                http.post(f"{server.base}/auth/register", content=b"{" * 2_000_000),
            ]
    finally:
        server.stop()
    assert [r.status_code for r in responses] == [200, 200, 401, 404, 413]
    for response in responses:
        assert "server" not in response.headers, response.headers["server"]
        assert response.headers["x-content-type-options"] == "nosniff"


def test_cors_only_for_configured_origins(client: TestClient, settings: Settings) -> None:
    allowed = settings.cors_origins[0]
    preflight = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization",
    }
    ok = client.options(f"{API}/users/me", headers={"Origin": allowed, **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == allowed
    other = client.options(
        f"{API}/users/me", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in other.headers
    simple = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get(f"{API}/nothing-here"), 404, "not_found")
    assert_problem(client.delete(f"{API}/auth/register"), 405, "method_not_allowed")


def test_oversized_bodies_are_413_and_store_nothing(client: TestClient, settings: Settings) -> None:
    huge = dict(NEW_USER, display_name="x" * (settings.max_body_bytes + 1))
    assert_problem(client.post(f"{API}/auth/register", json=huge), 413, "payload_too_large")

    def chunks() -> Any:
        for _ in range(settings.max_body_bytes // 1024 + 2):
            yield b" " * 1024

    streamed = client.post(
        f"{API}/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(streamed, 413, "payload_too_large")
    assert (
        client.post(
            f"{API}/auth/token",
            data={"username": NEW_USER["email"], "password": NEW_USER["password"]},
        ).status_code
        == 401
    )


def test_openapi_describes_every_error_as_problem_json(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "Problem" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and not path.endswith("readyz"):
                    assert list(response["content"]) == ["application/problem+json"], (
                        path,
                        method,
                        status,
                    )
    register = document["paths"]["/api/v1/auth/register"]["post"]
    assert {"201", "409", "422"} <= set(register["responses"])
    role = document["paths"]["/api/v1/users/{user_id}/role"]["patch"]
    assert {"401", "403", "404", "409", "422"} <= set(role["responses"])
    token_url = document["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"][
        "password"
    ]["tokenUrl"]
    assert token_url == "/api/v1/auth/token"


def test_docs_are_served(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
