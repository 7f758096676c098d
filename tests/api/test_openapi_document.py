"""The OpenAPI document is enough to build a client: readable names, optional auth where
a token is optional, every error a route can return, enums where values are fixed."""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.errors import CATALOGUE

Operations = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Operations:
    return [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def by_id(document: dict[str, Any], operation_id: str) -> dict[str, Any]:
    [found] = [op for _, _, op in operations(document) if op["operationId"] == operation_id]
    return found


def test_operation_ids_are_tag_and_handler(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    for _, _, operation in operations(document):
        tag = operation["tags"][0]
        assert re.fullmatch(r"[a-z]+", tag), tag  # one word: it becomes a client class name
        assert re.fullmatch(rf"{tag}-[a-z_]+", operation["operationId"]), operation["operationId"]
    assert {"voting-cast_ballot", "accounts-token", "accounts-export_me"} <= set(ids)


def test_schema_names_are_chosen_not_generated(document: dict[str, Any]) -> None:
    names = set(document["components"]["schemas"])
    assert not [n for n in names if n.startswith("Body_") or "_" in n or "-" in n], names
    assert {"SignIn", "AccountExport", "ProcessPage", "ProposalPage", "UserPage"} <= names
    token_body = by_id(document, "accounts-token")["requestBody"]["content"]
    form = token_body["application/x-www-form-urlencoded"]["schema"]
    assert form == {"$ref": "#/components/schemas/SignIn"}
    export = by_id(document, "accounts-export_me")["responses"]["200"]["content"]
    assert export["application/json"]["schema"] == {"$ref": "#/components/schemas/AccountExport"}


def test_public_reads_may_be_called_without_a_token(document: dict[str, Any]) -> None:
    optional: list[dict[str, list[str]]] = [{}, {"OAuth2PasswordBearer": []}]
    required: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}]
    for operation_id in (
        "results-show_results",
        "processes-list_processes",
        "proposals-show_proposal",
        "voting-check_receipt",
    ):
        operation = by_id(document, operation_id)
        assert operation["security"] == optional, operation_id
        assert "401" in operation["responses"]  # an invalid token sent anyway
    for operation_id in ("voting-cast_ballot", "processes-my_participation", "accounts-me"):
        assert by_id(document, operation_id)["security"] == required, operation_id
    for operation_id in ("accounts-register", "accounts-token", "operations-healthz"):
        assert "security" not in by_id(document, operation_id), operation_id


def test_every_operation_documents_the_global_errors(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        where = (method, path)
        assert {"405", "500"} <= set(responses), where
        assert ("413" in responses) == ("requestBody" in operation), where
        assert ("408" in responses) == ("requestBody" in operation), where
        assert operation.get("description"), where
        for status, response in responses.items():
            if status.startswith(("4", "5")) and not path.endswith("readyz"):
                assert list(response["content"]) == ["application/problem+json"], where
    throttled = {"accounts-register", "accounts-token", "accounts-change_password"}
    for operation_id in (*throttled, "voting-claim_code"):
        assert "429" in by_id(document, operation_id)["responses"], operation_id
    assert "429" not in by_id(document, "voting-cast_ballot")["responses"]


def test_problem_schema_lists_every_code_and_optional_members(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    codes = set(problem["properties"]["code"]["enum"])
    assert {error.code for error in CATALOGUE} <= codes
    assert {"internal_error", "http_error", "not_eligible", "voting_closed"} <= codes
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    errors = problem["properties"]["errors"]
    assert errors["type"] == "array"  # optional, and never null on the wire
    reasons = document["components"]["schemas"]["Reason"]["enum"]
    assert reasons == ["postcode", "age", "voting_code", "verified_email", "phase"]
    closed = document["components"]["schemas"]["VotingClosedReason"]["enum"]
    assert closed == ["not_open_yet", "closed"]


def test_results_rule_is_the_rule_enum_and_servers_are_listed(document: dict[str, Any]) -> None:
    rule = document["components"]["schemas"]["Results"]["properties"]["rule"]
    assert rule["$ref"] == "#/components/schemas/TallyRule"
    assert document["components"]["schemas"]["TallyRule"]["enum"] == ["greedy", "mes"]
    assert document["servers"][0]["url"] == "/"
    proposal = document["components"]["schemas"]["ProposalPublic"]["properties"]
    assert proposal["supported_by_me"]["anyOf"] == [{"type": "boolean"}, {"type": "null"}]
