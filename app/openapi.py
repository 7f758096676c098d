"""The OpenAPI document, completed for client generators (FastAPI's own, post-processed):
operation ids `tag-handler`, every error response described as problem+json (the errors any
operation can meet added to each, built from the error classes), `Problem.code` as the enum
of every code, public reads callable without a token, readable schema names, and a
description on every operation."""

import re
from collections.abc import Iterator
from typing import Any, cast

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.core.errors import (
    DatabaseUnavailable,
    DomainError,
    MethodNotAllowed,
    NotAuthenticated,
    PayloadTooLarge,
    RequestTimeout,
)
from app.core.problems import PROBLEM_MEDIA_TYPE, Problem, problem_body, problem_codes, status_of
from app.routers.deps import get_current_user, get_optional_user


def operation_id(route: APIRoute) -> str:
    """`tag-handler` (e.g. `voting-cast_ballot`, which generated TypeScript names
    `VotingService.castBallot`): readable, and stable while the handler keeps its name."""
    if not route.tags:
        raise RuntimeError(f"{route.path} has no tag: every route needs one for its id.")
    return f"{route.tags[0]}-{route.name}"


_BEARER = "OAuth2PasswordBearer"


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _auth(route: APIRoute) -> str:
    """ "required", "optional" (a token, when sent, is checked and may show more) or "none"."""
    calls = set(_calls(route.dependant))
    if get_current_user in calls:
        return "required"
    return "optional" if get_optional_user in calls else "none"


def _problem(status: int, code: str, title: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "example": problem_body(status, code, title, title + "."),
            }
        },
    }


def _global(error: type[DomainError], why: str) -> tuple[str, dict[str, Any]]:
    """The response of an error any operation can meet, from its class."""
    status = status_of(error)
    return str(status), _problem(status, error.code, error.title, f"`{error.code}`: {why}")


# Errors any operation can meet, whatever its handler: described once, added to each.
_INVALID_TOKEN = _global(
    NotAuthenticated,
    "a token was sent but is invalid or expired (send none to call this anonymously).",
)
_METHOD_NOT_ALLOWED = _global(MethodNotAllowed, "the path has no such method")
_TOO_LARGE = _global(
    PayloadTooLarge, "the body is over the size limit (MAX_BODY_BYTES, default 1 MiB)"
)
_BODY_TIMEOUT = _global(
    RequestTimeout, "the body did not arrive in time (BODY_TIMEOUT_SECONDS, default 10)"
)
_UNAVAILABLE = _global(
    DatabaseUnavailable,
    "the database could not serve the request (restarting, or a lock held too long); "
    "nothing was changed, send it again after `Retry-After` seconds",
)
# Not a domain error: what the client sees of a bug.
_INTERNAL = (
    "500",
    _problem(
        500, "internal_error", "Internal server error", "`internal_error`: an unexpected failure"
    ),
)
_WHO = {
    "required": "Needs a token (`Authorization: Bearer ...`).",
    "optional": "Anyone; a token is optional and, when sent, must be valid.",
    "none": "Anyone; no token is needed.",
}


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, completed for client generators: every error response described
    as problem+json (the global ones too), `Problem.code` as the enum of every code, public
    reads callable without a token, and a description on every operation."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    problem_schema["properties"]["code"]["enum"] = problem_codes()
    schemas["Problem"] = problem_schema
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    auth = {route.unique_id: _auth(route) for route in _api_routes(app) if route.include_in_schema}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json")
            if default_422 is not None:
                responses["422"] = {
                    "description": "`validation_error`: Invalid input",
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
                }
            who = auth.get(operation["operationId"], "none")
            if who == "optional":
                operation["security"] = [{}, {_BEARER: []}]
                responses.setdefault(*_INVALID_TOKEN)
            elif who == "none":
                operation.pop("security", None)
            responses.setdefault(*_METHOD_NOT_ALLOWED)
            if "requestBody" in operation:
                responses.setdefault(*_BODY_TIMEOUT)
                responses.setdefault(*_TOO_LARGE)
            responses.setdefault(*_INTERNAL)
            responses.setdefault(*_UNAVAILABLE)
            operation["responses"] = dict(sorted(responses.items()))
            if not operation.get("description"):
                operation["description"] = f"{operation.get('summary', '')}. {_WHO[who]}"
            else:
                operation["description"] += f"\n\n{_WHO[who]}"
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = _readable_names(schema)
    return app.openapi_schema


def _api_routes(app: FastAPI) -> Iterator[APIRoute]:
    # FastAPI >= 0.160 keeps included routers as such and resolves each route in context.
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in contexts(app.routes) if contexts else app.routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield cast(APIRoute, route)


def _readable_names(schema: dict[str, Any]) -> dict[str, Any]:
    """`ProcessPage` for pydantic's `Page_ProcessPublic_`: the name generated clients show."""
    schemas = schema["components"]["schemas"]
    renames = {}
    for name in list(schemas):
        page = re.fullmatch(r"Page_(\w+)_", name)
        if page:
            renames[name] = page.group(1).removesuffix("Public") + "Page"
    for old, new in renames.items():
        schemas[new] = schemas.pop(old)
        schemas[new]["title"] = new
    refs = {
        f"#/components/schemas/{old}": f"#/components/schemas/{new}" for old, new in renames.items()
    }

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: refs.get(v, v) if k == "$ref" else rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    result: dict[str, Any] = rewrite(schema)
    return result
