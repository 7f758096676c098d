"""The application factory: `create_app()` wires settings, database, errors and routers."""

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio.to_thread
import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from sqlalchemy import Engine

from app import __version__
from app.core.config import Settings, get_settings
from app.core.db import make_engine
from app.core.middleware import (
    BodySizeLimitMiddleware,
    BodyTimeoutMiddleware,
    RequestContextMiddleware,
)
from app.core.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    install_error_handlers,
    problem_body,
    problem_codes,
)
from app.core.slots import ConnectionSlots
from app.routers import (
    admin,
    analysis,
    audit,
    auth,
    ballots,
    comments,
    content,
    health,
    paper,
    processes,
    proposals,
    results,
    rounds,
    users,
)
from app.routers.deps import API_PREFIX, get_current_user, get_optional_user
from app.services.analysis import analysis_pool
from app.services.mail import Mailer, make_mailer, sender_loop
from app.services.throttle import make_guard

DESCRIPTION = """
Wijkbudget is the backend of a participatory budget: residents propose plans for their
neighbourhood, discuss and support them, the municipality reviews them, and residents divide
the budget by voting. Results are computed by `greedy` or the Method of Equal Shares (`mes`)
and published with a digest anyone can recompute.

Every error is `application/problem+json` with a stable `code`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.require_strong_secret()
    settings.require_mail_transport()
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )

    admitted = settings.db_pool_size + settings.db_max_overflow
    mailer = make_mailer(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync handlers need a thread beyond every connection slot (see app/core/slots.py).
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, admitted + 10)
        sender = _start_mail_sender(engine, mailer, settings.mail_sender_interval_seconds)
        # What-if tallies run in child processes, started on first use.
        _app.state.analysis_pool = analysis_pool(settings)
        yield
        _app.state.analysis_pool.shutdown()
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        engine.dispose()

    app = FastAPI(
        title="Wijkbudget",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # One schema per model, not `X-Input`/`X-Output` twins, for readable client types.
        separate_input_output_schemas=False,
        servers=[{"url": "/", "description": "This server; the API is under /api/v1."}],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.connection_slots = ConnectionSlots(admitted)
    app.state.mailer = mailer
    app.state.signing_key = settings.signing_key()
    app.state.guard = make_guard(engine, settings, app.state.signing_key)

    install_error_handlers(app)
    app.include_router(health.router)
    for module in (
        auth,
        users,
        processes,
        proposals,
        comments,
        content,
        ballots,
        paper,
        results,
        rounds,
        audit,
        admin,
        analysis,
    ):
        app.include_router(module.router, prefix=API_PREFIX)

    # Added last runs first: the request id and size limit wrap everything, CORS included.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
    )
    app.add_middleware(BodyTimeoutMiddleware, seconds=settings.body_timeout_seconds)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # A pabulib file for a what-if tally is far larger than any JSON request.
        per_path={f"{API_PREFIX}/analysis/tally": settings.analysis_max_bytes},
        # An image upload: the file plus room for the multipart framing around it.
        per_pattern=[
            (rf"{API_PREFIX}/proposals/[0-9]+/images", settings.image_max_bytes + 64 * 1024)
        ],
    )
    app.add_middleware(RequestContextMiddleware, hsts=settings.environment == "production")

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    logging.getLogger("wijkbudget").setLevel(settings.log_level.upper())
    return app


def _start_mail_sender(
    engine: Engine, mailer: Mailer, interval: float
) -> "asyncio.Task[None] | None":
    log = logging.getLogger("wijkbudget.mail")
    if interval <= 0:
        log.info(
            "mail goes to %s; no sender in this server (run wijkbudget send-mail)",
            mailer.description,
        )
        return None
    log.info("mail goes to %s, sent every %s s", mailer.description, interval)
    return asyncio.create_task(sender_loop(engine, mailer, interval))


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


# Errors any operation can meet, whatever its handler: described once, added to each.
_INVALID_TOKEN = _problem(
    401,
    "not_authenticated",
    "Not authenticated",
    "`not_authenticated`: a token was sent but is invalid or expired (send none to call "
    "this anonymously).",
)
_METHOD_NOT_ALLOWED = _problem(
    405, "method_not_allowed", "Method not allowed", "`method_not_allowed`: Method not allowed"
)
_TOO_LARGE = _problem(
    413,
    "payload_too_large",
    "Payload too large",
    "`payload_too_large`: the body is over the size limit (MAX_BODY_BYTES, default 1 MiB)",
)
_BODY_TIMEOUT = _problem(
    408,
    "request_timeout",
    "Request body too slow",
    "`request_timeout`: the body did not arrive in time (BODY_TIMEOUT_SECONDS, default 10)",
)
_INTERNAL = _problem(
    500, "internal_error", "Internal server error", "`internal_error`: an unexpected failure"
)
_WHO = {
    "required": "Needs a token (`Authorization: Bearer ...`).",
    "optional": "Anyone; a token is optional and, when sent, must be valid.",
    "none": "Anyone; no token is needed.",
}


def _openapi(app: FastAPI) -> dict[str, Any]:
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
                responses.setdefault("401", _INVALID_TOKEN)
            elif who == "none":
                operation.pop("security", None)
            responses.setdefault("405", _METHOD_NOT_ALLOWED)
            if "requestBody" in operation:
                responses.setdefault("408", _BODY_TIMEOUT)
                responses.setdefault("413", _TOO_LARGE)
            responses.setdefault("500", _INTERNAL)
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
